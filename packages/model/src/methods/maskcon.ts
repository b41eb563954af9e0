import * as tf from '@tensorflow/tfjs';
import { mixWithPositive, type Method } from './method.js';

/**
 * MaskCon targets (the paper's method).
 *   keys:    N×d  unit key projections k (no gradient)
 *   queue:   K×d  unit queue keys Q
 *   mask:    N×K  same-coarse mask M
 *   s_ij = k_i·Q_j / τ; p_i = softmax over {j: M_ij = 1}; p_i /= max_j p_ij;
 *   z_i = [1, p_i] / (1 + Σ_j p_ij); y_i = w·z_i + (1−w)·onehot(0).
 * Softmax-then-divide-by-max equals exp(s_ij − max_{j∈M} s_ij) on masked entries, which is what
 * is computed (no 0/0 for rows with no same-label entry: they get z_i = onehot(0)).
 */
export function maskconTargets(
  keys: tf.Tensor2D,
  queue: tf.Tensor2D,
  mask: tf.Tensor2D,
  w: number,
  tau: number,
): tf.Tensor2D {
  return tf.tidy(() => {
    const s = tf.div(tf.matMul(keys, queue, false, true), tau); // N×K
    const maskB = tf.cast(mask, 'bool');
    // Row max over masked entries; rows with no masked entry get 0 (unused).
    const neg = tf.fill(s.shape, -1e30);
    const rowMax = tf.max(tf.where(maskB, s, neg), 1, true); // N×1
    const safeMax = tf.where(tf.greater(rowMax, -1e29), rowMax, tf.zerosLike(rowMax));
    // Unmasked entries take exponent 0 (finite) and are then zeroed by the mask.
    const expo = tf.where(maskB, tf.sub(s, safeMax), tf.zerosLike(s));
    const p = tf.mul(tf.exp(expo), mask); // N×K, max over masked = 1
    const n = keys.shape[0];
    const z = tf.div(
      tf.concat([tf.ones([n, 1]), p], 1),
      tf.add(tf.sum(p, 1, true), 1),
    ) as tf.Tensor2D;
    return mixWithPositive(z, w);
  });
}

export const maskcon: Method = {
  name: 'maskcon',
  label: 'MaskCon',
  description:
    'same-coarse queue entries weighted by their key similarity (w = weight, τ = temperature)',
  labels: 'any',
  needsClassifier: false,
  usesMask: true,
  hyperparameters: ['w', 't'],
  targets: ({ keys, queue, mask }, { w, t }) => maskconTargets(keys, queue, mask!, w, t),
};
