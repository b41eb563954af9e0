import type { EpochLog } from '../trainer.js';

/** The end-of-run table: per-epoch loss / lr / throughput, then Recall@K. */
export function formatRunTable(r: {
  epochs: EpochLog[];
  recall: { k: number; recall: number }[];
  backend: string;
  workers?: number;
  wallTimeS: number;
  imagesPerS: number;
}): string {
  const lines: string[] = [];
  lines.push('epoch  loss     lr         images/s');
  for (const e of r.epochs) {
    lines.push(
      `${String(e.epoch).padStart(5)}  ${e.loss.toFixed(4).padStart(7)}  ${e.lr.toExponential(2).padStart(9)}  ${e.imagesPerS.toFixed(1).padStart(8)}`,
    );
  }
  lines.push('');
  lines.push(r.recall.map((x) => `R@${x.k}`.padStart(8)).join(''));
  lines.push(r.recall.map((x) => (100 * x.recall).toFixed(2).padStart(8)).join(''));
  lines.push('');
  lines.push(
    `backend ${r.backend}${r.workers ? ` × ${r.workers} worker(s)` : ''}, ${r.imagesPerS.toFixed(1)} images/s training, wall time ${r.wallTimeS.toFixed(1)} s`,
  );
  return lines.join('\n');
}
