import { availableParallelism } from 'node:os';
import * as tf from '@tensorflow/tfjs';
import { openIndex, type CoarseFineDataset } from '@maskcon/datasets';
import { buildPipeline, loaderViewRngs, type Pipeline } from '@maskcon/augment';
import { streamRng } from '@maskcon/random';
import {
  METHODS,
  MaskConModel,
  exportBackbone,
  initBackend,
  loadPretrainedBackbone,
  resolvePretrained,
  stemForImageSize,
  type BackendName,
  type StepBatch,
} from '@maskcon/model';
import {
  WASM_PASS_BUDGET_MB,
  estimatePassMB,
  resolveMicroBatch,
  type TrainConfig,
} from './config.js';
import type { Collective } from './parallel/collective.js';
import { pipelineSpec, runRecipe, type RunRecipe } from './recipes.js';
import { embedImages } from './embed.js';

/** Augmented views of a whole batch (B × size × size × C each, batch order), made by a loader. */
export interface BatchViews {
  query: Float32Array;
  key: Float32Array;
}

export interface StepInput {
  /** Global image indices of the batch (length B), in batch order. */
  indices: Int32Array;
  /**
   * The batch's views when a BatchLoader made them (the same pixels this replica would make:
   * both use loaderViewRngs); absent = the replica augments its share itself.
   */
  views?: BatchViews;
  /** Method labels (coarse, or fine) of the batch. */
  labels: Int32Array;
  epoch: number;
  step: number;
  lr: number;
}

/**
 * One data-parallel replica: a full copy of the model (whose `step` is the training step) plus
 * the data it reads. With worldSize = 1 it is the whole single-process trainer. It turns a
 * batch's indices into the model's StepBatch: its views (from the loader, or augmented here
 * with the loader's generators) and its shuffle-BN permutation (a function of seed, epoch, step).
 */
export class Replica {
  readonly model: MaskConModel;
  readonly trainSet: CoarseFineDataset;
  readonly testSet: CoarseFineDataset;
  readonly pipeQ: Pipeline;
  readonly pipeK: Pipeline;
  readonly pipeTest: Pipeline;
  private readonly channels: number;
  /** The dataset's recipe: size, normalisation and pipeline family of every view. */
  readonly recipe: RunRecipe;

  private constructor(
    readonly cfg: TrainConfig,
    readonly indexPath: string,
    readonly collective: Collective,
    readonly backend: BackendName,
  ) {
    this.trainSet = openIndex(indexPath, 'train');
    this.testSet = openIndex(indexPath, 'test');
    const first = this.trainSet.image(0);
    this.channels = first.channels;
    this.recipe = runRecipe(cfg.dataset, this.trainSet, indexPath);
    this.pipeQ = buildPipeline(pipelineSpec(this.recipe, cfg.augQ));
    this.pipeK = buildPipeline(pipelineSpec(this.recipe, cfg.augK));
    this.pipeTest = buildPipeline(pipelineSpec(this.recipe, 'test'));
    const w = collective.worldSize;
    if (cfg.batchSize % w !== 0)
      throw new Error(
        `--batch-size ${cfg.batchSize} must be divisible by the number of workers (${w}).`,
      );
    const stem = cfg.stem === 'auto' ? stemForImageSize(this.pipeTest.size) : cfg.stem;
    this.model = new MaskConModel(
      {
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
        network: {
          arch: cfg.arch,
          width: cfg.width,
          baseWidth: cfg.baseWidth,
          inChannels: this.channels,
          stem,
          projHidden: 512,
          projDim: 128,
          classifierClasses: METHODS[cfg.method].needsClassifier
            ? (cfg.labels === 'fine'
                ? this.trainSet.fineClassNames
                : this.trainSet.coarseClassNames
              ).length
            : undefined,
        },
      },
      collective,
    );
    try {
      this.model.passes = this.choosePasses(stem);
    } catch (err) {
      this.dispose();
      throw err;
    }
  }

  /**
   * Passes per step: --micro-batch, or the largest whole-BN-group pass within AUTO_PASS_PIXELS
   * that, on the wasm backend, fits one wasm heap. A pass that cannot fit fails here, before
   * any work, with the flags that make it fit.
   */
  private choosePasses(stem: 'small' | 'standard'): number {
    const cfg = this.cfg;
    const share = cfg.batchSize / this.collective.worldSize;
    const group = cfg.batchSize / cfg.bnSplits;
    const size = this.pipeTest.size;
    const stemPixels = stem === 'standard' ? Math.ceil(size / 4) ** 2 : size * size;
    const params = this.model.encoderQ.countTrainable();
    const need = (m: number) => estimatePassMB(cfg.arch, stemPixels, m, params, stem);
    // 'native' keeps its tensors on the wasm heap too (only the kernels are oneDNN's).
    const onWasmHeap = this.backend === 'wasm' || this.backend === 'native';
    const fits = (m: number) => !onWasmHeap || (need(m) ?? 0) <= WASM_PASS_BUDGET_MB;
    const micro = resolveMicroBatch(cfg.microBatch, share, group, size, fits);
    if (!fits(micro)) {
      let g = group;
      while (g > 1 && !fits(g)) g = Math.floor(g / 2);
      const hint =
        fits(g) && cfg.batchSize % g === 0
          ? `--bn-splits ${cfg.batchSize / g} --micro-batch ${g} (BatchNorm groups and passes of ${g} images)`
          : 'a smaller --arch or image size';
      throw new Error(
        `A training pass of ${micro} images of ${size}×${size} with ${cfg.arch} needs about ${(need(micro)! / 1000).toFixed(1)} GB, ` +
          `more than one WebAssembly heap holds (4 GB). Passes hold whole BatchNorm groups (${group} images = --batch-size / --bn-splits); ` +
          `use ${hint}, or a native backend (tfjs-node / tfjs-node-gpu) without this limit.`,
      );
    }
    return share / micro;
  }

