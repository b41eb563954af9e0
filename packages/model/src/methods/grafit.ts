import * as tf from '@tensorflow/tfjs';
import { mixWithPositive, type Method } from './method.js';

/**
 * Grafit targets: uniform over the positive key and every queue entry with the same label,
 * mixed with onehot(0) by w.  mask: N×K same-label mask → N×(1+K).
 */
export function grafitTargets(mask: tf.Tensor2D, w: number): tf.Tensor2D {
  return tf.tidy(() => {
    const n = mask.shape[0];
    const u = tf.div(
      tf.concat([tf.ones([n, 1]), mask], 1),
      tf.add(tf.sum(mask, 1, true), 1),
    ) as tf.Tensor2D;
    return mixWithPositive(u, w);
  });
}

export const grafit: Method = {
  name: 'grafit',
  label: 'Grafit',
  description: 'uniform over the positive and every same-coarse queue entry (w = weight)',
  labels: 'any',
  needsClassifier: false,
  usesMask: true,
  hyperparameters: ['w'],
  benchParams: { w: 0.8 },
  targets: ({ mask }, { w }) => grafitTargets(mask!, w),
};
