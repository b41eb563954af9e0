import * as tf from '@tensorflow/tfjs';
import type { ParamStore } from './params.js';
import {
  createNetwork,
  backbone,
  classifier,
  embed,
  l2Normalize,
  projector,
  updateRunningStats,
  type ForwardContext,
  type NetworkSpec,
} from './resnet.js';
import { MemoryQueue } from './queue.js';
import { installLeanGradients } from './lean-gradients.js';
import { SgdMomentum } from './sgd.js';
import { momentumAverage } from './kernels/updates.js';
import {
  METHODS,
  lossWithTargets,
  methodTargets,
  type MethodName,
  type MethodParams,
} from './methods/index.js';

/** inverse[perm[i]] = i: un-shuffles what `perm` shuffled. */
export function inversePermutation(perm: ArrayLike<number>): Int32Array {
  const inverse = new Int32Array(perm.length);
  for (let i = 0; i < perm.length; i++) inverse[perm[i]] = i;
  return inverse;
}

/** Passes must split a batch of n into whole BN groups. */
function checkPasses(n: number, bnSplits: number, passes: number): void {
  if (!(Number.isInteger(passes) && passes >= 1 && bnSplits % passes === 0 && n % passes === 0)) {
    throw new Error(
      `Cannot run a batch of ${n} images in ${bnSplits} BatchNorm groups as ${passes} passes: each pass must hold whole groups (--micro-batch must be a multiple of the BN group size that divides the batch).`,
    );
  }
}

/**
 * The data-parallel replicas a step runs on, and how they exchange arrays. A single process is
 * rank 0 of 1 (`SINGLE_REPLICA`); worker threads use shared-memory collectives
 * (@maskcon/train's SharedCollective). Every rank must obtain bit-identical results.
 */
export interface ReplicaGroup {
  readonly rank: number;
  readonly worldSize: number;
  /** Concatenation of every rank's `local` (equal lengths), in rank order. */
  allGather(local: Float32Array): Float32Array;
  /** Element-wise mean of every rank's `local` (equal lengths). Overwrites and returns `local`. */
  allReduceMean(local: Float32Array): Float32Array;
}

/** One replica: both exchanges are the identity. */
export const SINGLE_REPLICA: ReplicaGroup = Object.freeze({
  rank: 0,
  worldSize: 1,
  allGather: (local: Float32Array) => local,
  allReduceMean: (local: Float32Array) => local,
});

/** One batch of B images as the step reads it. */
export interface StepBatch {
  /** B labels (coarse, or fine) in batch order. */
  labels: Int32Array;
  /** The shuffle-BN permutation of the batch (B), drawn by the caller from the run's streams. */
  shuffle: Int32Array;
  /** The `view` images at batch positions `positions` as one n×H×W×C tensor (the caller owns the data). */
  views(positions: ArrayLike<number>, view: 'query' | 'key'): tf.Tensor4D;
}

export interface StepGradients {
  loss: tf.Scalar;
  /** Gradient per trainable parameter name. */
  grads: Map<string, tf.Tensor>;
  /** Per BN layer batch mean/variance (kept tensors), for the running statistics. */
  bnStats: NonNullable<ForwardContext['bnStats']>;
}

export interface MocoConfig extends MethodParams {
  method: MethodName;
  network: NetworkSpec;
  /** Queue size K (a multiple of the batch size). */
  queueSize: number;
  /** Contrastive temperature τ0. */
  t0: number;
  /** Key-encoder momentum m. */
  keyMomentum: number;
  sgdMomentum: number;
  weightDecay: number;
  /** BatchNorm groups per batch (split BN; the key batch is shuffled across them). */
  bnSplits: number;
  seed: number;
}

/**
 * MaskCon (and every registered method) in the MoCo framework (docs/method.md): two encoders,
 * the queue and SGD, and `step`, the one training step every run takes. It reads top to bottom
 * as the algorithm: momentum update → keys with shuffle BN → targets → query loss → gradients
 * averaged over the replicas → SGD → enqueue. With W replicas (`group`), replica r computes the
 * keys of rows [r·B/W, (r+1)·B/W) of the shuffled batch and the query loss of the same rows of
 * the batch; the keys are all-gathered and the gradients and BN statistics averaged, so every
 * replica applies the update one process with B images and `bnSplits` BN groups would.
 */
