import type { BuildProgress, ProgressListener } from './source.js';

function formatSeconds(seconds: number): string {
  if (!Number.isFinite(seconds)) return '?';
  if (seconds < 60) return `${seconds.toFixed(1)}s`;
  const m = Math.floor(seconds / 60);
  return `${m}m${Math.round(seconds - 60 * m)
    .toString()
    .padStart(2, '0')}s`;
}

function formatAmount(n: number, unit: BuildProgress['unit']): string {
  return unit === 'bytes' ? `${(n / 1024 / 1024).toFixed(1)} MB` : String(n);
}

/**
 * A progress listener that writes `label: done/total (pct) rate/s ETA` lines, at most every
 * `intervalMs`, plus a final line per phase/split.
 */
export function createProgressPrinter(
  label: string,
  write: (line: string) => void = (line) => process.stderr.write(`${line}\n`),
  intervalMs = 500,
): ProgressListener {
  let key = '';
  let started = 0;
  let lastPrint = 0;
  let finished = false;
  return (p) => {
    const now = performance.now();
    const k = `${p.phase}:${p.split ?? ''}`;
    if (k !== key) {
      key = k;
      started = now;
      lastPrint = now;
      finished = false;
    }
    const complete = p.total !== undefined && p.done >= p.total;
    if (finished || (!complete && now - lastPrint < intervalMs)) return;
    lastPrint = now;
    if (complete) finished = true;
    const elapsed = (now - started) / 1000;
    const rate = elapsed > 0 ? p.done / elapsed : 0;
    const what =
      p.phase === 'hash'
        ? 'checksums'
        : p.phase === 'images'
          ? 'image files checked'
          : `${p.split} images`;
    let line = `${label} ${what}: ${formatAmount(p.done, p.unit)}`;
    if (p.total !== undefined) {
      line += `/${formatAmount(p.total, p.unit)} (${p.total > 0 ? ((100 * p.done) / p.total).toFixed(0) : '100'}%)`;
    }
    line += ` ${formatAmount(Math.round(rate), p.unit)}/s`;
    if (complete) line += ` done in ${formatSeconds(elapsed)}`;
    else if (p.total !== undefined && rate > 0)
      line += ` ETA ${formatSeconds((p.total - p.done) / rate)}`;
    write(line);
  };
}
