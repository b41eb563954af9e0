import * as tf from '@tensorflow/tfjs';
import { openIndex, type CoarseFineDataset } from '@maskcon/datasets';
import {
  DATASET_AUGMENTATION,
  DATASET_NORMALIZATION,
  Rng,
  buildPipeline,
  loaderViewRngs,
  type Pipeline,
  type PipelineSpec,
} from '@maskcon/augment';
import {
  METHODS,
  MaskConModel,
  exportBackbone,
  initBackend,
  inversePermutation,
  loadPretrainedBackbone,
  stemForImageSize,
  type BackendName,
  type StepGradients,
} from '@maskcon/model';
import {
  WASM_PASS_BUDGET_MB,
  estimatePassMB,
  resolveMicroBatch,
  type TrainConfig,
} from './config.js';
import type { Collective } from './parallel/collective.js';
import { embedImages } from './embed.js';

/**
 * Random streams of a run besides augmentation (augmentation uses the BatchLoader's per-image
 * generators, `loaderViewRngs`). The values are part of every run's results: keep them.
 */
export enum RandomStream {
  /** The shuffle-BN permutation of a batch. */
  Shuffle = 3,
  /** The train (pos 1) and test (pos 2) subsets. */
  Subset = 5,
}

/**
 * The generator of `stream` at (seed, epoch, step, pos), a function of those alone: every
 * replica draws the same shuffle permutation, and a resumed run the same subsets.
 */
export function streamRng(
  seed: number,
  epoch: number,
  step: number,
  stream: RandomStream,
  pos: number,
): Rng {
  let h = Math.imul(seed ^ 0x9e3779b9, 0x85ebca6b);
  for (const v of [epoch, step, stream, pos]) {
    h = Math.imul(h ^ (v + 0x632be5ab), 0xc2b2ae35);
    h ^= h >>> 15;
  }
  return new Rng(h >>> 0);
}

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
 * One data-parallel replica: a full copy of the model plus the data. With worldSize = 1 it is
 * the whole single-process trainer. With W replicas, replica r takes rows [r·B/W, (r+1)·B/W)
 * of the batch for the query loss and the same slice of the shuffled batch for the keys; the
 * keys are all-gathered, the gradients and BN statistics averaged, so every replica applies
 * the same update as one process with B images and `bnSplits` BN groups would.
 */
