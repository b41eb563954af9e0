import { execFileSync } from 'node:child_process';
import { availableParallelism } from 'node:os';
import { mkdirSync } from 'node:fs';
import { dirname } from 'node:path';
import { openIndex, defaultIndexPath } from '@maskcon/datasets';
import { BatchLoader, epochPermutation } from '@maskcon/augment';
import { type Rng, streamRng } from '@maskcon/random';
import { learningRateAt } from '@maskcon/model';
import { recallAtKParallel } from '@maskcon/eval';
import {
  resolveLoaderWorkers,
  resolveWorkers,
  validateAgainstData,
  type TrainConfig,
} from './config.js';
import { createEngine, type Engine } from './engine.js';
import type { BatchViews } from './replica.js';
import { pipelineSpec, runRecipe } from './recipes.js';
import { loadCheckpoint, saveCheckpoint } from './checkpoint.js';
import { checkpointPath, runDir, runFolder, saveTestEmbeddings } from './run-folder.js';
import { formatDuration, formatPlan, ProgressBar } from './progress.js';
import { RunsDb } from './runs-db.js';

export const RECALL_KS = [1, 2, 5, 10];

export interface EpochLog {
  epoch: number;
  loss: number;
  lr: number;
  imagesPerS: number;
}

export interface TrainResult {
  runId: number;
  backend: string;
  workers: number;
  epochs: EpochLog[];
  /** Recall@K (fraction) on the test split after the last epoch. */
  recall: { k: number; recall: number }[];
  /** Test images Recall@K was measured on, and the size of the whole test split (when known). */
  testImages?: number;
  testSplitSize?: number;
  wallTimeS: number;
  /** Training throughput over all steps (images per second; each image gives two views). */
  imagesPerS: number;
  /** Final query-encoder parameters (host copies), when requested. */
  params?: Map<string, Float32Array>;
}

export interface TrainHooks {
  log?: (msg: string) => void;
  /** Continue this run from its last checkpoint (its stored config is used). */
  resumeRunId?: number;
  /** Return the final query-encoder parameters in the result. */
  snapshot?: boolean;
}

function gitRevision(): string | null {
  try {
    return execFileSync('git', ['rev-parse', '--short', 'HEAD'], {
      stdio: ['ignore', 'pipe', 'ignore'],
    })
      .toString()
      .trim();
  } catch {
    return null;
  }
}

/** Seeded random subset of 0..n-1 (sorted), or all when `limit` is 0 or ≥ n. */
function subsetIndices(n: number, limit: number, rng: Rng): Int32Array {
  if (limit === 0 || limit >= n) return Int32Array.from({ length: n }, (_, i) => i);
  return rng.permutation(n).subarray(0, limit).slice().sort();
}

