import * as tf from '@tensorflow/tfjs';
import type { Rng } from '@maskcon/random';

/** Standard normal samples from a seeded generator (Box–Muller), so initialisation is the
 * same on every backend. */
export function normalArray(n: number, std: number, rng: Rng): Float32Array {
  const out = new Float32Array(n);
  for (let i = 0; i < n; i += 2) {
    const u1 = Math.max(rng.next(), 1e-12);
    const u2 = rng.next();
    const r = Math.sqrt(-2 * Math.log(u1));
    out[i] = std * r * Math.cos(2 * Math.PI * u2);
    if (i + 1 < n) out[i + 1] = std * r * Math.sin(2 * Math.PI * u2);
  }
  return out;
}

export function uniformArray(n: number, bound: number, rng: Rng): Float32Array {
  const out = new Float32Array(n);
  for (let i = 0; i < n; i++) out[i] = rng.uniform(-bound, bound);
  return out;
}

/** Kaiming-normal conv weight (fan_out, ReLU gain) as torchvision's ResNet initialises it.
 * Layout HWIO: [kh, kw, in, out]. */
export function kaimingConv(k: number, cin: number, cout: number, rng: Rng): tf.Tensor4D {
  const std = Math.sqrt(2 / (cout * k * k));
  return tf.tensor4d(normalArray(k * k * cin * cout, std, rng), [k, k, cin, cout]);
}

/** PyTorch's default nn.Linear initialisation: U(±1/sqrt(fan_in)) for weight and bias.
 * Weight layout [in, out] (x · W). */
export function linearInit(
  cin: number,
  cout: number,
  rng: Rng,
): { weight: tf.Tensor2D; bias: tf.Tensor1D } {
  const bound = 1 / Math.sqrt(cin);
  return {
    weight: tf.tensor2d(uniformArray(cin * cout, bound, rng), [cin, cout]),
    bias: tf.tensor1d(uniformArray(cout, bound, rng)),
  };
}
