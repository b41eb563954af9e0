import * as tf from '@tensorflow/tfjs';
import { coins } from './coins.js';
import { grafit } from './grafit.js';
import { maskcon } from './maskcon.js';
import {
  contrastiveLogits,
  sameLabelMaskHost,
  softTargetCrossEntropy,
  type Method,
  type MethodParams,
} from './method.js';
import { selfcon } from './selfcon.js';
import { supfine } from './supfine.js';

/**
 * The methods registry: --method, its validation, --help, sweep baselines, benchmarks and the
 * training step all read this table. To add a method, write one module next to these and add
 * its line here.
 */
export const METHODS = {
  selfcon,
  maskcon,
  grafit,
  coins,
  supfine,
} as const satisfies Record<string, Method>;

export type MethodName = keyof typeof METHODS;
export const METHOD_NAMES: readonly MethodName[] = Object.freeze(
  Object.keys(METHODS) as MethodName[],
);

/** The method called `name`; throws a sentence listing the known ones. */
export function methodOf(name: MethodName | Method | string): Method {
  if (typeof name !== 'string') return name;
  const m = (METHODS as Record<string, Method>)[name];
  if (!m || !Object.hasOwn(METHODS, name))
    throw new Error(`Unknown method '${name}'; known: ${METHOD_NAMES.join(', ')}.`);
  return m;
}

/** The queue as the loss reads it: keys (K×d, device) and their labels (K, host). */
export interface QueueView {
  keys: tf.Tensor2D;
  labels: ArrayLike<number>;
}

/**
 * A method's soft target y (N×(1+K), no gradient) for keys k (N×d), the queue and the batch's
 * labels (N: coarse, or fine). The same-label mask is built only for methods that read it.
 */
export function methodTargets(
  method: MethodName | Method,
  k: tf.Tensor2D,
  queue: QueueView,
  labels: ArrayLike<number>,
  params: MethodParams,
): tf.Tensor2D {
  const m = methodOf(method);
  return tf.tidy(() => {
    const n = labels.length;
    const size = queue.keys.shape[0];
    const mask = m.usesMask
      ? tf.tensor2d(sameLabelMaskHost(labels, queue.labels), [n, size]) // N×K
      : null;
    return m.targets({ keys: k, queue: queue.keys, mask }, params);
  });
}

export interface LossParams extends MethodParams {
  /** Contrastive temperature τ0. */
  t0: number;
  /**
   * N×C classifier logits of the query's backbone features, for methods with a classifier
   * (CoIns); a function is called only when the method needs them.
   */
  classLogits?: tf.Tensor2D | (() => tf.Tensor2D);
}

/**
 * The whole loss given the target y: CE(y, [q·k, q·Qᵀ]/τ0), plus the method's own term.
 *   q: N×d (with gradient), k: N×d, queueKeys: K×d, y: N×(1+K), labels: N
 * This is what the training step differentiates (its targets computed outside the gradient).
 */
export function lossWithTargets(
  method: MethodName | Method,
  q: tf.Tensor2D,
  k: tf.Tensor2D,
  queueKeys: tf.Tensor2D,
  y: tf.Tensor2D,
  labels: ArrayLike<number>,
  params: LossParams,
): tf.Scalar {
  const m = methodOf(method);
  const logits = contrastiveLogits(q, k, queueKeys, params.t0); // N×(1+K)
  const contrastive = softTargetCrossEntropy(logits, y);
  if (!m.combineLoss) return contrastive;
  const classLogits =
    typeof params.classLogits === 'function' ? params.classLogits() : params.classLogits;
  if (!classLogits)
    throw new Error(`${m.label} needs classifier logits (params.classLogits) for its loss.`);
  return m.combineLoss(
    contrastive,
    classLogits,
    tf.tensor1d(Int32Array.from(labels), 'int32'),
    params,
  );
}

/**
 * The whole loss of any method from tensors, in one call: the method's target for keys k
 * against the queue, then the cross-entropy of the query logits (plus the method's own term).
 *   q: N×d query projections, k: N×d keys, queue: K×d keys + K labels, labels: N
 */
export function methodLoss(
  method: MethodName | Method,
  q: tf.Tensor2D,
  k: tf.Tensor2D,
  queue: QueueView,
  labels: ArrayLike<number>,
  params: LossParams,
): tf.Scalar {
  return tf.tidy(() => {
    const y = methodTargets(method, k, queue, labels, params);
    return lossWithTargets(method, q, k, queue.keys, y, labels, params);
  });
}

export type { Method, MethodParams, TargetInputs } from './method.js';
export {
  contrastiveLogits,
  mixWithPositive,
  positiveOnly,
  sameLabelMask,
  sameLabelMaskHost,
  softTargetCrossEntropy,
} from './method.js';
export { selfconTargets } from './selfcon.js';
export { maskconTargets } from './maskcon.js';
export { grafitTargets } from './grafit.js';
export { coinsLoss } from './coins.js';
