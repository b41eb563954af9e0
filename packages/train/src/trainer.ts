import * as tf from '@tensorflow/tfjs';
import { execFileSync } from 'node:child_process';
import { openIndex, defaultIndexPath, type CoarseFineDataset } from '@maskcon/datasets';
import { Rng, augmentBatch, makePipeline, type Pipeline } from '@maskcon/augment';
import { MaskConModel, initBackend, learningRateAt, type BackendName } from '@maskcon/model';
import { recallAtK } from '@maskcon/eval';
import { validateAgainstData, type TrainConfig } from './config.js';
import { ProgressBar } from './progress.js';
import { RunsDb } from './runs-db.js';

/** Image side per dataset (algorithm.md / issue: 28 for Fashion-MNIST, 32 for CIFAR-style). */
const IMAGE_SIZE: Record<string, number> = { fashion_mnist: 28 };
export const RECALL_KS = [1, 2, 5, 10];

export interface EpochLog {
  epoch: number;
  loss: number;
  lr: number;
  imagesPerS: number;
}

export interface TrainResult {
  runId: number;
  backend: BackendName;
  epochs: EpochLog[];
  /** Recall@K (fraction) on the test split after the last epoch. */
  recall: { k: number; recall: number }[];
  wallTimeS: number;
  /** Training throughput over all steps (images/s, query+key views count once per image). */
  imagesPerS: number;
  model: MaskConModel;
}

export interface TrainHooks {
  log?: (msg: string) => void;
  /** Keep the model alive after training (tests, embedding); otherwise it is disposed. */
  keepModel?: boolean;
}

function gitRevision(): string | null {
  try {
    return execFileSync('git', ['rev-parse', '--short', 'HEAD'], { stdio: ['ignore', 'pipe', 'ignore'] }).toString().trim();
  } catch {
    return null;
  }
}

/** Seeded random subset of 0..n-1 (sorted), or all when `limit` is 0 or ≥ n. */
function subsetIndices(n: number, limit: number, rng: Rng): Int32Array {
  if (limit === 0 || limit >= n) return Int32Array.from({ length: n }, (_, i) => i);
  return rng.permutation(n).subarray(0, limit).slice().sort();
}

/** Views of a batch as NHWC tensors. */
function batchTensor(ds: CoarseFineDataset, idx: ArrayLike<number>, pipeline: Pipeline, rng: Rng): tf.Tensor4D {
  const images = ds.images(idx);
  const c = images[0].channels;
  const data = augmentBatch(images, pipeline, rng);
  return tf.tensor4d(data, [idx.length, pipeline.size, pipeline.size, c]);
}

/** Backbone features of every selected test image (test transform, eval-mode BN). N×feat. */
export function embedSplit(model: MaskConModel, ds: CoarseFineDataset, indices: Int32Array, pipeline: Pipeline, batchSize = 256): { features: Float32Array; dim: number } {
  const chunks: Float32Array[] = [];
  let dim = 0;
  const rng = new Rng(0); // the test pipeline draws no random numbers
  for (let s = 0; s < indices.length; s += batchSize) {
    const idx = indices.subarray(s, Math.min(indices.length, s + batchSize));
    const x = batchTensor(ds, idx, pipeline, rng);
    const f = model.features(x);
    dim = f.shape[1];
    chunks.push(f.dataSync() as Float32Array);
    x.dispose();
    f.dispose();
  }
  const out = new Float32Array(indices.length * dim);
  let o = 0;
  for (const c of chunks) {
    out.set(c, o);
    o += c.length;
  }
  return { features: out, dim };
}

