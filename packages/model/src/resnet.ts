import * as tf from '@tensorflow/tfjs';
import { Rng } from '@maskcon/augment';
import { ParamStore } from './params.js';
import { kaimingConv, linearInit } from './init.js';

export type ArchName = 'resnet-mini';
export const ARCH_NAMES: readonly ArchName[] = ['resnet-mini'];

export interface BackboneSpec {
  arch: ArchName;
  /** Stem width w; stages have widths w, 2w, 4w. */
  width: number;
  inChannels: number;
}

export interface NetworkSpec extends BackboneSpec {
  /** Projector hidden and output sizes (paper: 512 and 128). */
  projHidden: number;
  projDim: number;
}

/**
 * Forward-pass context. In training mode BatchNorm uses batch statistics computed over
 * `bnSplits` equal groups of the batch (MoCo's split/shuffle BN: each group behaves like one
 * GPU's share of the batch) and records the statistics so running averages can be updated
 * after the step.
 */
export interface ForwardContext {
  training: boolean;
  bnSplits: number;
  /** Filled in training mode: batch mean/var per BN layer (kept tensors, caller disposes). */
  bnStats?: { name: string; mean: tf.Tensor1D; variance: tf.Tensor1D; count: number }[];
}

const BN_EPS = 1e-5;
export const BN_MOMENTUM = 0.1;

function addConv(p: ParamStore, name: string, k: number, cin: number, cout: number, rng: Rng): void {
  p.addTrainable(`${name}.weight`, kaimingConv(k, cin, cout, rng));
}

function addBn(p: ParamStore, name: string, c: number): void {
  p.addTrainable(`${name}.weight`, tf.ones([c]));
  p.addTrainable(`${name}.bias`, tf.zeros([c]));
  p.addBuffer(`${name}.running_mean`, tf.zeros([c]));
  p.addBuffer(`${name}.running_var`, tf.ones([c]));
}

/** conv with PyTorch-style symmetric padding (k=3 → pad 1, k=1 → pad 0). */
function conv(p: ParamStore, name: string, x: tf.Tensor4D, stride: 1 | 2): tf.Tensor4D {
  const w = p.get(`${name}.weight`) as tf.Variable<tf.Rank.R4>;
  const k = w.shape[0];
  return tf.conv2d(x, w, stride, (k - 1) / 2);
}

function batchNorm(p: ParamStore, name: string, x: tf.Tensor4D, ctx: ForwardContext): tf.Tensor4D {
  const gamma = p.get(`${name}.weight`);
  const beta = p.get(`${name}.bias`);
  const [n, h, w, c] = x.shape;
  if (!ctx.training) {
    const rm = p.get(`${name}.running_mean`);
    const rv = p.get(`${name}.running_var`);
    const scale = tf.mul(gamma, tf.rsqrt(tf.add(rv, BN_EPS)));
    const shift = tf.sub(beta, tf.mul(rm, scale));
    return tf.add(tf.mul(x, scale), shift);
  }
  const g = ctx.bnSplits;
  if (n % g !== 0) throw new Error(`Batch of ${n} cannot be split into ${g} BatchNorm groups; use a batch size divisible by --bn-splits.`);
  // x: N×H×W×C → G×(N/G)×H×W×C, statistics per group over (N/G, H, W).
  const xg = tf.reshape(x, [g, n / g, h, w, c]);
  const { mean, variance } = tf.moments(xg, [1, 2, 3], true); // G×1×1×1×C
  const y = tf.mul(tf.sub(xg, mean), tf.rsqrt(tf.add(variance, BN_EPS)));
  const out = tf.add(tf.mul(tf.reshape(y, [n, h, w, c]), gamma), beta) as tf.Tensor4D;
  if (ctx.bnStats) {
    ctx.bnStats.push({
      name,
      mean: tf.keep(tf.mean(tf.reshape(mean, [g, c]), 0) as tf.Tensor1D),
      variance: tf.keep(tf.mean(tf.reshape(variance, [g, c]), 0) as tf.Tensor1D),
      count: (n / g) * h * w,
    });
  }
  return out;
}

/** torchvision BasicBlock: conv3×3(stride)–BN–ReLU–conv3×3–BN, plus identity or 1×1 conv+BN. */
function addBasicBlock(p: ParamStore, name: string, cin: number, cout: number, stride: number, rng: Rng): void {
  addConv(p, `${name}.conv1`, 3, cin, cout, rng);
  addBn(p, `${name}.bn1`, cout);
  addConv(p, `${name}.conv2`, 3, cout, cout, rng);
  addBn(p, `${name}.bn2`, cout);
  if (stride !== 1 || cin !== cout) {
    addConv(p, `${name}.downsample.0`, 1, cin, cout, rng);
    addBn(p, `${name}.downsample.1`, cout);
  }
}

