/**
 * `pnpm bench methods [--methods selfcon,maskcon] [train flags…]`: trains each method with the
 * same data, seed, model, width and epochs, and prints fine-label Recall@K side by side with
 * the training throughput. Defaults: Fashion-MNIST, the quick preset, MaskCon with w = 1, τ = 0.1.
 */
import { formatRecallTable } from '@maskcon/eval';
import {
  findFinishedRun,
  parseTrainArgs,
  RunsDb,
  train,
  RECALL_KS,
  type TrainResult,
} from '../src/index.js';
import { METHODS, methodOf, type MethodName } from '@maskcon/model';

/** The parts of a TrainResult the table needs, from a finished run in the runs DB. */
function storedResult(runsDb: string, runId: number): TrainResult {
  const db = new RunsDb(runsDb);
  try {
    const row = db.getRun(runId)!;
    const cfg = JSON.parse(row.config) as { workers?: number };
    return {
      runId,
      backend: row.backend ?? '-',
      workers: cfg.workers ?? 1,
      epochs: db
        .epochs(runId)
        .map((e) => ({ epoch: e.epoch, loss: e.loss, lr: e.lr, imagesPerS: e.images_per_s })),
      recall: db.finalRecalls(runId),
      wallTimeS: row.wall_time_s ?? 0,
      imagesPerS: row.images_per_s ?? 0,
    };
  } finally {
    db.close();
  }
}

async function main(): Promise<void> {
  const argv = process.argv.slice(2);
  const mi = argv.indexOf('--methods');
  const methods = (mi >= 0 ? argv.splice(mi, 2)[1] : 'selfcon,maskcon').split(',') as MethodName[];
  const base = argv.includes('--preset') ? argv : ['--preset', 'quick', ...argv];
  const results: { name: string; r: TrainResult; cfg: ReturnType<typeof parseTrainArgs> }[] = [];
  for (const method of methods) {
    // Each method's w / τ where the flags do not set them: the method's bench values (the
    // paper's best CIFAR-100 values for the baselines), else the defaults (MaskCon w 1, τ 0.1).
    const extra = Object.entries(methodOf(method).benchParams ?? {}).flatMap(([p, v]) =>
      base.includes(`--${p}`) ? [] : [`--${p}`, String(v)],
    );
    const cfg = parseTrainArgs([...base, '--method', method, ...extra]);
    // A finished run with the same configuration in the runs DB is reused, not trained again.
    const done = findFinishedRun(cfg.runsDb, cfg);
    process.stderr.write(`\n=== ${method}${done ? ` (reusing finished run ${done})` : ''} ===\n`);
    const r = done ? storedResult(cfg.runsDb, done) : await train(cfg);
    const shown = METHODS[cfg.method].hyperparameters.map((p) =>
      p === 't' ? `τ=${cfg.t}` : `${p}=${cfg[p]}`,
    );
    const name = shown.length > 0 ? `${method} (${shown.join(', ')})` : method;
    results.push({ name, r, cfg });
  }
  const c = results[0].cfg;
  console.log(
    `\n${c.dataset}, ${c.arch} width ${c.width}, ${c.epochs} epochs, batch ${c.batchSize}, K ${c.K}, seed ${c.seed}, train subset ${c.trainSubset || 'all'}, test subset ${c.testSubset || 'all'}`,
  );
  console.log('Fine-label Recall@K (%) on the test split:\n');
  console.log(
    formatRecallTable(
      results.map(({ name, r }) => ({
        name,
        recalls: Object.fromEntries(r.recall.map((x) => [x.k, x.recall])),
      })),
      RECALL_KS,
      { nameHeader: 'method' },
    ),
  );
  console.log('\nthroughput:');
  for (const { name, r } of results)
    console.log(
      `  ${name.padEnd(24)} ${r.imagesPerS.toFixed(1)} images/s on ${r.backend} × ${r.workers} worker(s), wall ${r.wallTimeS.toFixed(0)} s`,
    );
}

main().catch((err: unknown) => {
  process.stderr.write(`error: ${err instanceof Error ? err.message : String(err)}\n`);
  process.exit(1);
});