export class MaskConModel {
  readonly cfg: MocoConfig;
  readonly encoderQ: ParamStore;
  readonly encoderK: ParamStore;
  readonly queue: MemoryQueue;
  readonly optimizer: SgdMomentum;
  /** BatchNorm groups of this replica's share of a batch. */
  readonly localBnSplits: number;
  /** Forward/backward passes per step and replica (gradient accumulation over whole BN groups). */
  passes = 1;

  constructor(
    cfg: MocoConfig,
    readonly group: ReplicaGroup = SINGLE_REPLICA,
  ) {
    const method = METHODS[cfg.method];
    if (method.needsClassifier && !cfg.network.classifierClasses) {
      throw new Error(
        `${method.label} needs a classifier: set network.classifierClasses to the number of classes of its labels.`,
      );
    }
    if (cfg.bnSplits % group.worldSize !== 0)
      throw new Error(
        `--bn-splits ${cfg.bnSplits} must be a multiple of the number of workers (${group.worldSize}): each worker holds whole BatchNorm groups.`,
      );
    this.localBnSplits = cfg.bnSplits / group.worldSize;
    this.cfg = cfg;
    installLeanGradients(); // the backward pass releases activations and gradients as it goes
    this.encoderQ = createNetwork(cfg.network, cfg.seed);
    this.encoderK = this.encoderQ.cloneFrozen(); // θ_k ← θ_q at start
    this.queue = new MemoryQueue(cfg.queueSize, cfg.network.projDim);
    this.optimizer = new SgdMomentum(cfg.sgdMomentum, cfg.weightDecay);
  }

  /** θ_k ← θ_q for every parameter and buffer (after loading pretrained weights into θ_q). */
  syncKeyEncoder(): void {
    tf.tidy(() => {
      for (const [name, v] of [...this.encoderQ.trainable, ...this.encoderQ.buffers]) {
        (this.encoderK.trainable.get(name) ?? this.encoderK.buffers.get(name))!.assign(v);
      }
    });
  }

  /** θ_k ← m·θ_k + (1−m)·θ_q over trainable parameters (buffers keep their own statistics). */
  momentumUpdateKeyEncoder(): void {
    const m = this.cfg.keyMomentum;
    tf.tidy(() => {
      for (const [name, pq] of this.encoderQ.trainable) {
        const pk = this.encoderK.trainable.get(name)!;
        pk.assign(momentumAverage(pk, pq, m));
      }
    });
  }

  /**
   * Keys of an already-shuffled batch: normalize(proj(backbone_k(x))) with training-mode BN
   * over `bnSplits` groups. x: N×H×W×C → N×d (no gradient). Data-parallel workers call this on
   * their share of the shuffled batch.
   */
  encodeKeys(xShuffled: tf.Tensor4D, bnSplits = this.cfg.bnSplits, passes = 1): tf.Tensor2D {
    checkPasses(xShuffled.shape[0], bnSplits, passes);
    if (passes === 1)
      return tf.tidy(() =>
        embed(this.encoderK, xShuffled, { training: true, bnSplits, releaseIntermediates: true }),
      );
    // One pass per `bnSplits / passes` BN groups: the groups are independent, so the keys are
    // the same as in one pass, with a fraction of the activation memory.
    const m = xShuffled.shape[0] / passes;
    const parts: tf.Tensor2D[] = [];
    for (let c = 0; c < passes; c++) {
      parts.push(
        tf.tidy(() =>
          embed(this.encoderK, tf.slice(xShuffled, [c * m, 0, 0, 0], [m, -1, -1, -1]), {
            training: true,
            bnSplits: bnSplits / passes,
            releaseIntermediates: true,
          }),
        ),
      );
    }
    const k = tf.concat(parts, 0);
    tf.dispose(parts);
    return k;
  }

  /**
   * Keys k = normalize(proj(backbone_k(x_k))) of the whole batch with shuffle BN: the batch is
   * permuted before the key encoder (so BN groups mix other samples than the query's) and
   * un-permuted after. This replica encodes its share of the shuffled batch; the shares are
   * all-gathered. Returns B×d in batch order (no gradient).
   */
  batchKeys(batch: StepBatch): tf.Tensor2D {
    const B = batch.labels.length;
    const { rank, worldSize } = this.group;
    const share = B / worldSize;
    const perm = batch.shuffle;
    const inverse = inversePermutation(perm);
    const xk = batch.views(perm.subarray(rank * share, (rank + 1) * share), 'key');
    const kShard = this.encodeKeys(xk, this.localBnSplits, this.passes); // share×d, shuffled order
    xk.dispose();
    if (worldSize === 1) {
      const k = tf.tidy(() => tf.gather(kShard, tf.tensor1d(inverse, 'int32')) as tf.Tensor2D);
      kShard.dispose();
      return k;
    }
    const gathered = this.group.allGather(kShard.dataSync() as Float32Array); // B×d shuffled
    const d = kShard.shape[1];
    kShard.dispose();
    return tf.tidy(
      () => tf.gather(tf.tensor2d(gathered, [B, d]), tf.tensor1d(inverse, 'int32')) as tf.Tensor2D,
    );
  }

