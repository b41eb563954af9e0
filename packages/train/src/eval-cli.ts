import type * as tf from '@tensorflow/tfjs';
import { existsSync } from 'node:fs';
import { join } from 'node:path';
import { defaultIndexPath, openIndex, type Split } from '@maskcon/datasets';
import { makePipeline } from '@maskcon/augment';
import { initBackend, loadBackbone, type BackendName } from '@maskcon/model';
import { DEFAULT_KS, formatRecallTable, recallAtK } from '@maskcon/eval';
import { DEFAULT_CONFIG, type TrainConfig } from './config.js';
import { ProgressBar } from './progress.js';
import { RunsDb } from './runs-db.js';
import { runDir } from './trainer.js';
import { embedImages } from './embed.js';

const USAGE = `usage: pnpm eval RUN|MODEL_DIR [--dataset NAME | --index FILE] [--split test|train] [--ks 1,2,5,10,50,100]
                 [--batch-size N] [--backend wasm|cpu|…] [--runs-db FILE]
  RUN        a run id from \`pnpm runs\` (uses runs/<id>/model and the run's dataset index)
  MODEL_DIR  any exported model folder (model.json + weights.bin)`;

function flag(argv: string[], name: string): string | undefined {
  const i = argv.indexOf(name);
  if (i < 0) return undefined;
  const v = argv[i + 1];
  if (v === undefined || v.startsWith('--')) throw new Error(`Flag ${name} needs a value.`);
  return v;
}

/** `pnpm eval`: embed a split with an exported backbone, print and store Recall@K. */
async function main(): Promise<void> {
  const argv = process.argv.slice(2);
  if (argv.length === 0 || argv.includes('--help')) {
    console.log(USAGE);
    return;
  }
  const target = argv[0];
  const runsDbPath = flag(argv, '--runs-db') ?? DEFAULT_CONFIG.runsDb;
  const db = new RunsDb(runsDbPath);
  let runId: number | null = null;
  let modelDir = target;
  let runCfg: TrainConfig | undefined;
  if (/^\d+$/.test(target)) {
    runId = Number(target);
    const row = db.getRun(runId);
    if (!row) throw new Error(`No run ${target} in ${runsDbPath}; \`pnpm runs\` lists the runs.`);
    runCfg = JSON.parse(row.config) as TrainConfig;
    modelDir = join(runDir(runsDbPath, runId), 'model');
  }
  if (!existsSync(join(modelDir, 'model.json')))
    throw new Error(`No exported model at ${modelDir} (model.json missing).`);
  const dataset = flag(argv, '--dataset');
  const indexPath =
    flag(argv, '--index') ??
    (dataset
      ? defaultIndexPath(dataset)
      : (runCfg?.index ?? (runCfg ? defaultIndexPath(runCfg.dataset) : undefined)));
  if (!indexPath)
    throw new Error(
      'Say which data to evaluate on: --dataset NAME or --index FILE (or give a run id).',
    );
  const split = (flag(argv, '--split') ?? 'test') as Split;
  if (split !== 'test' && split !== 'train')
    throw new Error(`--split must be test or train, got ${split}.`);
  const ks = (flag(argv, '--ks') ?? DEFAULT_KS.join(',')).split(',').map(Number);
  if (ks.some((k) => !Number.isInteger(k) || k < 1))
    throw new Error(
      `--ks must be positive integers separated by commas, got ${flag(argv, '--ks')}.`,
    );
  const batchSize = Number(flag(argv, '--batch-size') ?? 256);

  const backend = await initBackend(
    (flag(argv, '--backend') as BackendName | undefined) ?? undefined,
  );
  const { model, meta } = await loadBackbone(modelDir);
  const ds = openIndex(indexPath, split);
  const [h, , c] = meta.inputShape;
  if (ds.image(0).channels !== c)
    throw new Error(
      `${indexPath} has ${ds.image(0).channels}-channel images but the model expects ${c}.`,
    );
  const pipe = makePipeline('test', { size: h, mean: meta.mean, std: meta.std });
  const n = ds.size;
  const bar = new ProgressBar(`embedding ${split}`, n);
  const { features, dim } = embedImages(
    ds,
    Int32Array.from({ length: n }, (_, i) => i),
    pipe,
    (x) => model.predict(x) as tf.Tensor2D,
    {
      batchSize,
      onProgress: (done) => bar.update(done, done),
    },
  );
  bar.finish(n, n);
  const recalls = recallAtK(features, dim, ds.fineLabels(), ks);
  db.logEvaluation({ runId, model: modelDir, indexPath, split, images: n, recalls });
  console.log(
    `\n${modelDir} on ${indexPath} (${split}, ${n} images, backend ${backend.name}) — fine-label Recall@K (%):\n`,
  );
  console.log(formatRecallTable([{ name: meta.arch, recalls }], ks, { nameHeader: 'model' }));
  ds.close();
  db.close();
}

main().catch((err: unknown) => {
  process.stderr.write(`error: ${err instanceof Error ? err.message : String(err)}\n`);
  process.exit(1);
});
