/**
 * The parameter updates of a training step as single ops: one pass over the parameters where a
 * backend registers the kernel (the native backend, kernels/native.ts), else the tfjs
 * composition below (3–6 elementwise passes and their temporaries). Both compute the same
 * float32 operations in the same order.
 *
 *   SGD_MOMENTUM:     {p, g, b?} → [p', b'];  d = g + wd·p,  b' = μ·b + d (b' = d without b),
 *                     p' = p − lr·b'   (torch.optim.SGD, dampening 0, no Nesterov)
 *   MOMENTUM_AVERAGE: {k, q} → k·m + q·(1 − m)   (MoCo's key-encoder update)
 */
import * as tf from '@tensorflow/tfjs';

export const SGD_MOMENTUM = 'MaskconSgdMomentum';
export const MOMENTUM_AVERAGE = 'MaskconMomentumAverage';

export interface SgdMomentumAttrs {
  lr: number;
  momentum: number;
  weightDecay: number;
}

const single = (name: string, x: tf.Tensor): boolean =>
  x.dtype === 'float32' && tf.getKernel(name, tf.getBackend()) != null;

/** New parameter and momentum buffer after one SGD step; `b` null on the first step. */
export function sgdMomentumUpdate(
  p: tf.Tensor,
  g: tf.Tensor,
  b: tf.Tensor | null,
  h: SgdMomentumAttrs,
): { p: tf.Tensor; b: tf.Tensor } {
  if (single(SGD_MOMENTUM, p) && g.dtype === 'float32') {
    const inputs: tf.NamedTensorMap = b != null ? { p, g, b } : { p, g };
    const [pNew, bNew] = tf
      .engine()
      .runKernel(SGD_MOMENTUM, inputs, h as unknown as tf.NamedAttrMap) as tf.Tensor[];
    return { p: pNew, b: bNew };
  }
  return tf.tidy(() => {
    const d = h.weightDecay !== 0 ? tf.add(g, tf.mul(p, h.weightDecay)) : g;
    const bNew = b != null ? tf.add(tf.mul(b, h.momentum), d) : tf.clone(d);
    return { p: tf.sub(p, tf.mul(bNew, h.lr)), b: bNew };
  });
}

/** k·m + q·(1 − m). */
export function momentumAverage(k: tf.Tensor, q: tf.Tensor, m: number): tf.Tensor {
  if (single(MOMENTUM_AVERAGE, k) && q.dtype === 'float32')
    return tf.engine().runKernel(MOMENTUM_AVERAGE, { k, q }, { m }) as tf.Tensor;
  return tf.tidy(() => tf.add(tf.mul(k, m), tf.mul(q, 1 - m)));
}