/** Trains one run end to end: data → queue fill → epochs → Recall@K; recorded in the runs DB. */
export async function train(cfg: TrainConfig, hooks: TrainHooks = {}): Promise<TrainResult> {
  const log = hooks.log ?? ((m: string) => process.stderr.write(m + '\n'));
  const t0 = performance.now();
  const indexPath = cfg.index ?? defaultIndexPath(cfg.dataset);

  // Labels and sizes are read here; pixels are read by the replicas.
  const trainSet = openIndex(indexPath, 'train', { preloadMaxBytes: 0 });
  const testSet = openIndex(indexPath, 'test', { preloadMaxBytes: 0 });
  // Every random order derives from (seed, epoch) alone, so a resumed run sees the same data.
  const trainIdx = subsetIndices(
    trainSet.size,
    cfg.trainSubset,
    streamRng('trainSubset', cfg.seed),
  );
  const testIdx = subsetIndices(testSet.size, cfg.testSubset, streamRng('testSubset', cfg.seed));
  const labelsAll = cfg.labels === 'fine' ? trainSet.fineLabels() : trainSet.coarseLabels();
  const testFine = testSet.fineLabels();
  const testCoarseAll = testSet.coarseLabels();
  const recipe = runRecipe(cfg.dataset, trainSet, indexPath);
  const specQ = pipelineSpec(recipe, cfg.augQ);
  const specK = pipelineSpec(recipe, cfg.augK);
  const testSplitSize = testSet.size;
  trainSet.close();
  testSet.close();
  validateAgainstData(cfg, trainIdx.length);
  const testLabels = Int32Array.from(testIdx, (i) => testFine[i]);
  const testCoarse = Int32Array.from(testIdx, (i) => testCoarseAll[i]);

  const workers = resolveWorkers(cfg, availableParallelism());
  const engine: Engine = await createEngine(cfg, indexPath, workers, log);
  log(
    `model: ${cfg.arch} ${cfg.arch === 'resnet-mini' ? `width ${cfg.width}` : `base width ${cfg.baseWidth}`}, ${engine.params.toLocaleString('en')} parameters; ${trainIdx.length} train / ${testIdx.length} test images; method ${cfg.method} (${cfg.labels} labels); ${workers} worker(s) on ${engine.backend}`,
  );
  log(formatPlan(cfg.epochs, trainIdx.length, cfg.batchSize));
  if (recipe.from === 'index')
    log(
      `recipe: ${cfg.dataset} is a user dataset; from its index: ${recipe.size}×${recipe.size} crops, CIFAR-style pipelines, its own mean [${recipe.mean.map((v) => v.toFixed(3)).join(', ')}] and std [${recipe.std.map((v) => v.toFixed(3)).join(', ')}]`,
    );

  const db = new RunsDb(cfg.runsDb);
  let runId: number;
  let startEpoch = 1;
  let iter = 0;
  if (hooks.resumeRunId !== undefined) {
    runId = hooks.resumeRunId;
    const ck = loadCheckpoint(checkpointPath(cfg.runsDb, runId));
    await engine.importState(ck.state);
    startEpoch = ck.meta.epoch + 1;
    iter = ck.meta.iteration;
    db.rewindRun(runId, ck.meta.epoch);
    log(`resuming run ${runId} after epoch ${ck.meta.epoch} (iteration ${iter})`);
  } else {
    runId = db.startRun({
      dataset: cfg.dataset,
      method: cfg.method,
      config: { ...cfg, workers },
      backend: engine.backend,
      gitRev: gitRevision(),
    });
  }
  const ckptFile = checkpointPath(cfg.runsDb, runId);
  const B = cfg.batchSize;
  const itersPerEpoch = Math.floor(trainIdx.length / B); // the last incomplete batch is dropped
  const totalIters = itersPerEpoch * cfg.epochs;
  const warmupIters = Math.round(cfg.warmupEpochs * itersPerEpoch);
  const epochs: EpochLog[] = [];
  let recall: { k: number; recall: number }[] = [];
  let trainSeconds = 0;
  // Batches: epoch e visits trainIdx in the order epochPermutation(seed, e) (epoch 0 fills the
  // queue). With loader threads (--loader-workers) a BatchLoader augments them ahead of the model, else each
  // replica augments its share in its step; both use the loader's generators (same pixels).
  const loaderWorkers = resolveLoaderWorkers(cfg, availableParallelism(), workers);
  const loader =
    loaderWorkers > 0
      ? new BatchLoader({
          indexPath,
          batchSize: B,
          seed: cfg.seed,
          indices: trainIdx,
          query: specQ,
          key: specK,
          workers: loaderWorkers,
          prefetch: loaderWorkers + 2,
        })
      : null;
  log(
    loader
      ? `data: ${loaderWorkers} loader thread(s) augment the next batches while the model trains`
      : `data: each training worker augments its share of the batch${cfg.loaderWorkers < 0 ? ' (no core left free for a loader thread; --loader-workers N adds one)' : ''}`,
  );
  type Planned = { indices: Int32Array; labels: Int32Array; views?: BatchViews; done: () => void };
  async function* batches(epoch: number, count: number): AsyncGenerator<Planned> {
    if (loader) {
      let it = 0;
      for await (const b of loader.epoch(epoch)) {
        if (it++ >= count) break;
        yield {
          indices: b.indices,
          labels: Int32Array.from(b.indices, (i) => labelsAll[i]),
          views: { query: b.query, key: b.key },
          done: () => loader.release(b),
        };
      }
      return;
    }
    const order = epochPermutation(cfg.seed, epoch, trainIdx.length);
    for (let it = 0; it < count; it++) {
      const indices = Int32Array.from(order.subarray(it * B, (it + 1) * B), (j) => trainIdx[j]);
      yield { indices, labels: Int32Array.from(indices, (i) => labelsAll[i]), done: () => {} };
    }
  }

  const evaluate = async (epoch: number) => {
    const { features, dim } = await embedWithProgress(
      engine,
      testIdx,
      `embedding test images (epoch ${epoch})`,
    );
    if (epoch === cfg.epochs)
      saveTestEmbeddings(runDir(cfg.runsDb, runId), features, dim, testIdx, testLabels, testCoarse);
    const bar = new ProgressBar('Recall@K', testIdx.length, 'queries');
    const r = await recallAtKParallel(features, dim, testLabels, RECALL_KS, {
      onProgress: (done) => bar.update(done, done),
    });
    bar.finish(testIdx.length, testIdx.length);
    recall = RECALL_KS.map((k) => ({ k, recall: r[k] }));
    db.logRecall(runId, epoch, recall);
    log(
      `epoch ${epoch}: ${recall.map((x) => `R@${x.k} ${(100 * x.recall).toFixed(2)}`).join('  ')}`,
    );
  };

  let lastGood = startEpoch - 1;
  const diverged = (epoch: number, step: number) => {
    const kept =
      lastGood > 0
        ? `the last good checkpoint (epoch ${lastGood}) is kept at ${ckptFile}`
        : 'no checkpoint was written yet';
    return Object.assign(
      new Error(
        `The loss became NaN or infinite in epoch ${epoch} (by step ${step + 1}); training stopped and ${kept}. Lower --lr (or check the data) and start again.`,
      ),
      { diverged: true },
    );
  };

  try {
    // Fill the queue with key-view projections of K training images before the first step.
    if (startEpoch === 1) {
      const bar = new ProgressBar('filling the queue', cfg.K);
      let s = 0;
      for await (const b of batches(0, cfg.K / B)) {
        await engine.fill({
          indices: b.indices,
          labels: b.labels,
          views: b.views,
          epoch: 0,
          step: s++,
        });
        b.done();
        bar.update(s * B, s * B);
      }
      bar.finish(cfg.K, cfg.K);
    }

    const loopStart = performance.now();
    let loopImages = 0;
    const runImages = cfg.epochs * itersPerEpoch * B;
    for (let epoch = startEpoch; epoch <= cfg.epochs; epoch++) {
      const bar = new ProgressBar(`epoch ${epoch}/${cfg.epochs}`, itersPerEpoch * B);
      const te = performance.now();
      let lr = 0;
      let lossSoFar = 0;
      let it = 0;
      for await (const b of batches(epoch, itersPerEpoch)) {
        lr = learningRateAt(iter, cfg.lr, warmupIters, totalIters);
        await engine.step({
          indices: b.indices,
          labels: b.labels,
          views: b.views,
          epoch,
          step: it,
          lr,
        });
        b.done();
        if (it % 20 === 19) {
          lossSoFar += await engine.takeLossSum(); // read back only for the progress line
          if (!Number.isFinite(lossSoFar)) throw diverged(epoch, it);
        }
        const shown =
          it >= 19 ? `loss ${(lossSoFar / (it + 1 - ((it + 1) % 20))).toFixed(3)} ` : '';
        loopImages += B;
        const rate = loopImages / Math.max((performance.now() - loopStart) / 1000, 1e-9);
        // after the first steps: the measured rate and the whole run's estimate
        if (loopImages === Math.min(5, itersPerEpoch) * B)
          log(formatPlan(cfg.epochs, itersPerEpoch * B, B, rate));
        const runLeft = runImages - ((epoch - 1) * itersPerEpoch + it + 1) * B;
        bar.update(
          (it + 1) * B,
          (it + 1) * B,
          `${shown}lr ${lr.toExponential(2)} run ETA ${formatDuration(runLeft / rate)}`,
        );
        it++;
        iter++;
      }
      const epochLoss = (lossSoFar + (await engine.takeLossSum())) / itersPerEpoch;
      const secs = (performance.now() - te) / 1000;
      trainSeconds += secs;
      bar.finish(itersPerEpoch * B, itersPerEpoch * B, `loss ${epochLoss.toFixed(3)}`);
      if (!Number.isFinite(epochLoss)) throw diverged(epoch, itersPerEpoch - 1);
      const e: EpochLog = { epoch, loss: epochLoss, lr, imagesPerS: (itersPerEpoch * B) / secs };
      epochs.push(e);
      db.logEpoch(runId, e);
      if (epoch % cfg.checkpointEvery === 0 || epoch === cfg.epochs) {
        mkdirSync(dirname(ckptFile), { recursive: true });
        saveCheckpoint(ckptFile, await engine.exportState(), {
          runId,
          epoch,
          iteration: iter,
          config: cfg,
        });
        lastGood = epoch;
      }
      if (cfg.evalEvery > 0 && epoch % cfg.evalEvery === 0 && epoch !== cfg.epochs)
        await evaluate(epoch);
    }
    await evaluate(cfg.epochs);
    await engine.exportModel(runFolder(cfg.runsDb, runId).model);
    log(
      `exported the query encoder's backbone to ${runFolder(cfg.runsDb, runId).model} (TensorFlow.js layers model)`,
    );
    const params = hooks.snapshot ? await engine.snapshot() : undefined;
    const wallTimeS = (performance.now() - t0) / 1000;
    const imagesPerS = (totalIters * B) / Math.max(trainSeconds, 1e-9);
    db.finishRun(runId, 'finished', wallTimeS, imagesPerS);
    return {
      runId,
      backend: engine.backend,
      workers,
      epochs,
      recall,
      testImages: testIdx.length,
      testSplitSize,
      wallTimeS,
      imagesPerS,
      params,
    };
  } catch (err) {
    db.finishRun(
      runId,
      (err as { diverged?: boolean }).diverged ? 'diverged' : 'failed',
      (performance.now() - t0) / 1000,
      0,
    );
    throw explainFailure(err, engine.backend);
  } finally {
    db.close();
    await loader?.close().catch(() => undefined);
    await engine.close().catch(() => undefined);
  }
}

