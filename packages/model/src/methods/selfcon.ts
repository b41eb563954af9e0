import type * as tf from '@tensorflow/tfjs';
import { positiveOnly, type Method, type TargetInputs } from './method.js';

/** SelfCon (MoCo v2): y = onehot(0), only the other view of the same image is a positive. */
export function selfconTargets(n: number, queueSize: number): tf.Tensor2D {
  return positiveOnly(n, queueSize);
}

export const selfcon: Method = {
  name: 'selfcon',
  label: 'SelfCon',
  description: 'MoCo v2: only the other view of the same image is a positive',
  labels: 'any',
  needsClassifier: false,
  usesMask: false,
  hyperparameters: [],
  targets: ({ keys, queue }: TargetInputs) => selfconTargets(keys.shape[0], queue.shape[0]),
};