/** Trains one run end to end: data → queue fill → epochs → Recall@K; recorded in the runs DB. */
export async function train(cfg: TrainConfig, hooks: TrainHooks = {}): Promise<TrainResult> {
  const log = hooks.log ?? ((m: string) => process.stderr.write(m + '\n'));
  const t0 = performance.now();
  const backend = await initBackend(cfg.backend === 'auto' ? undefined : cfg.backend, log);

  const indexPath = cfg.index ?? defaultIndexPath(cfg.dataset);
  const trainSet = openIndex(indexPath, 'train');
  const testSet = openIndex(indexPath, 'test');
  const size = IMAGE_SIZE[cfg.dataset] ?? trainSet.image(0).height;
  const norm = { size, mean: trainSet.channelMean, std: trainSet.channelStd };
  const pipeQ = makePipeline(cfg.augQ, norm);
  const pipeK = makePipeline(cfg.augK, norm);
  const pipeTest = makePipeline('test', norm);

  const dataRng = new Rng(cfg.seed);
  const trainIdx = subsetIndices(trainSet.size, cfg.trainSubset, dataRng.fork(1));
  const testIdx = subsetIndices(testSet.size, cfg.testSubset, dataRng.fork(2));
  validateAgainstData(cfg, trainIdx.length);
  const labelsAll = cfg.labels === 'fine' ? trainSet.fineLabels() : trainSet.coarseLabels();
  const testFine = testSet.fineLabels();
  const testLabels = Int32Array.from(testIdx, (i) => testFine[i]);

  const model = new MaskConModel({
    method: cfg.method,
    w: cfg.w,
    t: cfg.t,
    t0: cfg.t0,
    queueSize: cfg.K,
    keyMomentum: cfg.m,
    sgdMomentum: 0.9,
    weightDecay: cfg.weightDecay,
    bnSplits: cfg.bnSplits,
    seed: cfg.seed,
    network: { arch: cfg.arch, width: cfg.width, inChannels: trainSet.image(0).channels, projHidden: 512, projDim: 128 },
  });
  log(`model: ${cfg.arch} width ${cfg.width}, ${model.encoderQ.countTrainable().toLocaleString('en')} parameters; ${trainIdx.length} train / ${testIdx.length} test images; method ${cfg.method} (${cfg.labels} labels)`);

  const db = new RunsDb(cfg.runsDb);
  const runId = db.startRun({ dataset: cfg.dataset, method: cfg.method, config: cfg, backend: backend.name, gitRev: gitRevision() });
  const B = cfg.batchSize;
  const itersPerEpoch = Math.floor(trainIdx.length / B); // the last incomplete batch is dropped
  const totalIters = itersPerEpoch * cfg.epochs;
  const warmupIters = Math.round(cfg.warmupEpochs * itersPerEpoch);
  const epochs: EpochLog[] = [];
  let recall: { k: number; recall: number }[] = [];
  let trainSeconds = 0;

  const evaluate = (epoch: number) => {
    const { features, dim } = embedSplit(model, testSet, testIdx, pipeTest);
    const r = recallAtK(features, dim, testLabels, RECALL_KS);
    recall = RECALL_KS.map((k) => ({ k, recall: r[k] }));
    db.logRecall(runId, epoch, recall);
    log(`epoch ${epoch}: ${recall.map((x) => `R@${x.k} ${(100 * x.recall).toFixed(2)}`).join('  ')}`);
  };

  try {
    // Fill the queue with key-view projections of K training images before the first step.
    const fillRng = dataRng.fork(3);
    const fillOrder = fillRng.permutation(trainIdx.length);
    for (let s = 0; s < cfg.K; s += B) {
      const idx = Int32Array.from(fillOrder.subarray(s, s + B), (j) => trainIdx[j]);
      const xk = batchTensor(trainSet, idx, pipeK, fillRng.fork(s));
      model.fillQueue(xk, Int32Array.from(idx, (i) => labelsAll[i]));
      xk.dispose();
    }

    let iter = 0;
    for (let epoch = 1; epoch <= cfg.epochs; epoch++) {
      const epochRng = dataRng.fork(100 + epoch);
      const order = epochRng.permutation(trainIdx.length);
      const bar = new ProgressBar(`epoch ${epoch}/${cfg.epochs}`, itersPerEpoch * B);
      let lossSum: tf.Scalar = tf.scalar(0);
      let lastLoss = NaN;
      const te = performance.now();
      let lr = 0;
      for (let it = 0; it < itersPerEpoch; it++, iter++) {
        const idx = Int32Array.from(order.subarray(it * B, (it + 1) * B), (j) => trainIdx[j]);
        const labels = Int32Array.from(idx, (i) => labelsAll[i]);
        const stepRng = epochRng.fork(it);
        const xq = batchTensor(trainSet, idx, pipeQ, stepRng.fork(0));
        const xk = batchTensor(trainSet, idx, pipeK, stepRng.fork(1));
        lr = learningRateAt(iter, cfg.lr, warmupIters, totalIters);
        const loss = model.trainStep(xq, xk, labels, lr);
        const next = tf.add(lossSum, loss) as tf.Scalar;
        lossSum.dispose();
        loss.dispose();
        lossSum = next;
        xq.dispose();
        xk.dispose();
        if (it % 20 === 19) lastLoss = lossSum.dataSync()[0] / (it + 1); // read back only for the progress line
        bar.update((it + 1) * B, (it + 1) * B, `${Number.isNaN(lastLoss) ? '' : `loss ${lastLoss.toFixed(3)} `}lr ${lr.toExponential(2)}`);
      }
      const epochLoss = lossSum.dataSync()[0] / itersPerEpoch;
      lossSum.dispose();
      const secs = (performance.now() - te) / 1000;
      trainSeconds += secs;
      bar.finish(itersPerEpoch * B, itersPerEpoch * B, `loss ${epochLoss.toFixed(3)}`);
      if (!Number.isFinite(epochLoss)) throw new Error(`Loss became ${epochLoss} in epoch ${epoch}; lower --lr or check the data.`);
      const e: EpochLog = { epoch, loss: epochLoss, lr, imagesPerS: (itersPerEpoch * B) / secs };
      epochs.push(e);
      db.logEpoch(runId, e);
      if (cfg.evalEvery > 0 && epoch % cfg.evalEvery === 0 && epoch !== cfg.epochs) evaluate(epoch);
    }
    evaluate(cfg.epochs);
    const wallTimeS = (performance.now() - t0) / 1000;
    const imagesPerS = (totalIters * B) / Math.max(trainSeconds, 1e-9);
    db.finishRun(runId, 'finished', wallTimeS, imagesPerS);
    if (!hooks.keepModel) model.dispose();
    return { runId, backend: backend.name, epochs, recall, wallTimeS, imagesPerS, model };
  } catch (err) {
    db.finishRun(runId, 'failed', (performance.now() - t0) / 1000, 0);
    model.dispose();
    throw err;
  } finally {
    db.close();
    trainSet.close();
    testSet.close();
  }
}
