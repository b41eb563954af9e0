import * as tf from '@tensorflow/tfjs';
import { positiveOnly, softTargetCrossEntropy, type Method } from './method.js';

/**
 * CoIns: loss = w·CE(classifier(f), c) + (1−w)·SelfCon, with f the backbone feature.
 *   classLogits: N×C, labels: N (coarse ids), contrastiveLoss: scalar
 */
export function coinsLoss(
  classLogits: tf.Tensor2D,
  labels: tf.Tensor1D,
  contrastiveLoss: tf.Scalar,
  w: number,
): tf.Scalar {
  const onehot = tf.oneHot(labels, classLogits.shape[1]).toFloat() as tf.Tensor2D;
  const ce = softTargetCrossEntropy(classLogits, onehot);
  return tf.add(tf.mul(ce, w), tf.mul(contrastiveLoss, 1 - w)) as tf.Scalar;
}

export const coins: Method = {
  name: 'coins',
  label: 'CoIns',
  description: 'SelfCon plus a coarse-label classifier on the backbone (w = classifier weight)',
  labels: 'any',
  needsClassifier: true,
  usesMask: false,
  hyperparameters: ['w'],
  benchParams: { w: 0.5 },
  // The contrastive part is SelfCon's.
  targets: ({ keys, queue }) => positiveOnly(keys.shape[0], queue.shape[0]),
  combineLoss: (contrastive, classLogits, labels, { w }) =>
    coinsLoss(classLogits, labels, contrastive, w),
};