  /** Enqueues the key-view projections of a batch (filling the queue before the first step). */
  fillQueue(batch: StepBatch): void {
    const k = this.batchKeys(batch);
    this.queue.enqueue(k, batch.labels);
    k.dispose();
  }

  /**
   * Loss and gradients of the query encoder for (a share of) a batch, before the update.
   *   xq: n×H×W×C query views, k: n×d their keys, labels: n (coarse, or fine)
   * Returns the loss (device scalar), gradients by parameter name, and the BN batch statistics.
   */
  gradients(
    xq: tf.Tensor4D,
    k: tf.Tensor2D,
    labels: Int32Array,
    bnSplits = this.cfg.bnSplits,
    passes = 1,
  ): StepGradients {
    checkPasses(labels.length, bnSplits, passes);
    if (passes === 1) return this.gradientsOnePass(xq, k, labels, bnSplits);
    // Gradient accumulation over whole BN groups. Every query row's loss depends only on its own
    // view, its key and the queue, and BN statistics only on its group, so the mean of the
    // passes' losses, gradients and BN statistics equals the one-pass values (up to float
    // summation order) while the saved activations shrink by the factor `passes`.
    const m = labels.length / passes;
    let acc: StepGradients | undefined;
    for (let c = 0; c < passes; c++) {
      const xc = tf.slice(xq, [c * m, 0, 0, 0], [m, -1, -1, -1]);
      const kc = tf.slice(k, [c * m, 0], [m, -1]);
      const g = this.gradientsOnePass(
        xc,
        kc,
        labels.subarray(c * m, (c + 1) * m),
        bnSplits / passes,
      );
      tf.dispose([xc, kc]);
      if (!acc) {
        acc = g;
        continue;
      }
      const sum = <T extends tf.Tensor>(a: T, b: T): T => {
        const r = tf.add(a, b) as T;
        a.dispose();
        b.dispose();
        return r;
      };
      for (const [name, t] of g.grads) acc.grads.set(name, sum(acc.grads.get(name)!, t));
      acc.loss = sum(acc.loss, g.loss);
      g.bnStats.forEach((st, i) => {
        acc!.bnStats[i].mean = sum(acc!.bnStats[i].mean, st.mean);
        acc!.bnStats[i].variance = sum(acc!.bnStats[i].variance, st.variance);
      });
    }
    const mean = <T extends tf.Tensor>(a: T): T => {
      const r = tf.mul(a, 1 / passes) as T;
      a.dispose();
      return r;
    };
    const out = acc!;
    for (const [name, t] of out.grads) out.grads.set(name, mean(t));
    out.loss = mean(out.loss);
    for (const st of out.bnStats) {
      st.mean = mean(st.mean);
      st.variance = mean(st.variance);
    }
    return out;
  }

  private gradientsOnePass(
    xq: tf.Tensor4D,
    k: tf.Tensor2D,
    labels: Int32Array,
    bnSplits: number,
  ): StepGradients {
    const queueKeys = this.queue.keys; // K×d, read before this batch is enqueued
    const method = METHODS[this.cfg.method];
    const y = methodTargets(method, k, this.queue, labels, this.cfg); // n×(1+K), no gradient
    const bnStats: NonNullable<ForwardContext['bnStats']> = [];
    const ctx: ForwardContext = { training: true, bnSplits, bnStats };
    const vars = [...this.encoderQ.trainable.values()];
    const { value, grads } = tf.variableGrads(() => {
      const f = backbone(this.encoderQ, xq, ctx); // n×feat
      const q = l2Normalize(projector(this.encoderQ, f)); // n×d
      return lossWithTargets(method, q, k, queueKeys, y, labels, {
        ...this.cfg,
        classLogits: () => classifier(this.encoderQ, f), // n×C, only for methods with one
      });
    }, vars);
    y.dispose();
    const byName = new Map<string, tf.Tensor>();
    for (const [name, v] of this.encoderQ.trainable) byName.set(name, grads[v.name]);
    return { loss: value, grads: byName, bnStats };
  }

