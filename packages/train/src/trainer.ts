import { execFileSync } from 'node:child_process';
import { availableParallelism } from 'node:os';
import { existsSync, mkdirSync } from 'node:fs';
import { dirname } from 'node:path';
import { openIndex, defaultIndexPath } from '@maskcon/datasets';
import { BatchLoader, epochPermutation } from '@maskcon/augment';
import { type Rng, streamRng } from '@maskcon/random';
import { describeNonFinite, learningRateAt } from '@maskcon/model';
import { recallAtKParallel } from '@maskcon/eval';
import {
  DEFAULT_CONFIG,
  resolveLoaderWorkers,
  resolveWorkers,
  validateAgainstData,
  type TrainConfig,
} from './config.js';
import { createEngine, type Engine } from './engine.js';
import type { BatchViews } from './replica.js';
import { pipelineSpec, runRecipe } from './recipes.js';
import {
  firstNonFiniteInState,
  loadCheckpoint,
  saveCheckpoint,
  type CheckpointMeta,
} from './checkpoint.js';
import { checkpointPath, runDir, runFolder, saveTestEmbeddings } from './run-folder.js';
import { formatDuration, formatPlan, ProgressBar } from './progress.js';
import { RunsDb } from './runs-db.js';
import { RunLock } from './run-lock.js';
import { StopRequest, TrainingInterrupted } from './stop-request.js';

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

/** Takes the lock of run `runId` in its folder (refused while another process trains it). */
function claimRun(runsDb: string, runId: number, log: (m: string) => void): RunLock {
  const { dir, lock } = runFolder(runsDb, runId);
  mkdirSync(dir, { recursive: true });
  return RunLock.acquire(lock, runId, log);
}

/** `pnpm train --resume <run>` as a user types it (the runs DB named when not the default). */
export function resumeCommand(runsDb: string, runId: number): string {
  const quote = (p: string) => (/^[\w@%+=:,./-]+$/.test(p) ? p : `'${p.replace(/'/g, "'\\''")}'`);
  return `pnpm train --resume ${runId}${runsDb === DEFAULT_CONFIG.runsDb ? '' : ` --runs-db ${quote(runsDb)}`}`;
}

/**
 * Trains one run end to end: data → queue fill → epochs → Recall@K; recorded in the runs DB.
 * The run's folder holds a lock while it trains (run-lock.ts). Ctrl-C / SIGTERM stop it at the
 * next step boundary with a checkpoint, status `interrupted`, and a TrainingInterrupted error
 * whose message is the command that resumes it.
 */
export async function train(cfg: TrainConfig, hooks: TrainHooks = {}): Promise<TrainResult> {
  const log = hooks.log ?? ((m: string) => process.stderr.write(m + '\n'));
  // Paths first: an unusable --runs-db is named before any data is read or model built.
  RunsDb.checkPath(cfg.runsDb);
  const claim: { lock?: RunLock } = {};
  // A resumed run is claimed before any work: a live trainer of it is refused, not joined.
  if (hooks.resumeRunId !== undefined) claim.lock = claimRun(cfg.runsDb, hooks.resumeRunId, log);
  try {
    return await trainClaimed(cfg, hooks, log, claim);
  } finally {
    claim.lock?.release();
  }
}