function basicBlock(p: ParamStore, name: string, x: tf.Tensor4D, stride: 1 | 2, ctx: ForwardContext): tf.Tensor4D {
  let out = tf.relu(batchNorm(p, `${name}.bn1`, conv(p, `${name}.conv1`, x, stride), ctx));
  out = batchNorm(p, `${name}.bn2`, conv(p, `${name}.conv2`, out, 1), ctx);
  const shortcut = p.trainable.has(`${name}.downsample.0.weight`)
    ? batchNorm(p, `${name}.downsample.1`, conv(p, `${name}.downsample.0`, x, stride), ctx)
    : x;
  return tf.relu(tf.add(out, shortcut)) as tf.Tensor4D;
}

const MINI_STAGES: { mult: number; stride: 1 | 2 }[] = [
  { mult: 1, stride: 1 },
  { mult: 2, stride: 2 },
  { mult: 4, stride: 2 },
];

export function backboneFeatureDim(spec: BackboneSpec): number {
  return 4 * spec.width;
}

/** Creates the parameters of backbone + projector. */
export function createNetwork(spec: NetworkSpec, seed: number): ParamStore {
  if (spec.arch !== 'resnet-mini') throw new Error(`Unknown architecture ${spec.arch}; known: ${ARCH_NAMES.join(', ')}.`);
  if (!(Number.isInteger(spec.width) && spec.width > 0)) throw new Error(`--width must be a positive integer, got ${spec.width}.`);
  const rng = new Rng(seed);
  const p = new ParamStore();
  const w = spec.width;
  addConv(p, 'conv1', 3, spec.inChannels, w, rng);
  addBn(p, 'bn1', w);
  let cin = w;
  MINI_STAGES.forEach((s, i) => {
    addBasicBlock(p, `layer${i + 1}.0`, cin, w * s.mult, s.stride, rng);
    cin = w * s.mult;
  });
  const feat = backboneFeatureDim(spec);
  const l1 = linearInit(feat, spec.projHidden, rng);
  p.addTrainable('projector.0.weight', l1.weight);
  p.addTrainable('projector.0.bias', l1.bias);
  const l2 = linearInit(spec.projHidden, spec.projDim, rng);
  p.addTrainable('projector.2.weight', l2.weight);
  p.addTrainable('projector.2.bias', l2.bias);
  return p;
}

/** Backbone: x N×H×W×C → pooled feature N×4w. */
export function backbone(p: ParamStore, x: tf.Tensor4D, ctx: ForwardContext): tf.Tensor2D {
  let h = tf.relu(batchNorm(p, 'bn1', conv(p, 'conv1', x, 1), ctx));
  MINI_STAGES.forEach((s, i) => {
    h = basicBlock(p, `layer${i + 1}.0`, h, s.stride, ctx);
  });
  return tf.mean(h, [1, 2]) as tf.Tensor2D;
}

/** Projector: Linear(feat, hidden)–ReLU–Linear(hidden, d). */
export function projector(p: ParamStore, f: tf.Tensor2D): tf.Tensor2D {
  const h = tf.relu(tf.add(tf.matMul(f, p.get('projector.0.weight') as tf.Tensor2D), p.get('projector.0.bias')));
  return tf.add(tf.matMul(h, p.get('projector.2.weight') as tf.Tensor2D), p.get('projector.2.bias')) as tf.Tensor2D;
}

/** Row-wise L2 normalisation, safe for zero rows. */
export function l2Normalize(x: tf.Tensor2D): tf.Tensor2D {
  return tf.div(x, tf.maximum(tf.norm(x, 'euclidean', 1, true), 1e-12)) as tf.Tensor2D;
}

/** normalize(proj(backbone(x))): N×d unit vectors. */
export function embed(p: ParamStore, x: tf.Tensor4D, ctx: ForwardContext): tf.Tensor2D {
  return l2Normalize(projector(p, backbone(p, x, ctx)));
}

/** After a training step: running = (1−m)·running + m·batch (PyTorch BN, unbiased variance). */
export function updateRunningStats(p: ParamStore, stats: NonNullable<ForwardContext['bnStats']>): void {
  tf.tidy(() => {
    for (const s of stats) {
      const rm = p.get(`${s.name}.running_mean`);
      const rv = p.get(`${s.name}.running_var`);
      const unbiased = s.count > 1 ? tf.mul(s.variance, s.count / (s.count - 1)) : s.variance;
      rm.assign(tf.add(tf.mul(rm, 1 - BN_MOMENTUM), tf.mul(s.mean, BN_MOMENTUM)));
      rv.assign(tf.add(tf.mul(rv, 1 - BN_MOMENTUM), tf.mul(unbiased, BN_MOMENTUM)));
    }
  });
  for (const s of stats) {
    s.mean.dispose();
    s.variance.dispose();
  }
}
