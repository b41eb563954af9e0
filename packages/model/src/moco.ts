import * as tf from '@tensorflow/tfjs';
import { Rng } from '@maskcon/augment';
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
 * MaskCon in the MoCo framework (algorithm.md, "The training step"). Reads top to bottom as
 * the algorithm: momentum update → keys with shuffle BN → targets → query loss + SGD → enqueue.
 */
export class MaskConModel {
  readonly cfg: MocoConfig;
  readonly encoderQ: ParamStore;
  readonly encoderK: ParamStore;
  readonly queue: MemoryQueue;
  readonly optimizer: SgdMomentum;
  private readonly shuffleRng: Rng;

  constructor(cfg: MocoConfig) {
    const method = METHODS[cfg.method];
    if (method.needsClassifier && !cfg.network.classifierClasses) {
      throw new Error(
        `${method.label} needs a classifier: set network.classifierClasses to the number of classes of its labels.`,
      );
    }
    this.cfg = cfg;
    installLeanGradients(); // the backward pass releases activations and gradients as it goes
    this.encoderQ = createNetwork(cfg.network, cfg.seed);
    this.encoderK = this.encoderQ.cloneFrozen(); // θ_k ← θ_q at start
    this.queue = new MemoryQueue(cfg.queueSize, cfg.network.projDim);
    this.optimizer = new SgdMomentum(cfg.sgdMomentum, cfg.weightDecay);
    this.shuffleRng = new Rng(cfg.seed ^ 0x5eed);
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
        pk.assign(tf.add(tf.mul(pk, m), tf.mul(pq, 1 - m)));
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

  /** The shuffle-BN permutation for the next key batch (drawn from the model's seeded stream). */
  nextShuffle(n: number): { perm: Int32Array; inverse: Int32Array } {
    const perm = this.shuffleRng.permutation(n);
    return { perm, inverse: inversePermutation(perm) };
  }

  /**
   * Keys k = normalize(proj(backbone_k(x_k))) with shuffle BN: the batch is permuted before the
   * key encoder (so BN groups mix different samples than the query's) and un-permuted after.
   *   xk: N×H×W×C → N×d (no gradient)
   */
  computeKeys(xk: tf.Tensor4D): tf.Tensor2D {
    const { perm, inverse } = this.nextShuffle(xk.shape[0]);
    return tf.tidy(() => {
      const k = this.encodeKeys(tf.gather(xk, tf.tensor1d(perm, 'int32')));
      return tf.gather(k, tf.tensor1d(inverse, 'int32')) as tf.Tensor2D;
    });
  }

  /** Fills the whole queue with keys of training images before the first step. */
  fillQueue(xk: tf.Tensor4D, labels: ArrayLike<number>): void {
    const k = this.computeKeys(xk);
    this.queue.enqueue(k, labels);
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
   * One training step. Returns the loss as a device scalar (the caller decides when to read it).
   *   xq, xk: N×H×W×C query/key views; labels: N (coarse, or fine for SupFINE)
   */
  trainStep(xq: tf.Tensor4D, xk: tf.Tensor4D, labels: Int32Array, lr: number): tf.Scalar {
    this.momentumUpdateKeyEncoder(); // before computing keys
    const k = this.computeKeys(xk); // N×d
    const g = this.gradients(xq, k, labels);
    this.applyGradients(g, lr);
    this.queue.enqueue(k, labels);
    k.dispose();
    return g.loss;
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