async function trainClaimed(
  cfg: TrainConfig,
  hooks: TrainHooks,
  log: (m: string) => void,
  claim: { lock?: RunLock },
): Promise<TrainResult> {
  const t0 = performance.now();
  const indexPath = cfg.index ?? defaultIndexPath(cfg.dataset);
  // A resumed run's checkpoint is read (and checked: finite, complete) before any model is built.
  const resumeFile =
    hooks.resumeRunId === undefined ? undefined : checkpointPath(cfg.runsDb, hooks.resumeRunId);
  let resumeFrom = resumeFile && existsSync(resumeFile) ? loadCheckpoint(resumeFile) : undefined;

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
  /** Steps of startEpoch already trained (a run stopped mid-epoch), and their loss sum. */
  let startStep = 0;
  let startLossSum = 0;
  let iter = 0;
  let queueFilled = false;
  if (hooks.resumeRunId !== undefined) {
    runId = hooks.resumeRunId;
    if (resumeFrom) {
      const ck = resumeFrom;
      resumeFrom = undefined; // the engine holds the state now
      await engine.importState(ck.state);
      startEpoch = ck.meta.epoch + 1;
      startStep = ck.meta.step;
      startLossSum = ck.meta.epochLossSum;
      iter = ck.meta.iteration;
      queueFilled = true;
      db.rewindRun(runId, ck.meta.epoch);
      log(
        startStep > 0
          ? `resuming run ${runId} in epoch ${startEpoch} after step ${startStep} (iteration ${iter})`
          : `resuming run ${runId} after epoch ${ck.meta.epoch} (iteration ${iter})`,
      );
    } else {
      // Everything derives from the configuration and seed: starting over gives the same run.
      db.rewindRun(runId, 0);
      log(`run ${runId} stopped before its first checkpoint; training it again from the start`);
    }
  } else {
    runId = db.startRun({
      dataset: cfg.dataset,
      method: cfg.method,
      config: { ...cfg, workers },
      backend: engine.backend,
      gitRev: gitRevision(),
    });
    claim.lock = claimRun(cfg.runsDb, runId, log);
  }
  const lock = claim.lock!;
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
  /** Batches `first`..`count - 1` of `epoch`. */
  async function* batches(epoch: number, count: number, first = 0): AsyncGenerator<Planned> {
    if (loader) {
      let it = first;
      for await (const b of loader.epoch(epoch, first)) {
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
    for (let it = first; it < count; it++) {
      const indices = Int32Array.from(order.subarray(it * B, (it + 1) * B), (j) => trainIdx[j]);
      yield { indices, labels: Int32Array.from(indices, (i) => labelsAll[i]), done: () => {} };
    }
  }

  const evaluate = async (epoch: number) => {
    const { features, dim } = await embedWithProgress(
      engine,
      testIdx,
      `embedding test images (epoch ${epoch})`,
      () => lock.beat(),
    );
    if (epoch === cfg.epochs)
      saveTestEmbeddings(runDir(cfg.runsDb, runId), features, dim, testIdx, testLabels, testCoarse);
    const bar = new ProgressBar('Recall@K', testIdx.length, 'queries');
    const r = await recallAtKParallel(features, dim, testLabels, RECALL_KS, {
      onProgress: (done) => bar.update(done, done),
    });
    bar.finish(testIdx.length, testIdx.length);
    recall = RECALL_KS.map((k) => ({ k, recall: r[k] }));
    db.logRecall(runId, epoch, recall, {
      split: 'test',
      images: testIdx.length,
      splitImages: testSplitSize,
      labels: cfg.labels,
    });
    log(
      `epoch ${epoch}: ${recall.map((x) => `R@${x.k} ${(100 * x.recall).toFixed(2)}`).join('  ')}`,
    );
  };

  let lastGood = startEpoch - 1;
  const diverged = (what: string) => {
    const kept =
      lastGood > 0
        ? `the last good checkpoint (epoch ${lastGood}) is kept at ${ckptFile}`
        : existsSync(ckptFile)
          ? `the last good checkpoint is kept at ${ckptFile}`
          : 'no checkpoint was written yet';
    return Object.assign(
      new Error(
        `${what}; training stopped, ${kept}, and no model is exported. Lower --lr (or check the data) and start again.`,
      ),
      { diverged: true },
    );
  };
  const lossDiverged = (epoch: number, step: number) =>
    diverged(`The loss became NaN or infinite in epoch ${epoch} (by step ${step + 1})`);
  /**
   * Writes the checkpoint — after checking every parameter, BN statistic, momentum and queue key
   * is finite (a loss that stays finite does not prove the weights are: ReLU hides NaN): a
   * diverged state stops the run and never replaces the last good checkpoint.
   */
  const checkpoint = async (meta: Omit<CheckpointMeta, 'runId' | 'iteration' | 'config'>) => {
    const state = await engine.exportState();
    const bad = firstNonFiniteInState(state);
    if (bad)
      throw diverged(
        `The parameters became non-finite by epoch ${meta.epoch + (meta.step > 0 ? 1 : 0)} (${describeNonFinite(bad, state.arrays.get(bad.name)!.length)})`,
      );
    mkdirSync(dirname(ckptFile), { recursive: true });
    saveCheckpoint(ckptFile, state, { ...meta, runId, iteration: iter, config: cfg });
  };

  const stop = new StopRequest((signal) =>
    log(
      `\n${signal}: stopping at the next step boundary with a checkpoint (a second ${signal} ends the process at once; the last checkpoint stays)`,
    ),
  );
  /**
   * Ends the run at a step boundary after a stop signal: `step` steps of epoch `epochDone + 1`
   * are trained (their losses sum to `lossSum`); the checkpoint there is what a resume starts from.
   */
  const stopAt = async (epochDone: number, step: number, lossSum: number): Promise<never> => {
    await checkpoint({ epoch: epochDone, step, epochLossSum: lossSum });
    const where =
      epochDone >= cfg.epochs
        ? 'after the last epoch'
        : `in epoch ${epochDone + 1} after step ${step} of ${itersPerEpoch}`;
    throw new TrainingInterrupted(
      `Stopped on ${stop.signal} ${where}; checkpoint written to ${ckptFile}. Resume with: ${resumeCommand(cfg.runsDb, runId)}`,
      runId,
      stop.exitCode,
    );
  };
  /** Lets a pending signal's handler run between synchronous steps (microtasks alone never yield). */
  const yieldToSignals = () => new Promise<void>((r) => setImmediate(r));

  try {
    // Fill the queue with key-view projections of K training images before the first step.
    if (!queueFilled) {
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
        lock.beat(0, s);
        await yieldToSignals();
        if (stop.requested)
          throw new TrainingInterrupted(
            `Stopped on ${stop.signal} while filling the queue, before the run's first checkpoint. Start it again with: ${resumeCommand(cfg.runsDb, runId)}`,
            runId,
            stop.exitCode,
          );
      }
      bar.finish(cfg.K, cfg.K);
    }

    const loopStart = performance.now();
    let loopImages = 0;
    const runImages = cfg.epochs * itersPerEpoch * B;
    for (let epoch = startEpoch; epoch <= cfg.epochs; epoch++) {
      const first = epoch === startEpoch ? startStep : 0;
      if (stop.requested) await stopAt(epoch - 1, first, first > 0 ? startLossSum : 0);
      const bar = new ProgressBar(`epoch ${epoch}/${cfg.epochs}`, itersPerEpoch * B);
      const te = performance.now();
      let lr = 0;
      let lossSoFar = first > 0 ? startLossSum : 0;
      let it = first;
      for await (const b of batches(epoch, itersPerEpoch, first)) {
        if (stop.requested) {
          b.done();
          await stopAt(epoch - 1, it, lossSoFar + (await engine.takeLossSum()));
        }
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
          if (!Number.isFinite(lossSoFar)) throw lossDiverged(epoch, it);
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
        lock.beat(epoch, it);
        await yieldToSignals();
      }
      const epochLoss = (lossSoFar + (await engine.takeLossSum())) / itersPerEpoch;
      const secs = (performance.now() - te) / 1000;
      trainSeconds += secs;
      bar.finish(itersPerEpoch * B, itersPerEpoch * B, `loss ${epochLoss.toFixed(3)}`);
      if (!Number.isFinite(epochLoss)) throw lossDiverged(epoch, itersPerEpoch - 1);
      const e: EpochLog = {
        epoch,
        loss: epochLoss,
        lr,
        imagesPerS: ((itersPerEpoch - first) * B) / secs,
      };
      epochs.push(e);
      db.logEpoch(runId, e);
      if (epoch % cfg.checkpointEvery === 0 || epoch === cfg.epochs) {
        await checkpoint({ epoch, step: 0, epochLossSum: 0 });
        lastGood = epoch;
      }
      if (cfg.evalEvery > 0 && epoch % cfg.evalEvery === 0 && epoch !== cfg.epochs)
        await evaluate(epoch);
    }
    if (stop.requested) await stopAt(cfg.epochs, 0, 0);
    await evaluate(cfg.epochs);
    if (stop.requested) await stopAt(cfg.epochs, 0, 0);
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
    const interrupted = err instanceof TrainingInterrupted;
    db.finishRun(
      runId,
      interrupted
        ? 'interrupted'
        : (err as { diverged?: boolean }).diverged
          ? 'diverged'
          : 'failed',
      (performance.now() - t0) / 1000,
      0,
    );
    throw interrupted ? err : explainFailure(err, engine.backend);
  } finally {
    stop.dispose();
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
  onChunk: () => void,
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
    onChunk();
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
