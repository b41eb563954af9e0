/**
 * `pnpm train … --plan` and `--dry-run`: what a run would do and cost, without creating it. The
 * plan resolves the training set (its index, or before it is built the published count of the
 * dataset's recipe and the command that builds it), checks the pretrained file, and prints
 * epochs × images; the dry run adds a measured rate from a few training steps of the run's own
 * network, workers and backend on synthetic images of the recipe's size, and the whole run's
 * estimate (with the levers that shorten it past a day). Nothing is written to the runs DB.
 */
import { existsSync, mkdtempSync, rmSync } from 'node:fs';
import { availableParallelism, tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { defaultIndexPath, openIndex } from '@maskcon/datasets';
import { checkPretrainedFile, resolvePretrained } from '@maskcon/model';
import { resolveWorkers, validateAgainstData, type TrainConfig } from './config.js';
import { createEngine } from './engine.js';
import { formatDuration, formatPlan } from './progress.js';
import { runRecipe, tableRecipe, type RunRecipe } from './recipes.js';
import { buildSyntheticIndex } from './synthetic-index.js';
import { explainFailure } from './trainer.js';

/** Untimed and timed steps of a dry run. */
export const DRY_RUN_WARMUP_STEPS = 1;
export const DRY_RUN_TIMED_STEPS = 2;

export interface PlanOptions {
  /** Time training steps (`--dry-run`) for a measured rate and the whole-run estimate. */
  measure: boolean;
  /** The plan's lines (stdout). */
  print?: (line: string) => void;
  /** Progress and the backend line (stderr). */
  log?: (line: string) => void;
}

export interface RunPlan {
  /** Train images the run would use (after --train-subset); from the index, else the recipe. */
  trainImages: number;
  /** Where they were counted. */
  counted: 'index' | 'recipe';
  /** Images/s of the dry run's timed steps. */
  imagesPerS?: number;
  /** Things to do before the run can start (build the index, fetch the weights). */
  missing: string[];
}

/** The command that builds a dataset's index at `indexPath`. */
function buildCommand(dataset: string, indexPath: string): string {
  const out = dirname(indexPath);
  const outFlag =
    indexPath === defaultIndexPath(dataset, out) && out !== (process.env.MASKCON_DATA ?? 'data')
      ? ` --out ${out}`
      : '';
  return `pnpm datasets:build ${dataset} --root DIR${outFlag}`;
}

/** Prints the plan of a run of `cfg` (and with `measure`, its measured rate); creates no run. */
export async function planRun(cfg: TrainConfig, opts: PlanOptions): Promise<RunPlan> {
  const print = opts.print ?? ((m: string) => process.stdout.write(`${m}\n`));
  const log = opts.log ?? ((m: string) => process.stderr.write(`${m}\n`));
  const indexPath = cfg.index ?? defaultIndexPath(cfg.dataset);
  const missing: string[] = [];
  const subset = (n: number) => (cfg.trainSubset > 0 ? Math.min(cfg.trainSubset, n) : n);

  let trainImages: number;
  let counted: RunPlan['counted'];
  let recipe: RunRecipe;
  if (existsSync(indexPath)) {
    const train = openIndex(indexPath, 'train', { preloadMaxBytes: 0 });
    try {
      recipe = runRecipe(cfg.dataset, train, indexPath);
      trainImages = subset(train.size);
      counted = 'index';
      print(
        `index: ${indexPath}, ${train.size.toLocaleString('en')} train images${cfg.trainSubset > 0 ? ` (--train-subset ${cfg.trainSubset}: ${trainImages.toLocaleString('en')})` : ''}`,
      );
    } finally {
      train.close();
    }
    validateAgainstData(cfg, trainImages);
  } else {
    const table = tableRecipe(cfg.dataset);
    if (!table)
      throw new Error(
        `No index at ${indexPath}, and '${cfg.dataset}' is not a published dataset whose size the plan knows. Build it first (a user CSV: pnpm datasets:build csv --name ${cfg.dataset} --root DIR), or pass --index FILE.`,
      );
    recipe = {
      size: table.size,
      mean: table.mean,
      std: table.std,
      family: table.family,
      from: 'table',
    };
    trainImages = subset(table.trainImages);
    counted = 'recipe';
    const build = buildCommand(cfg.dataset, indexPath);
    missing.push('build the index');
    print(
      `index: ${indexPath} is missing — build it with: ${build}; until then the plan counts the published ${table.trainImages.toLocaleString('en')} train images of ${cfg.dataset}${cfg.trainSubset > 0 ? ` (--train-subset ${cfg.trainSubset}: ${trainImages.toLocaleString('en')})` : ''}`,
    );
  }

  if (cfg.pretrained !== undefined) {
    try {
      const file = resolvePretrained(cfg.pretrained, cfg.arch);
      checkPretrainedFile(file);
      print(`pretrained: ${file}`);
    } catch (error) {
      missing.push('the pretrained weights');
      print(`pretrained: ${(error as Error).message}`);
    }
  }

  print(formatPlan(cfg.epochs, trainImages, cfg.batchSize));
  let imagesPerS: number | undefined;
  if (opts.measure) {
    imagesPerS = await measureStepRate(cfg, recipe, print, log);
    print(formatPlan(cfg.epochs, trainImages, cfg.batchSize, imagesPerS));
  }
  if (missing.length > 0) print(`before the run can start: ${missing.join(' and ')} (see above).`);
  print(`no run was created (${opts.measure ? '--dry-run' : '--plan'}).`);
  return { trainImages, counted, imagesPerS, missing };
}

/**
 * Images/s of the run's training step: its network, batch, BN splits, micro-batches, workers and
 * backend on a synthetic index of the recipe's image size (the pixels do not change the cost),
 * DRY_RUN_WARMUP_STEPS untimed then DRY_RUN_TIMED_STEPS timed steps, with the queue as it is
 * (zeros: a full queue costs the same). Pretrained weights are not loaded (the same cost).
 */
async function measureStepRate(
  cfg: TrainConfig,
  recipe: RunRecipe,
  print: (line: string) => void,
  log: (line: string) => void,
): Promise<number> {
  const dir = mkdtempSync(join(tmpdir(), 'maskcon-dry-run-'));
  const classes = 4;
  try {
    const index = await buildSyntheticIndex(dir, {
      size: recipe.size,
      channels: recipe.mean.length,
      classes,
      train: cfg.batchSize,
      test: 2,
    });
    const stepCfg: TrainConfig = { ...cfg, index, pretrained: undefined };
    const workers = resolveWorkers(cfg, availableParallelism());
    const engine = await createEngine(stepCfg, index, workers, log);
    const total = DRY_RUN_WARMUP_STEPS + DRY_RUN_TIMED_STEPS;
    print(
      `dry run: timing ${DRY_RUN_TIMED_STEPS} steps (after ${DRY_RUN_WARMUP_STEPS} untimed) of batch ${cfg.batchSize} on synthetic ${recipe.size}×${recipe.size} images: ${cfg.arch}${cfg.arch === 'resnet-mini' ? ` width ${cfg.width}` : ` base width ${cfg.baseWidth}`}, ${workers} worker(s) on ${engine.backend}`,
    );
    const times: number[] = [];
    try {
      const indices = Int32Array.from({ length: cfg.batchSize }, (_, i) => i);
      const labels = Int32Array.from(indices, (i) => (i % (classes * 5)) % classes);
      for (let step = 0; step < total; step++) {
        const t0 = performance.now();
        await engine.step({ indices, labels, epoch: 1, step, lr: cfg.lr });
        await engine.takeLossSum(); // waits for the step's device work
        const s = (performance.now() - t0) / 1000;
        if (step >= DRY_RUN_WARMUP_STEPS) times.push(s);
        log(
          `dry run: step ${step + 1}/${total} ${formatDuration(s)}${step < DRY_RUN_WARMUP_STEPS ? ' (untimed)' : ''}`,
        );
      }
    } catch (err) {
      // What would stop the run stops the dry run, said the same way (e.g. a full wasm heap).
      throw explainFailure(err, engine.backend);
    } finally {
      await engine.close();
    }
    const seconds = times.reduce((a, b) => a + b, 0);
    const rate = (cfg.batchSize * times.length) / seconds;
    print(
      `dry run: ${rate.toFixed(1)} img/s (timed steps ${times.map((t) => `${t.toFixed(2)} s`).join(', ')})`,
    );
    return rate;
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}
