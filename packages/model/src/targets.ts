import * as tf from '@tensorflow/tfjs';

/**
 * Soft targets over the 1+K candidates [positive key, queue entries] for each method
 * (algorithm.md, "Targets per method"). Pure functions of tensors; no gradient flows
 * through them (callers compute them outside the differentiated function).
 */

export type MethodName = 'selfcon' | 'maskcon' | 'grafit' | 'coins' | 'supfine';
export const METHOD_NAMES: readonly MethodName[] = [
  'selfcon',
  'maskcon',
  'grafit',
  'coins',
  'supfine',
];

/** SelfCon (MoCo v2): only the positive key. Returns N×(1+K). */
export function selfconTargets(n: number, queueSize: number): tf.Tensor2D {
  return tf.tidy(() => tf.oneHot(tf.zeros([n], 'int32'), 1 + queueSize).toFloat() as tf.Tensor2D);
}

/** M_ij = 1 where queue entry j has sample i's label. labels: N, queueLabels: K → N×K float. */
export function sameLabelMask(labels: tf.Tensor1D, queueLabels: tf.Tensor1D): tf.Tensor2D {
  return tf.tidy(
    () =>
      tf.equal(tf.expandDims(labels, 1), tf.expandDims(queueLabels, 0)).toFloat() as tf.Tensor2D,
  );
}

/** y = w·z + (1−w)·onehot(0), z: N×(1+K). */
function mixWithPositive(z: tf.Tensor2D, w: number): tf.Tensor2D {
  const [n, c] = z.shape;
  const one = tf.oneHot(tf.zeros([n], 'int32'), c).toFloat();
  return tf.add(tf.mul(z, w), tf.mul(one, 1 - w)) as tf.Tensor2D;
}

/**
 * MaskCon targets.
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

/**
 * Grafit / SupFINE targets: uniform over the positive key and every queue entry with the same
 * label, mixed with onehot(0) by w. SupFINE is this with w = 1 on fine labels.
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

/**
 * Contrastive logits over [positive, queue]: ℓ = [q·k, q·Qᵀ] / τ0.
 *   q: N×d (with gradient), k: N×d, queue: K×d  →  N×(1+K)
 */
export function contrastiveLogits(
  q: tf.Tensor2D,
  k: tf.Tensor2D,
  queue: tf.Tensor2D,
  t0: number,
): tf.Tensor2D {
  const pos = tf.sum(tf.mul(q, k), 1, true); // N×1
  const neg = tf.matMul(q, queue, false, true); // N×K
  return tf.div(tf.concat([pos, neg], 1), t0) as tf.Tensor2D;
}

/** loss = mean_i(−Σ_j y_ij · log_softmax(ℓ_i)_j). */
export function softTargetCrossEntropy(logits: tf.Tensor2D, targets: tf.Tensor2D): tf.Scalar {
  return tf.neg(tf.mean(tf.sum(tf.mul(targets, tf.logSoftmax(logits, 1)), 1))) as tf.Scalar;
}

export interface TargetConfig {
  method: MethodName;
  /** Weight w of the method's soft target (MaskCon, Grafit). */
  w: number;
  /** MaskCon temperature τ of the key-to-queue similarities. */
  t: number;
}

/**
 * Same-label mask built on the host from host labels (the labels come from the data loader,
 * so this avoids a device-side broadcast compare). labels: N, queueLabels: K → N×K (row-major).
 */
export function sameLabelMaskHost(
  labels: ArrayLike<number>,
  queueLabels: ArrayLike<number>,
): Float32Array {
  const n = labels.length;
  const k = queueLabels.length;
  const out = new Float32Array(n * k);
  for (let i = 0; i < n; i++) {
    const l = labels[i];
    const row = i * k;
    for (let j = 0; j < k; j++) if (queueLabels[j] === l) out[row + j] = 1;
  }
  return out;
}

/**
 * The target for a method.
 *   keys: N×d, queue: K×d, mask: N×K same-label mask (coarse labels, or fine for SupFINE)
 */
export function softTargets(
  cfg: TargetConfig,
  keys: tf.Tensor2D,
  queue: tf.Tensor2D,
  mask: tf.Tensor2D,
): tf.Tensor2D {
  const n = keys.shape[0];
  const kSize = queue.shape[0];
  switch (cfg.method) {
    case 'selfcon':
    case 'coins': // CoIns' contrastive part is SelfCon; its classifier loss is added by the model
      return selfconTargets(n, kSize);
    case 'maskcon':
      return maskconTargets(keys, queue, mask, cfg.w, cfg.t);
    case 'grafit':
      return grafitTargets(mask, cfg.w);
    case 'supfine':
      return grafitTargets(mask, 1);
  }
}

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
