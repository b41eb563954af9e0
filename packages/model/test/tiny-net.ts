/**
 * A tiny ResNet-ish contrastive network used to exercise every op a MaskCon
 * training step needs (tests and the kernel benchmark use it).
 *
 * conv3x3(s1) → BN(train) → relu → [conv3x3(s2) → BN → relu → conv3x3(s1) → BN]
 *   + [conv1x1(s2) → BN] → relu → GAP → fc+bias → relu → fc → L2 normalise
 *   → logits vs (K×d) queue → logSoftmax → weighted-sum loss.
 */
import * as tf from '@tensorflow/tfjs';

export interface TinyNetConfig {
  inChannels: number;
  width: number;
  hidden: number;
  dim: number;
  queue: number;
}

export type TinyNetVars = Record<string, tf.Variable>;

/** Deterministic pseudo-random values in [-1, 1) (so cpu and wasm get identical inputs). */
export function seededValues(n: number, seed: number): Float32Array {
  const out = new Float32Array(n);
  let s = seed >>> 0 || 1;
  for (let i = 0; i < n; i++) {
    s ^= s << 13;
    s >>>= 0;
    s ^= s >>> 17;
    s ^= s << 5;
    s >>>= 0;
    out[i] = (s / 4294967296) * 2 - 1;
  }
  return out;
}

export function seededTensor(shape: number[], seed: number, scale = 1): tf.Tensor {
  const n = shape.reduce((a, b) => a * b, 1);
  const v = seededValues(n, seed);
  if (scale !== 1) for (let i = 0; i < n; i++) v[i] *= scale;
  return tf.tensor(v, shape, 'float32');
}

export function createTinyNetVars(cfg: TinyNetConfig, seed = 1): TinyNetVars {
  const { inChannels: c0, width: c1, hidden, dim } = cfg;
  const c2 = 2 * c1;
  const v = (name: string, shape: number[], scale: number, k: number): tf.Variable =>
    tf.variable(
      seededTensor(shape, seed * 1000 + k, scale),
      true,
      `tiny_${name}_${seed}_${Math.random().toString(36).slice(2)}`,
    );
  const ones = (name: string, n: number, k: number): tf.Variable =>
    tf.variable(
      tf.add(tf.ones([n]), seededTensor([n], seed * 1000 + k, 0.1)),
      true,
      `tiny_${name}_${seed}_${Math.random().toString(36).slice(2)}`,
    );
  return {
    conv1: v('conv1', [3, 3, c0, c1], 0.4, 1),
    g1: ones('g1', c1, 2),
    b1: v('b1', [c1], 0.1, 3),
    conv2a: v('conv2a', [3, 3, c1, c2], 0.2, 4),
    g2a: ones('g2a', c2, 5),
    b2a: v('b2a', [c2], 0.1, 6),
    conv2b: v('conv2b', [3, 3, c2, c2], 0.15, 7),
    g2b: ones('g2b', c2, 8),
    b2b: v('b2b', [c2], 0.1, 9),
    short: v('short', [1, 1, c1, c2], 0.4, 10),
    gs: ones('gs', c2, 11),
    bs: v('bs', [c2], 0.1, 12),
    fc1: v('fc1', [c2, hidden], 0.3, 13),
    fc1b: v('fc1b', [hidden], 0.1, 14),
    fc2: v('fc2', [hidden, dim], 0.3, 15),
  };
}

/** Batch norm in training mode, written with moments + arithmetic. */
export function batchNormTrain(
  x: tf.Tensor4D,
  gamma: tf.Tensor,
  beta: tf.Tensor,
  eps = 1e-5,
): tf.Tensor4D {
  const { mean, variance } = tf.moments(x, [0, 1, 2]);
  const inv = tf.rsqrt(tf.add(variance, eps));
  return tf.add(tf.mul(tf.mul(tf.sub(x, mean), inv), gamma), beta) as tf.Tensor4D;
}

export function tinyNetEmbed(vars: TinyNetVars, x: tf.Tensor4D): tf.Tensor2D {
  const conv = (inp: tf.Tensor4D, w: tf.Variable, stride: 1 | 2): tf.Tensor4D =>
    tf.conv2d(inp, w as tf.Tensor4D, stride, 'same');
  const h1 = tf.relu(batchNormTrain(conv(x, vars.conv1, 1), vars.g1, vars.b1));
  const a = tf.relu(batchNormTrain(conv(h1, vars.conv2a, 2), vars.g2a, vars.b2a));
  const b = batchNormTrain(conv(a, vars.conv2b, 1), vars.g2b, vars.b2b);
  const sc = batchNormTrain(conv(h1, vars.short, 2), vars.gs, vars.bs);
  const h2 = tf.relu(tf.add(b, sc));
  const pooled = tf.mean(h2, [1, 2]) as tf.Tensor2D;
  const f1 = tf.relu(tf.add(tf.matMul(pooled, vars.fc1 as tf.Tensor2D), vars.fc1b)) as tf.Tensor2D;
  const z = tf.matMul(f1, vars.fc2 as tf.Tensor2D);
  const norm = tf.rsqrt(tf.add(tf.sum(tf.square(z), -1, true), 1e-12));
  return tf.mul(z, norm) as tf.Tensor2D;
}

/** Weighted-sum contrastive loss against a fixed (K×d) queue. */
export function tinyNetLoss(
  vars: TinyNetVars,
  x: tf.Tensor4D,
  queue: tf.Tensor2D,
  targets: tf.Tensor2D,
  temperature = 0.1,
): tf.Scalar {
  const z = tinyNetEmbed(vars, x);
  const logits = tf.div(tf.matMul(z, queue, false, true), temperature);
  const logp = tf.logSoftmax(logits);
  return tf.neg(tf.mean(tf.sum(tf.mul(targets, logp), -1))) as tf.Scalar;
}
