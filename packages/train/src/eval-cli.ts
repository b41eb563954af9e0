import type * as tf from '@tensorflow/tfjs';
import { existsSync } from 'node:fs';
import {
  createCommand,
  enumOption,
  intListOption,
  intOption,
  Option,
  pathOption,
  runCli,
} from '@maskcon/datasets';
import { join } from 'node:path';
import { defaultIndexPath, openIndex, type Split } from '@maskcon/datasets';
import { makePipeline } from '@maskcon/augment';
import { BACKEND_ORDER, initBackend, loadBackbone, type BackendName } from '@maskcon/model';
import { DEFAULT_KS, formatRecallTable, recallAtK } from '@maskcon/eval';
import { DEFAULT_CONFIG, type TrainConfig } from './config.js';
import { ProgressBar } from './progress.js';
import { describeTestSet, RunsDb, type TestSetInfo } from './runs-db.js';
import { runFolder } from './run-folder.js';
import { embedImages } from './embed.js';

const program = createCommand(
  'pnpm eval',
  'Embed a split with an exported backbone, print its fine-label Recall@K and store it in the runs database.',
)
  .argument(
    '<target>',
    "a run id from `pnpm runs` (uses runs/<id>/model and the run's dataset index), or any exported model folder (model.json + weights.bin)",
  )
  .option('--dataset <name>', "dataset whose index to evaluate on (default: the run's dataset)")
  .addOption(
    new Option(
      '--index <file>',
      "SQLite index to evaluate on (default: the run's index)",
    ).argParser(pathOption('--index')),
  )
  .addOption(
    new Option('--split <split>', 'split to embed')
      .default('test')
      .argParser(enumOption('--split', ['test', 'train'] as const)),
  )
  .addOption(
    new Option('--ks <list>', 'Ks of Recall@K, comma-separated')
      .default([...DEFAULT_KS], DEFAULT_KS.join(','))
      .argParser(intListOption('--ks', { min: 1 })),
  )
  .addOption(
    new Option('--batch-size <n>', 'images per forward pass')
      .default(256)
      .argParser(intOption('--batch-size', { min: 1 })),
  )
  .addOption(
    new Option('--backend <name>', 'compute backend (default: the first that loads)').argParser(
      enumOption('--backend', BACKEND_ORDER),
    ),
  )
  .addOption(
    new Option('--runs-db <file>', 'runs database ($MASKCON_RUNS)')
      .default(DEFAULT_CONFIG.runsDb)
      .argParser(pathOption('--runs-db')),
  );

/** `pnpm eval`: embed a split with an exported backbone, print and store Recall@K. */
async function main(): Promise<void> {
  program.parse();
  const target = program.args[0];
  const o = program.opts();
  const runsDbPath = o.runsDb as string;
  const db = new RunsDb(runsDbPath);
  let runId: number | null = null;
  let modelDir = target;
  let runCfg: TrainConfig | undefined;
  if (/^\d+$/.test(target)) {
    runId = Number(target);
    const row = db.getRun(runId);
    if (!row) throw new Error(`No run ${target} in ${runsDbPath}; \`pnpm runs\` lists the runs.`);
    runCfg = JSON.parse(row.config) as TrainConfig;
    modelDir = runFolder(runsDbPath, runId).model;
  }
  if (!existsSync(join(modelDir, 'model.json')))
    throw new Error(`No exported model at ${modelDir} (model.json missing).`);
  const dataset = o.dataset as string | undefined;
  const indexPath =
    (o.index as string | undefined) ??
    (dataset
      ? defaultIndexPath(dataset)
      : (runCfg?.index ?? (runCfg ? defaultIndexPath(runCfg.dataset) : undefined)));
  if (!indexPath)
    throw new Error(
      'Say which data to evaluate on: --dataset NAME or --index FILE (or give a run id).',
    );
  const split = o.split as Split;
  const ks = o.ks as number[];
  const batchSize = o.batchSize as number;

  const backend = await initBackend(o.backend as BackendName | undefined);
  const { model, meta } = await loadBackbone(modelDir);
  const ds = openIndex(indexPath, split);
  const [h, , c] = meta.inputShape;
  if (ds.image(0).channels !== c)
    throw new Error(
      `${indexPath} has ${ds.image(0).channels}-channel images but the model expects ${c}.`,
    );
  const pipe = makePipeline('test', { size: h, mean: meta.mean, std: meta.std });
  const n = ds.size;
  const testSet: TestSetInfo = {
    split,
    images: n,
    splitImages: n,
    labels: runCfg?.labels ?? null,
  };
  if (runId !== null) {
    // Numbers are comparable only on the same test set: say so before the embedding starts.
    const trained = db.finalTestSet(runId);
    if (
      trained &&
      (trained.split !== testSet.split ||
        trained.images !== testSet.images ||
        trained.labels !== testSet.labels)
    )
      process.stderr.write(
        `warning: run ${runId} measured its Recall@K in training on ${describeTestSet(trained)}; this evaluation uses ${describeTestSet(testSet)} — the two are not comparable.\n`,
      );
  }
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
  db.logEvaluation({ runId, model: modelDir, indexPath, testSet, recalls });
  console.log(
    `\n${modelDir} on ${indexPath} (${split}, ${n} images, backend ${backend.name}) — fine-label Recall@K (%):\n`,
  );
  console.log(formatRecallTable([{ name: meta.arch, recalls }], ks, { nameHeader: 'model' }));
  ds.close();
  db.close();
}

runCli(main);
