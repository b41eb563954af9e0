#!/usr/bin/env node
import { DEFAULT_CONFIG, parseTrainArgs, type TrainConfig } from './config.js';
import { RunsDb } from './runs-db.js';
import { train } from './trainer.js';
import { formatRunTable } from './report.js';

const USAGE = `usage: pnpm train --dataset fashion_mnist [--preset quick|paper|tiny] [--method maskcon|selfcon|grafit|supfine]
       [--epochs N] [--batch-size N] [--lr X] [--wd X] [--warmup-epochs N] [--w X] [--t X] [--t0 X] [--K N] [--m X]
       [--width N] [--bn-splits N] [--labels coarse|fine] [--train-subset N] [--test-subset N] [--eval-every N]
       [--seed N] [--backend auto|tfjs-node-gpu|tfjs-node|wasm|cpu] [--workers N] [--loader-workers N|auto] [--micro-batch N] [--checkpoint-every N]
       [--index FILE] [--runs-db FILE]
       pnpm train --resume RUN [--workers N] [--loader-workers N] [--backend B] [--runs-db FILE]   continue a killed run from its last checkpoint`;

async function main(): Promise<void> {
  const argv = process.argv.slice(2);
  if (argv.includes('--help') || argv.includes('-h')) {
    console.log(USAGE);
    return;
  }
  const ri = argv.indexOf('--resume');
  let cfg: TrainConfig;
  let resumeRunId: number | undefined;
  if (ri >= 0) {
    // A resumed run keeps its stored configuration; only where it runs may change.
    resumeRunId = Number(argv[ri + 1]);
    const rest = [...argv.slice(0, ri), ...argv.slice(ri + 2)];
    const overrides = parseTrainArgs(rest);
    const allowed = new Set(['--workers', '--loader-workers', '--backend', '--runs-db']);
    const other = rest.filter((a) => a.startsWith('--') && !allowed.has(a.split('=')[0]));
    if (other.length > 0)
      throw new Error(
        `--resume continues a run with its stored configuration; only --workers, --loader-workers, --backend and --runs-db may be given (got ${other.join(', ')}).`,
      );
    const db = new RunsDb(overrides.runsDb);
    const row = Number.isInteger(resumeRunId) ? db.getRun(resumeRunId) : undefined;
    db.close();
    if (!row)
      throw new Error(
        `No run ${argv[ri + 1]} in ${overrides.runsDb}; \`pnpm runs\` lists the runs.`,
      );
    if (row.status === 'finished')
      throw new Error(`Run ${resumeRunId} already finished; nothing to resume.`);
    const stored = JSON.parse(row.config) as TrainConfig;
    const given = (flag: string) => rest.some((a) => a === flag || a.startsWith(`${flag}=`));
    cfg = {
      ...DEFAULT_CONFIG, // settings added after the run was stored take their defaults
      ...stored,
      runsDb: overrides.runsDb,
      workers: given('--workers') ? overrides.workers : stored.workers,
      loaderWorkers: given('--loader-workers')
        ? overrides.loaderWorkers
        : (stored.loaderWorkers ?? DEFAULT_CONFIG.loaderWorkers),
      backend: given('--backend') ? overrides.backend : stored.backend,
    };
  } else {
    cfg = parseTrainArgs(argv);
  }
  const result = await train(cfg, { resumeRunId });
  console.log(
    `\nrun ${result.runId}: ${cfg.method} on ${cfg.dataset} (w=${cfg.w}, τ=${cfg.t}, seed ${cfg.seed}) — fine-label Recall@K on the test split`,
  );
  console.log(formatRunTable(result));
}

main().catch((err: unknown) => {
  process.stderr.write(`\nerror: ${err instanceof Error ? err.message : String(err)}\n`);
  process.exit(1);
});
