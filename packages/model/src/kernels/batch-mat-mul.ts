/**
 * BatchMatMul for the wasm backend.
 *
 * tfjs's wasm BatchMatMul runs XNNPACK's fully-connected GEMM only for a single
 * (unbatched) product without transposes; every transposed product (q·Qᵀ of
 * the queue logits, Xᵀ·dY of a linear layer's weight gradient, dY·Wᵀ of its
 * input gradient) goes through a scalar loop at ~3 GFLOP/s. Here a transposed
 * operand is transposed explicitly first (one O(M·K) or O(K·N) pass, small
 * next to the O(M·K·N) product) so that the product always takes the XNNPACK
 * path. Batched products (more than one matrix on either side) keep tfjs's
 * original kernel.
 */
import * as tf from '@tensorflow/tfjs';
import { callOriginal, setupOriginal } from './originals.js';
import { Scratch, type Info, type WasmBackend } from './wasm-ops.js';

const size = (shape: readonly number[]): number => shape.reduce((p, q) => p * q, 1);

export function batchMatMulWasm(args: {
  inputs: tf.NamedTensorInfoMap;
  backend: unknown;
  attrs?: tf.NamedAttrMap;
}): Info {
  const backend = args.backend as WasmBackend;
  const { a, b } = args.inputs as { a: Info; b: Info };
  const attrs = (args.attrs ?? {}) as unknown as tf.BatchMatMulAttrs;
  const tA = !!attrs.transposeA;
  const tB = !!attrs.transposeB;
  const ra = a.shape.length;
  const rb = b.shape.length;
  const batchA = size(a.shape.slice(0, -2));
  const batchB = size(b.shape.slice(0, -2));
  if (
    a.dtype !== 'float32' ||
    b.dtype !== 'float32' ||
    batchA !== 1 ||
    batchB !== 1 ||
    ra < 2 ||
    rb < 2
  ) {
    return callOriginal(tf.BatchMatMul, backend, args.inputs, args.attrs ?? {});
  }
  const [a0, a1] = [a.shape[ra - 2], a.shape[ra - 1]];
  const [b0, b1] = [b.shape[rb - 2], b.shape[rb - 1]];
  const m = tA ? a1 : a0;
  const k = tA ? a0 : a1;
  const kb = tB ? b1 : b0;
  const n = tB ? b0 : b1;
  if (k !== kb) {
    throw new Error(
      `Error in matMul: inner shapes (${k}) and (${kb}) of Tensors with shapes ${a.shape} and ${b.shape} and transposeA=${tA} and transposeB=${tB} must match.`,
    );
  }
  const outBatch = tf.broadcast_util.assertAndGetBroadcastShape(
    a.shape.slice(0, -2),
    b.shape.slice(0, -2),
  );
  const s = new Scratch(backend);
  try {
    const a2d = ra === 2 ? a : s.reshape(a, [a0, a1]);
    const b2d = rb === 2 ? b : s.reshape(b, [b0, b1]);
    let out: Info;
    if (chooseSwapped(m, k, n, tA, tB)) {
      // Cᵀ = Bᵀ·Aᵀ: Bᵀ [n, k] is the streamed input, Aᵀ [k, m] the packed weights.
      const bt = tB ? b2d : s.transpose(b2d, [1, 0]);
      const at = tA ? a2d : s.transpose(a2d, [1, 0]);
      const ct = s.keep(
        callOriginal(
          tf.BatchMatMul,
          backend,
          { a: bt, b: at },
          { transposeA: false, transposeB: false },
        ),
      );
      out = s.transpose(s.reshape(ct, [n, m]), [1, 0]);
    } else {
      const a2 = tA ? s.transpose(a2d, [1, 0]) : a2d;
      const b2 = tB ? s.transpose(b2d, [1, 0]) : b2d;
      out = s.keep(
        callOriginal(
          tf.BatchMatMul,
          backend,
          { a: a2, b: b2 },
          { transposeA: false, transposeB: false },
        ),
      );
    }
    out.shape = [...outBatch, m, n];
    s.dispose([out]);
    return out;
  } catch (e) {
    s.dispose();
    throw e;
  }
}

/** Relative costs per element: tfjs's wasm Transpose (strided loop) vs XNNPACK's weight packing. */
const TRANSPOSE_COST = 2;
const PACK_COST = 1;

/** For benchmarks and tests: force an orientation (null = cost model). */
let forced: 'direct' | 'swapped' | null = null;
export function forceBatchMatMulOrientation(o: 'direct' | 'swapped' | null): void {
  forced = o;
}

/**
 * XNNPACK packs the weights operand on every call (a fresh tensor each step),
 * at a cost comparable to the product itself when the other operand has few
 * rows (q·Qᵀ: 32–128 rows against an 8192-row queue). Pick the orientation —
 * C = A·B with B packed, or Cᵀ = Bᵀ·Aᵀ with Aᵀ packed — with the lower
 * transpose + packing cost.
 */
function chooseSwapped(m: number, k: number, n: number, tA: boolean, tB: boolean): boolean {
  if (forced != null) return forced === 'swapped';
  const T = TRANSPOSE_COST;
  const direct = T * ((tA ? m * k : 0) + (tB ? k * n : 0)) + PACK_COST * k * n;
  const swapped = T * ((tA ? 0 : m * k) + (tB ? 0 : k * n) + m * n) + PACK_COST * k * m;
  return swapped < direct;
}

export const batchMatMulConfig: tf.KernelConfig = {
  kernelName: tf.BatchMatMul,
  backendName: 'wasm',
  setupFunc: setupOriginal(tf.BatchMatMul),
  kernelFunc: batchMatMulWasm as unknown as tf.KernelFunc,
};