  static async create(
    cfg: TrainConfig,
    indexPath: string,
    collective: Collective,
    log: (m: string) => void,
  ): Promise<Replica> {
    // oneDNN threads per worker: the cores shared out, so workers × threads never exceeds them.
    const threads = Math.max(1, Math.floor(availableParallelism() / collective.worldSize));
    const backend = await initBackend(cfg.backend === 'auto' ? undefined : cfg.backend, log, {
      threads,
      workers: collective.worldSize,
    });
    const r = new Replica(cfg, indexPath, collective, backend.name);
    const passes = r.model.passes;
    if (passes > 1 && collective.rank === 0)
      log(
        `micro-batches: ${passes} passes of ${cfg.batchSize / collective.worldSize / passes} images per worker and step (gradients accumulated over whole BN groups)`,
      );
    if (cfg.pretrained) {
      const file = resolvePretrained(cfg.pretrained, cfg.arch);
      const res = loadPretrainedBackbone(r.model.encoderQ, file, {
        skipMismatchedStem: cfg.skipMismatchedStem === 1,
      });
      r.model.syncKeyEncoder(); // both encoders start from the pretrained weights
      log(
        `pretrained: ${res.loaded.length} tensors from ${file}${res.greyStem ? ' (RGB conv1 summed over channels for grey images)' : ''}${res.skipped.length ? `; kept fresh: ${res.skipped.join(', ')}` : ''}`,
      );
    }
    return r;
  }

  /**
   * The views at batch positions `positions` as one NHWC tensor: rows of the loader's views
   * when given, else augmented here with the loader's generators (same pixels either way).
   */
  private views(
    s: { indices: Int32Array; epoch: number; step: number; views?: BatchViews },
    positions: ArrayLike<number>,
    pipeline: Pipeline,
    view: 'query' | 'key',
  ): tf.Tensor4D {
    const n = positions.length;
    const B = s.indices.length;
    const size = pipeline.size;
    const per = size * size * this.channels;
    const out = new Float32Array(n * per);
    const given = s.views?.[view];
    if (given) {
      if (given.length !== B * per)
        throw new Error(
          `The loader's ${view} views hold ${given.length} floats; a batch of ${B} images of ${size}×${size}×${this.channels} needs ${B * per}.`,
        );
      for (let i = 0; i < n; i++)
        out.set(given.subarray(positions[i] * per, (positions[i] + 1) * per), i * per);
    } else {
      const rngs = loaderViewRngs(this.cfg.seed, s.epoch, s.step, view === 'query' ? 0 : 1, B);
      const idx = Int32Array.from({ length: n }, (_, i) => s.indices[positions[i]]);
      const images = this.trainSet.images(idx);
      for (let i = 0; i < n; i++) pipeline(images[i], rngs[positions[i]], out, i * per);
    }
    return tf.tensor4d(out, [n, size, size, this.channels]);
  }

  /** The batch as the model's step reads it: labels, shuffle permutation and views. */
  private batch(s: {
    indices: Int32Array;
    labels: Int32Array;
    epoch: number;
    step: number;
    views?: BatchViews;
  }): StepBatch {
    const B = s.indices.length;
    return {
      labels: s.labels,
      // A function of (seed, epoch, step) only: every replica and a resumed run draw the same one.
      shuffle: streamRng('shuffle', this.cfg.seed, s.epoch, s.step).permutation(B),
      views: (positions, view) =>
        this.views(s, positions, view === 'query' ? this.pipeQ : this.pipeK, view),
    };
  }

  /** Enqueues key-view projections of a batch (queue filling before the first step). */
  fill(s: {
    indices: Int32Array;
    labels: Int32Array;
    epoch: number;
    step: number;
    views?: BatchViews;
  }): void {
    this.model.fillQueue(this.batch(s));
  }

  /** One training step on the batch. Returns the full-batch mean loss as a device scalar. */
  step(s: StepInput): tf.Scalar {
    return this.model.step(this.batch(s), s.lr);
  }

  /** Full training state (encoders, optimizer, queue) — identical on every replica. */
  exportState() {
    return this.model.exportState();
  }

  importState(st: Parameters<MaskConModel['importState']>[0]): void {
    this.model.importState(st);
  }

  /** Exports the query encoder's backbone as a TensorFlow.js model (see @maskcon/model). */
  async exportModel(dir: string): Promise<void> {
    const size = this.pipeTest.size;
    await exportBackbone(this.model.encoderQ, dir, {
      arch: this.cfg.arch,
      inputShape: [size, size, this.channels],
      mean: this.recipe.mean,
      std: this.recipe.std,
      dataset: this.cfg.dataset,
      method: this.cfg.method,
      note: 'Output: pooled backbone features; L2-normalise them and compare by cosine similarity for retrieval.',
    });
  }

  /** Number of floats a step's all-reduce exchanges (for sizing shared buffers). */
  reduceSize(): number {
    return this.model.reduceSize();
  }

  /** Backbone features (eval-mode BN, test transform) of test images `indices`. n×feat. */
  embed(indices: Int32Array): { features: Float32Array; dim: number } {
    return embedImages(this.testSet, indices, this.pipeTest, (x) => this.model.features(x));
  }

  dispose(): void {
    this.model.dispose();
    this.trainSet.close();
    this.testSet.close();
  }
}