export class Replica {
  readonly model: MaskConModel;
  readonly trainSet: CoarseFineDataset;
  readonly testSet: CoarseFineDataset;
  readonly pipeQ: Pipeline;
  readonly pipeK: Pipeline;
  readonly pipeTest: Pipeline;
  private readonly channels: number;
  private readonly normalization: { mean: readonly number[]; std: readonly number[] };
  private readonly localBnSplits: number;
  /** Forward/backward passes per step (gradient accumulation over whole BN groups). */
  readonly passes: number = 1;

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
    this.normalization = pipelineNormalization(cfg, this.trainSet);
    this.pipeQ = buildPipeline(pipelineSpec(cfg, this.trainSet, cfg.augQ));
    this.pipeK = buildPipeline(pipelineSpec(cfg, this.trainSet, cfg.augK));
    this.pipeTest = buildPipeline(pipelineSpec(cfg, this.trainSet, 'test'));
    const w = collective.worldSize;
    if (cfg.batchSize % w !== 0)
      throw new Error(
        `--batch-size ${cfg.batchSize} must be divisible by the number of workers (${w}).`,
      );
    if (cfg.bnSplits % w !== 0)
      throw new Error(
        `--bn-splits ${cfg.bnSplits} must be a multiple of the number of workers (${w}): each worker holds whole BatchNorm groups.`,
      );
    this.localBnSplits = cfg.bnSplits / w;
    const stem = cfg.stem === 'auto' ? stemForImageSize(this.pipeTest.size) : cfg.stem;
    this.model = new MaskConModel({
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
          ? (cfg.labels === 'fine' ? this.trainSet.fineClassNames : this.trainSet.coarseClassNames)
              .length
          : undefined,
      },
    });
    try {
      this.passes = this.choosePasses(stem);
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
    const fits = (m: number) => this.backend !== 'wasm' || (need(m) ?? 0) <= WASM_PASS_BUDGET_MB;
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
    const backend = await initBackend(cfg.backend === 'auto' ? undefined : cfg.backend, log);
    const r = new Replica(cfg, indexPath, collective, backend.name);
    if (r.passes > 1 && collective.rank === 0)
      log(
        `micro-batches: ${r.passes} passes of ${cfg.batchSize / collective.worldSize / r.passes} images per worker and step (gradients accumulated over whole BN groups)`,
      );
    if (cfg.pretrained) {
      const res = loadPretrainedBackbone(r.model.encoderQ, cfg.pretrained, {
        skipMismatchedStem: cfg.skipMismatchedStem === 1,
      });
      r.model.syncKeyEncoder(); // both encoders start from the pretrained weights
      log(
        `pretrained: ${res.loaded.length} tensors from ${cfg.pretrained}${res.greyStem ? ' (RGB conv1 summed over channels for grey images)' : ''}${res.skipped.length ? `; kept fresh: ${res.skipped.join(', ')}` : ''}`,
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

  /**
   * Keys of the whole batch with shuffle BN, this replica computing its share of the shuffled
   * batch. Returns B×d in batch order.
   */
  private batchKeys(s: {
    indices: Int32Array;
    epoch: number;
    step: number;
    views?: BatchViews;
  }): tf.Tensor2D {
    const B = s.indices.length;
    const { rank, worldSize } = this.collective;
    const share = B / worldSize;
    // The permutation depends only on (seed, epoch, step): a resumed run draws the same one.
    const perm = streamRng(this.cfg.seed, s.epoch, s.step, RandomStream.Shuffle, 0).permutation(B);
    const inverse = inversePermutation(perm);
    const xk = this.views(s, perm.subarray(rank * share, (rank + 1) * share), this.pipeK, 'key');
    const kShard = this.model.encodeKeys(xk, this.localBnSplits, this.passes); // share×d, shuffled order
    xk.dispose();
    if (worldSize === 1) {
      const k = tf.tidy(() => tf.gather(kShard, tf.tensor1d(inverse, 'int32')) as tf.Tensor2D);
      kShard.dispose();
      return k;
    }
    const gathered = this.collective.allGather(kShard.dataSync() as Float32Array); // B×d shuffled
    const d = kShard.shape[1];
    kShard.dispose();
    return tf.tidy(
      () => tf.gather(tf.tensor2d(gathered, [B, d]), tf.tensor1d(inverse, 'int32')) as tf.Tensor2D,
    );
  }

  /** Enqueues key-view projections of a batch (queue filling before the first step). */
  fill(s: {
    indices: Int32Array;
    labels: Int32Array;
    epoch: number;
    step: number;
    views?: BatchViews;
  }): void {
    const k = this.batchKeys(s);
    this.model.queue.enqueue(k, s.labels);
    k.dispose();
  }

  /** One MoCo/MaskCon step on the batch. Returns the full-batch mean loss as a device scalar. */
  step(s: StepInput): tf.Scalar {
    const B = s.indices.length;
    const { rank, worldSize } = this.collective;
    const share = B / worldSize;
    this.model.momentumUpdateKeyEncoder(); // before computing keys
    const k = this.batchKeys(s); // B×d
    const rows = Int32Array.from({ length: share }, (_, i) => rank * share + i);
    const xq = this.views(s, rows, this.pipeQ, 'query');
    const kMine =
      worldSize === 1 ? k : (tf.slice(k, [rank * share, 0], [share, k.shape[1]]) as tf.Tensor2D);
    const g = this.model.gradients(
      xq,
      kMine,
      s.labels.subarray(rank * share, (rank + 1) * share),
      this.localBnSplits,
      this.passes,
    );
    xq.dispose();
    if (kMine !== k) kMine.dispose();
    let loss = g.loss;
    if (worldSize > 1) loss = this.averageAcrossReplicas(g);
    this.model.applyGradients(g, s.lr);
    this.model.queue.enqueue(k, s.labels);
    k.dispose();
    return loss;
  }

  /** All-reduces gradients, BN statistics and the loss in one flat buffer; updates `g` in place. */
  private averageAcrossReplicas(g: StepGradients): tf.Scalar {
    const parts: tf.Tensor[] = [...g.grads.values()];
    for (const st of g.bnStats) parts.push(st.mean, st.variance);
    const total = parts.reduce((a, t) => a + t.size, 0) + 1;
    const flat = new Float32Array(total);
    let o = 0;
    for (const t of parts) {
      flat.set(t.dataSync() as Float32Array, o);
      o += t.size;
    }
    flat[o] = g.loss.dataSync()[0];
    this.collective.allReduceMean(flat);
    o = 0;
    for (const [name, t] of g.grads) {
      g.grads.set(name, tf.tensor(flat.subarray(o, o + t.size), t.shape));
      o += t.size;
      t.dispose();
    }
    for (const st of g.bnStats) {
      const c = st.mean.size;
      st.mean.dispose();
      st.variance.dispose();
      st.mean = tf.tensor1d(flat.subarray(o, o + c));
      st.variance = tf.tensor1d(flat.subarray(o + c, o + 2 * c));
      o += 2 * c;
    }
    g.loss.dispose();
    return tf.scalar(flat[o]);
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
      mean: this.normalization.mean,
      std: this.normalization.std,
      dataset: this.cfg.dataset,
      method: this.cfg.method,
      note: 'Output: pooled backbone features; L2-normalise them and compare by cosine similarity for retrieval.',
    });
  }

  /** Number of floats `averageAcrossReplicas` exchanges (for sizing shared buffers). */
  reduceSize(): number {
    let n = 1;
    for (const [name, v] of this.model.encoderQ.trainable) {
      n += v.size;
      if (
        name.endsWith('.weight') &&
        this.model.encoderQ.buffers.has(name.replace(/weight$/, 'running_mean'))
      )
        n += 2 * v.size;
    }
    return n;
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

/** The dataset's normalisation: the paper's where the dataset is one of its own, else the index's channel statistics. */
function pipelineNormalization(
  cfg: TrainConfig,
  trainSet: CoarseFineDataset,
): { mean: readonly number[]; std: readonly number[] } {
  return (
    DATASET_NORMALIZATION[knownDataset(cfg.dataset)] ?? {
      mean: trainSet.channelMean,
      std: trainSet.channelStd,
    }
  );
}

function knownDataset(dataset: string): string {
  return dataset.startsWith('cifartoy') ? 'cifartoy' : dataset;
}

/**
 * The pipeline of `kind` for a run: the paper's per-dataset pipeline where the dataset is one
 * of the paper's (or Fashion-MNIST); otherwise the CIFAR-style pipeline at the stored image
 * size with the index's own channel statistics. A name, so loader workers rebuild the same one.
 */
export function pipelineSpec(
  cfg: TrainConfig,
  trainSet: CoarseFineDataset,
  kind: TrainConfig['augQ'],
): PipelineSpec {
  const known = knownDataset(cfg.dataset);
  if (known in DATASET_AUGMENTATION) return { kind, dataset: known };
  return {
    kind,
    size: trainSet.image(0).height,
    mean: trainSet.channelMean,
    std: trainSet.channelStd,
  };
}
