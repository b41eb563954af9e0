/**
 * Training-mode BatchNorm as ONE differentiable op with a closed-form backward
 * (tf.customGrad), for any backend. Compared with composing it from
 * moments/sub/mul/add (whose tape keeps ~5 full-size intermediates per layer
 * and replays ~12 elementwise kernels in the backward pass), it keeps only its
 * input plus per-channel statistics and runs 4 elementwise passes + 2
 * reductions backward, which saves both memory (the wasm heap is capped at
 * 4 GB) and time.
 *
 * Statistics are per group of the batch (split BN): x N×H×W×C is viewed as
 * G × (N/G·H·W) × C and normalised over the middle axis.
 *
 *   y    = x̂·γ + β,   x̂ = (x − μ_g)·r_g,   r_g = 1/sqrt(σ²_g + ε)
 *   dβ   = Σ dy,   dγ = Σ dy·x̂
 *   dx   = r_g · (g − mean_g(g) − x̂ · mean_g(g·x̂)),   g = dy·γ
 */
import * as tf from '@tensorflow/tfjs';

/**
 * Kernel names of the same op and its gradient as single kernels, for a backend that provides
 * them (the native backend: oneDNN batch_normalization, kernels/native.ts). Where none is
 * registered the op is composed from tfjs ops as below.
 *   BATCH_NORM_TRAIN: {x, gamma, beta} → [y, mean G×C, variance G×C]
 *   BATCH_NORM_GRAD:  {dy, x, gamma, beta, mean, variance} → [dx, dgamma, dbeta]
 */
export const BATCH_NORM_TRAIN = 'MaskconBatchNormTrain';
export const BATCH_NORM_GRAD = 'MaskconBatchNormGrad';
export interface BatchNormAttrs {
  eps: number;
  groups: number;
}

function hasSingleKernels(x: tf.Tensor): boolean {
  const backend = tf.getBackend();
  return (
    x.dtype === 'float32' &&
    tf.getKernel(BATCH_NORM_TRAIN, backend) != null &&
    tf.getKernel(BATCH_NORM_GRAD, backend) != null
  );
}

/** The op as the two single kernels (same contract as the composed form below). */
function batchNormTrainKernels(
  x: tf.Tensor4D,
  gamma: tf.Tensor,
  beta: tf.Tensor,
  eps: number,
  groups: number,
): BatchNormTrainResult {
  let stats: { mean: tf.Tensor2D; variance: tf.Tensor2D } | null = null;
  const attrs = { eps, groups } as unknown as tf.NamedAttrMap;
  const op = tf.customGrad((...args: (tf.Tensor | tf.GradSaveFunc)[]) => {
    const [xi, g, b] = args as [tf.Tensor4D, tf.Tensor1D, tf.Tensor1D];
    const save = args[3] as tf.GradSaveFunc;
    const [y, mean, variance] = tf
      .engine()
      .runKernel(BATCH_NORM_TRAIN, { x: xi, gamma: g, beta: b }, attrs) as tf.Tensor[];
    stats = { mean: tf.keep(mean) as tf.Tensor2D, variance: tf.keep(variance) as tf.Tensor2D };
    save([xi, g, b, mean, variance]); // saved clones share the data (kernels/identity.ts)
    return {
      value: y,
      gradFunc: (dy: tf.Tensor | tf.Tensor[], saved: tf.Tensor[]) => {
        const [xs, gs, bs, ms, vs] = saved;
        const [dx, dGamma, dBeta] = tf
          .engine()
          .runKernel(
            BATCH_NORM_GRAD,
            { dy: dy as tf.Tensor, x: xs, gamma: gs, beta: bs, mean: ms, variance: vs },
            attrs,
          ) as tf.Tensor[];
        return [dx, tf.reshape(dGamma, gs.shape), tf.reshape(dBeta, gs.shape)];
      },
    };
  });
  const y = op(x, gamma, beta) as tf.Tensor4D;
  const s = stats as { mean: tf.Tensor2D; variance: tf.Tensor2D } | null;
  if (s == null) throw new Error('batchNormTrainFused: statistics were not computed');
  return { y, mean: s.mean, variance: s.variance };
}

export interface BatchNormTrainResult {
  y: tf.Tensor4D;
  /** Per-group batch mean and biased variance, G×C (kept: the caller disposes them). */
  mean: tf.Tensor2D;
  variance: tf.Tensor2D;
}

export function batchNormTrainFused(
  x: tf.Tensor4D,
  gamma: tf.Tensor,
  beta: tf.Tensor,
  eps: number,
  groups = 1,
): BatchNormTrainResult {
  const [n, h, w, c] = x.shape;
  if (n % groups !== 0)
    throw new Error(`Batch of ${n} cannot be split into ${groups} BatchNorm groups.`);
  if (hasSingleKernels(x)) return batchNormTrainKernels(x, gamma, beta, eps, groups);
  const r = (n / groups) * h * w;
  let stats: { mean: tf.Tensor2D; variance: tf.Tensor2D } | null = null;
  const op = tf.customGrad((...args: (tf.Tensor | tf.GradSaveFunc)[]) => {
    const [xi, g, b] = args as [tf.Tensor4D, tf.Tensor1D, tf.Tensor1D];
    const save = args[3] as tf.GradSaveFunc;
    const x3 = tf.reshape(xi, [groups, r, c]);
    const mean = tf.mean(x3, 1, true); // G×1×C
    const xc = tf.sub(x3, mean);
    const variance = tf.mean(tf.square(xc), 1, true);
    const inv = tf.rsqrt(tf.add(variance, eps));
    const scale = tf.mul(inv, g); // G×1×C
    const shift = tf.sub(b, tf.mul(mean, scale));
    const y = tf.reshape(tf.add(tf.mul(x3, scale), shift), [n, h, w, c]) as tf.Tensor4D;
    stats = {
      mean: tf.keep(tf.reshape(mean, [groups, c])) as tf.Tensor2D,
      variance: tf.keep(tf.reshape(variance, [groups, c])) as tf.Tensor2D,
    };
    save([xi, g, mean, inv]);
    return {
      value: y,
      gradFunc: (dy: tf.Tensor | tf.Tensor[], saved: tf.Tensor[]) => {
        const [xs, gs, ms, is] = saved as [tf.Tensor4D, tf.Tensor1D, tf.Tensor3D, tf.Tensor3D];
        const dy3 = tf.reshape(dy as tf.Tensor, [groups, r, c]);
        const xhat = tf.mul(tf.sub(tf.reshape(xs, [groups, r, c]), ms), is);
        const sumDy = tf.sum(dy3, 1, true); // G×1×C
        const sumDyXhat = tf.sum(tf.mul(dy3, xhat), 1, true);
        const dBeta = tf.reshape(tf.sum(sumDy, [0, 1]), gs.shape);
        const dGamma = tf.reshape(tf.sum(sumDyXhat, [0, 1]), gs.shape);
        // dx = (γ·r/R) · (R·dy − Σdy − x̂·Σ(dy·x̂))
        const k = tf.div(tf.mul(is, gs), r); // G×1×C
        const inner = tf.sub(tf.sub(tf.mul(dy3, r), sumDy), tf.mul(xhat, sumDyXhat));
        const dx = tf.reshape(tf.mul(inner, k), xs.shape);
        return [dx, dGamma, dBeta];
      },
    };
  });
  const y = op(x, gamma, beta) as tf.Tensor4D;
  const s = stats as { mean: tf.Tensor2D; variance: tf.Tensor2D } | null;
  if (s == null) throw new Error('batchNormTrainFused: statistics were not computed');
  return { y, mean: s.mean, variance: s.variance };
}
