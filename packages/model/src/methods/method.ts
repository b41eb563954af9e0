import * as tf from '@tensorflow/tfjs';

/**
 * What every method shares: the interface a method module implements, and the pieces of the
 * contrastive loss that do not depend on the method (docs/method.md). A method is one module
 * in this folder plus one entry in `./index.ts`.
 */

/** The hyperparameters a method may read. */
export interface MethodParams {
  /** Weight w of the method's soft target (MaskCon, Grafit) or of its classifier loss (CoIns). */
  w: number;
  /** MaskCon temperature τ of the key-to-queue similarities. */
  t: number;
}

/** Inputs of a method's soft target; none carries a gradient. */
export interface TargetInputs {
  /** N×d unit key projections k. */
  keys: tf.Tensor2D;
  /** K×d unit queue keys Q. */
  queue: tf.Tensor2D;
  /** N×K same-label mask M (1 where queue entry j has sample i's label); null unless `usesMask`. */
  mask: tf.Tensor2D | null;
}

export interface Method {
  /** Registry name, the value of --method. */
  readonly name: string;
  /** The name tables print (the paper's spelling). */
  readonly label: string;
  /** One line for --help and the docs. */
  readonly description: string;
  /**
   * Which labels the target is built from: 'any' = the run's --labels (coarse by default);
   * 'fine' = always the fine labels (SupFINE, the supervised upper bound).
   */
  readonly labels: 'any' | 'fine';
  /** Whether the query encoder carries a classifier head (CoIns). */
  readonly needsClassifier: boolean;
  /** Whether `targets` reads the same-label mask (so it is only built when needed). */
  readonly usesMask: boolean;
  /** The hyperparameters the method reads (its sweep grid and the name tables print). */
  readonly hyperparameters: readonly (keyof MethodParams)[];
  /**
   * Values it is compared at when the flags do not set them (`pnpm bench methods`): the paper's
   * best CIFAR-100 values for the baselines (seed Table 4). Absent = the run's defaults.
   */
  readonly benchParams?: Partial<MethodParams>;
  /** Soft target y over [positive key, queue]: N×(1+K), rows summing to 1. */
  targets(inputs: TargetInputs, params: MethodParams): tf.Tensor2D;
  /**
   * The whole loss from the contrastive cross-entropy, for methods that add a term (CoIns).
   *   classLogits: N×C classifier logits of the backbone features, labels: N class ids
   * Absent = the contrastive loss alone.
   */
  combineLoss?(
    contrastive: tf.Scalar,
    classLogits: tf.Tensor2D,
    labels: tf.Tensor1D,
    params: MethodParams,
  ): tf.Scalar;
}

/** onehot(0) over the 1+K candidates: only the positive key. n rows → n×(1+K). */
export function positiveOnly(n: number, queueSize: number): tf.Tensor2D {
  return tf.tidy(() => tf.oneHot(tf.zeros([n], 'int32'), 1 + queueSize).toFloat() as tf.Tensor2D);
}

/** y = w·z + (1−w)·onehot(0), z: N×(1+K). */
export function mixWithPositive(z: tf.Tensor2D, w: number): tf.Tensor2D {
  const [n, c] = z.shape;
  const one = tf.oneHot(tf.zeros([n], 'int32'), c).toFloat();
  return tf.add(tf.mul(z, w), tf.mul(one, 1 - w)) as tf.Tensor2D;
}

/** M_ij = 1 where queue entry j has sample i's label. labels: N, queueLabels: K → N×K float. */
export function sameLabelMask(labels: tf.Tensor1D, queueLabels: tf.Tensor1D): tf.Tensor2D {
  return tf.tidy(
    () =>
      tf.equal(tf.expandDims(labels, 1), tf.expandDims(queueLabels, 0)).toFloat() as tf.Tensor2D,
  );
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
