import * as tf from '@tensorflow/tfjs';
import { Rng } from '@maskcon/augment';
import { ParamStore } from './params.js';
import { createNetwork, backbone, embed, updateRunningStats, type ForwardContext, type NetworkSpec } from './resnet.js';
import { MemoryQueue } from './queue.js';
import { SgdMomentum } from './sgd.js';
import { contrastiveLogits, sameLabelMaskHost, softTargetCrossEntropy, softTargets, type TargetConfig } from './targets.js';

export interface MocoConfig extends TargetConfig {
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
    this.cfg = cfg;
    this.encoderQ = createNetwork(cfg.network, cfg.seed);
    this.encoderK = this.encoderQ.cloneFrozen(); // θ_k ← θ_q at start
    this.queue = new MemoryQueue(cfg.queueSize, cfg.network.projDim);
    this.optimizer = new SgdMomentum(cfg.sgdMomentum, cfg.weightDecay);
    this.shuffleRng = new Rng(cfg.seed ^ 0x5eed);
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
   * Keys k = normalize(proj(backbone_k(x_k))) with shuffle BN: the batch is permuted before the
   * key encoder (so BN groups mix different samples than the query's) and un-permuted after.
   *   xk: N×H×W×C → N×d (no gradient)
   */
  computeKeys(xk: tf.Tensor4D): tf.Tensor2D {
    const n = xk.shape[0];
    const perm = this.shuffleRng.permutation(n);
    const inverse = new Int32Array(n);
    for (let i = 0; i < n; i++) inverse[perm[i]] = i;
    return tf.tidy(() => {
      const shuffled = tf.gather(xk, tf.tensor1d(perm, 'int32'));
      const ctx: ForwardContext = { training: true, bnSplits: this.cfg.bnSplits };
      const k = embed(this.encoderK, shuffled, ctx);
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
   * One training step. Returns the loss as a device scalar (the caller decides when to read it).
   *   xq, xk: N×H×W×C query/key views; labels: N (coarse, or fine for SupFINE)
   */
  trainStep(xq: tf.Tensor4D, xk: tf.Tensor4D, labels: Int32Array, lr: number): tf.Scalar {
    this.momentumUpdateKeyEncoder();
    const k = this.computeKeys(xk); // N×d
    const queueKeys = this.queue.keys; // K×d, read before this batch is enqueued
    const y = tf.tidy(() => {
      const mask = this.cfg.method === 'selfcon'
        ? tf.zeros([labels.length, this.queue.size]) as tf.Tensor2D
        : tf.tensor2d(sameLabelMaskHost(labels, this.queue.labels), [labels.length, this.queue.size]); // N×K
      return softTargets(this.cfg, k, queueKeys, mask);
    }); // N×(1+K)

    const bnStats: NonNullable<ForwardContext['bnStats']> = [];
    const ctx: ForwardContext = { training: true, bnSplits: this.cfg.bnSplits, bnStats };
    const vars = [...this.encoderQ.trainable.values()];
    const { value, grads } = tf.variableGrads(() => {
      const q = embed(this.encoderQ, xq, ctx); // N×d
      const logits = contrastiveLogits(q, k, queueKeys, this.cfg.t0); // N×(1+K)
      return softTargetCrossEntropy(logits, y);
    }, vars);
    updateRunningStats(this.encoderQ, bnStats);

    const byName: Record<string, tf.Tensor> = {};
    for (const [name, v] of this.encoderQ.trainable) byName[name] = grads[v.name];
    this.optimizer.step(this.encoderQ.trainable, byName, lr);
    tf.dispose(grads);
    y.dispose();

    this.queue.enqueue(k, labels);
    k.dispose();
    return value;
  }

  /** Backbone features of the query encoder in eval mode (for Recall@K). x: N×H×W×C → N×feat. */
  features(x: tf.Tensor4D): tf.Tensor2D {
    return tf.tidy(() => backbone(this.encoderQ, x, { training: false, bnSplits: 1 }));
  }

  dispose(): void {
    this.encoderQ.dispose();
    this.encoderK.dispose();
    this.queue.dispose();
    this.optimizer.dispose();
  }
}