  /** SGD on the query encoder and BN running statistics; disposes the gradients and statistics. */
  applyGradients(g: Omit<StepGradients, 'loss'>, lr: number): void {
    updateRunningStats(this.encoderQ, g.bnStats);
    this.optimizer.step(this.encoderQ.trainable, Object.fromEntries(g.grads), lr);
    for (const t of g.grads.values()) t.dispose();
  }

  /**
   * One training step on a batch of B images (this replica's share of it). Returns the
   * full-batch mean loss as a device scalar (the caller decides when to read it).
   */
  step(batch: StepBatch, lr: number): tf.Scalar {
    const B = batch.labels.length;
    const { rank, worldSize } = this.group;
    const share = B / worldSize;
    this.momentumUpdateKeyEncoder(); // before computing keys
    const k = this.batchKeys(batch); // B×d
    const rows = Int32Array.from({ length: share }, (_, i) => rank * share + i);
    const xq = batch.views(rows, 'query'); // share×H×W×C
    const kMine =
      worldSize === 1 ? k : (tf.slice(k, [rank * share, 0], [share, k.shape[1]]) as tf.Tensor2D);
    const g = this.gradients(
      xq,
      kMine,
      batch.labels.subarray(rank * share, (rank + 1) * share),
      this.localBnSplits,
      this.passes,
    );
    xq.dispose();
    if (kMine !== k) kMine.dispose();
    let loss = g.loss;
    if (worldSize > 1) loss = this.averageAcrossReplicas(g);
    this.applyGradients(g, lr);
    this.queue.enqueue(k, batch.labels); // the whole batch's keys, after the loss read the queue
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
    this.group.allReduceMean(flat);
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

  /** Number of floats `averageAcrossReplicas` exchanges (for sizing shared buffers). */
  reduceSize(): number {
    let n = 1;
    for (const [name, v] of this.encoderQ.trainable) {
      n += v.size;
      if (
        name.endsWith('.weight') &&
        this.encoderQ.buffers.has(name.replace(/weight$/, 'running_mean'))
      )
        n += 2 * v.size;
    }
    return n;
  }

  /**
   * Everything a resumed run needs (besides the data order, which is derived from the seed):
   * both encoders, the optimizer's momentum buffers and the queue, as named host arrays.
   */
  exportState(): {
    arrays: Map<string, Float32Array | Int32Array>;
    queuePtr: number;
    queueFilled: number;
  } {
    const arrays = new Map<string, Float32Array | Int32Array>();
    for (const [n, v] of this.encoderQ.snapshot()) arrays.set(`encoder_q.${n}`, v);
    for (const [n, v] of this.encoderK.snapshot()) arrays.set(`encoder_k.${n}`, v);
    for (const [n, v] of this.optimizer.state()) arrays.set(`optimizer.momentum.${n}`, v);
    const q = this.queue.state();
    arrays.set('queue.keys', q.keys);
    arrays.set('queue.labels', q.labels);
    return { arrays, queuePtr: q.ptr, queueFilled: q.filled };
  }

  importState(st: {
    arrays: ReadonlyMap<string, Float32Array | Int32Array>;
    queuePtr: number;
    queueFilled: number;
  }): void {
    const group = (prefix: string) => {
      const m = new Map<string, Float32Array>();
      for (const [n, v] of st.arrays)
        if (n.startsWith(prefix) && v instanceof Float32Array) m.set(n.slice(prefix.length), v);
      return m;
    };
    this.encoderQ.load(group('encoder_q.'), 'checkpoint (query encoder)');
    this.encoderK.load(group('encoder_k.'), 'checkpoint (key encoder)');
    this.optimizer.loadState(group('optimizer.momentum.'), this.encoderQ.trainable);
    const keys = st.arrays.get('queue.keys');
    const labels = st.arrays.get('queue.labels');
    if (!(keys instanceof Float32Array) || !(labels instanceof Int32Array))
      throw new Error('Checkpoint lacks the queue (queue.keys, queue.labels).');
    this.queue.loadState({ keys, labels, ptr: st.queuePtr, filled: st.queueFilled });
  }

  /** Backbone features of the query encoder in eval mode (for Recall@K). x: N×H×W×C → N×feat. */
  features(x: tf.Tensor4D): tf.Tensor2D {
    return tf.tidy(() =>
      backbone(this.encoderQ, x, { training: false, bnSplits: 1, releaseIntermediates: true }),
    );
  }

  dispose(): void {
    this.encoderQ.dispose();
    this.encoderK.dispose();
    this.queue.dispose();
    this.optimizer.dispose();
  }
}