/**
 * A wasm trap in the middle of training is, in practice, its heap running out (a wasm32 heap
 * holds at most 4 GB per worker): say so, and what to change.
 */
/**
 * The test images' backbone features, in chunks so that a progress line can show the rate.
 * A chunk is whole embedding batches per worker; an image's features do not depend on the
 * other images of its batch (inference-mode BN), so the result equals one `engine.embed` call.
 */
async function embedWithProgress(
  engine: Engine,
  indices: Int32Array,
  label: string,
): Promise<{ features: Float32Array; dim: number }> {
  const chunk = 1024 * engine.workers;
  const bar = new ProgressBar(label, indices.length);
  let features = new Float32Array(0);
  let dim = 0;
  for (let s = 0; s < indices.length; s += chunk) {
    const end = Math.min(indices.length, s + chunk);
    const part = await engine.embed(indices.subarray(s, end));
    if (s === 0) {
      dim = part.dim;
      features = new Float32Array(indices.length * dim);
    }
    features.set(part.features, s * dim);
    bar.update(end, end);
  }
  bar.finish(indices.length, indices.length);
  return { features, dim };
}

export function explainFailure(err: unknown, backend: string): unknown {
  const m = err instanceof Error ? err.message : String(err);
  if (
    (backend !== 'wasm' && backend !== 'native') ||
    !/memory access out of bounds|table index is out of bounds|Aborted\(|out of memory|Cannot enlarge memory/i.test(
      m,
    )
  )
    return err;
  return new Error(
    `The WebAssembly backend stopped (${m}): most likely its heap, at most 4 GB per training worker, ran out of memory. ` +
      'Use smaller passes (--micro-batch, with --bn-splits for smaller BatchNorm groups), a smaller --batch-size or --arch, or a native backend (tfjs-node / tfjs-node-gpu).',
  );
}
