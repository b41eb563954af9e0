#!/usr/bin/env node
import { createCommand, intOption, Option, runCli } from '@maskcon/datasets';
import { DEFAULT_CONFIG, type TrainConfig, validateConfig } from './config.js';
import {
  addTrainOptions,
  DEFAULT_PRESET,
  flagOf,
  formatConfig,
  trainConfigFromOptions,
} from './options.js';
import { planRun } from './plan.js';
import { formatRunTable } from './report/run-table.js';
import { RunsDb } from './runs-db.js';
import { TrainingInterrupted } from './stop-request.js';
import { train } from './trainer.js';

/** Flags a resumed run may change: where it runs, never what it computes. */
const RESUME_KEYS = ['workers', 'loaderWorkers', 'backend', 'runsDb'] as const;

const program = addTrainOptions(
  createCommand(
    'pnpm train',
    'Train an embedding with MaskCon (or another method) and print its fine-label Recall@K.',
  ),
)
  .addOption(
    new Option(
      '--resume <run>',
      `continue a killed run from its last checkpoint with its stored configuration; only ${RESUME_KEYS.map(
        (k) => flagOf(k),
      ).join(', ')} may be given beside it`,
    ).argParser(intOption('--resume', { min: 1 })),
  )
  .addOption(
    new Option(
      '--plan',
      'print the resolved configuration and the plan (epochs × images, from the index or, before it is built, the published count and the build command), then exit without creating a run',
    ),
  )
  .addOption(
    new Option(
      '--dry-run',
      "as --plan, plus a measured rate from a few training steps of the run's network on synthetic images of the dataset's size, and the whole run's estimate",
    ),
  )
  .usage(
    '--dataset sop_split2 [--preset paper|quick|tiny] [--method maskcon] [--plan|--dry-run] [flags]',
  );

async function main(): Promise<void> {
  program.parse();
  const opts = program.opts();
  let cfg: TrainConfig;
  const resumeRunId = opts.resume as number | undefined;
  if (resumeRunId !== undefined) {
    // A resumed run keeps its stored configuration; only where it runs may change.
    const { resume: _, verbose: __, ...given } = opts;
    const other = Object.keys(given).filter((k) => !(RESUME_KEYS as readonly string[]).includes(k));
    if (other.length > 0) {
      const flags = other.map((k) => program.options.find((o) => o.attributeName() === k)?.long);
      throw new Error(
        `--resume continues a run with its stored configuration; only ${RESUME_KEYS.map(flagOf).join(', ')} may be given (got ${flags.join(', ')}).`,
      );
    }
    const runsDb = (given.runsDb as string | undefined) ?? DEFAULT_CONFIG.runsDb;
    const db = new RunsDb(runsDb);
    const row = db.getRun(resumeRunId);
    db.close();
    if (!row) throw new Error(`No run ${resumeRunId} in ${runsDb}; \`pnpm runs\` lists the runs.`);
    if (row.status === 'finished')
      throw new Error(`Run ${resumeRunId} already finished; nothing to resume.`);
    const stored = JSON.parse(row.config) as TrainConfig;
    cfg = {
      ...DEFAULT_CONFIG, // settings added after the run was stored take their defaults
      ...stored,
      runsDb,
      workers: (given.workers as number | undefined) ?? stored.workers,
      loaderWorkers:
        (given.loaderWorkers as number | undefined) ??
        stored.loaderWorkers ??
        DEFAULT_CONFIG.loaderWorkers,
      backend: (given.backend as TrainConfig['backend'] | undefined) ?? stored.backend,
    };
    validateConfig(cfg);
    console.log(formatConfig(cfg, `of run ${resumeRunId}`));
  } else if (opts.plan || opts.dryRun) {
    // A plan reports a missing pretrained file (or index) instead of stopping at it.
    cfg = trainConfigFromOptions(opts, { checkFiles: false });
    console.log(formatConfig(cfg, (opts.preset as string | undefined) ?? DEFAULT_PRESET));
    await planRun(cfg, { measure: opts.dryRun === true });
    return;
  } else {
    cfg = trainConfigFromOptions(opts);
    console.log(formatConfig(cfg, (opts.preset as string | undefined) ?? DEFAULT_PRESET));
  }
  let result: Awaited<ReturnType<typeof train>>;
  try {
    result = await train(cfg, { resumeRunId });
  } catch (err) {
    if (!(err instanceof TrainingInterrupted)) throw err;
    // Not an error: the run is checkpointed; the line says how to continue it.
    process.stderr.write(`${err.message}\n`);
    process.exit(err.exitCode);
  }
  const n = (x: number) => x.toLocaleString('en');
  const { testImages = 0, testSplitSize = 0 } = result;
  const testSet =
    testImages < testSplitSize
      ? `${n(testImages)} of the ${n(testSplitSize)} test images (--test-subset ${cfg.testSubset}; \`pnpm eval ${result.runId}\` scores them all)`
      : `all ${n(testImages)} test images`;
  console.log(
    `\nrun ${result.runId}: ${cfg.method} on ${cfg.dataset} (w=${cfg.w}, τ=${cfg.t}, seed ${cfg.seed}) — fine-label Recall@K on ${testSet}`,
  );
  console.log(formatRunTable(result));
}

runCli(main);
