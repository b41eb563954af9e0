/**
 * ONNX Runtime candidate source: the similarity GEMM + TopK graph of `onnx-graph.ts` run by
 * onnxruntime-node's CPU execution provider (MLAS float32 GEMM, its own intra-op threads).
 *
 * onnxruntime-node is an optional dependency (a ~290 MB native package): the import is dynamic
 * so that @maskcon/eval still loads, and falls back to the exact path, where it is not installed.
 */
import type { CandidateLists, CandidateSource } from './types.js';
import { similarityTopKModel } from './onnx-graph.js';

type Ort = typeof import('onnxruntime-node');

let loading: Promise<Ort | string> | undefined;

/** The onnxruntime-node module, or a sentence saying why it cannot be used here. */
export function loadOnnxRuntime(): Promise<Ort | string> {
  loading ??= import('onnxruntime-node').then(
    (m) => (m as unknown as { default?: Ort }).default ?? m,
    (e: unknown) =>
      `onnxruntime-node is not available (${String((e as Error)?.message ?? e).split('\n')[0]}); ` +
      'it is an optional dependency of @maskcon/eval — run `pnpm install` to add it',
  );
  return loading;
}

/**
 * Float32 GEMM error bound for unit rows: |fl(a·b) − a·b| ≤ γ_d Σ|a_k b_k| ≤ γ_d ‖a‖‖b‖ with
 * γ_d ≈ d·2⁻²⁴ whatever the summation order or FMA use (Higham, Accuracy and Stability of
 * Numerical Algorithms, §3.1). Doubled for slack (norms of float32-rounded unit rows, the
 * float64 reference's own rounding).
 */
export function float32DotErrorBound(dim: number): number {
  return (dim + 2) * 2 ** -23;
}

export async function openOnnxCandidates(
  gallery: Float32Array,
  n: number,
  dim: number,
  threads: number,
): Promise<CandidateSource | string> {
  const ort = await loadOnnxRuntime();
  if (typeof ort === 'string') return ort;
  let session: Awaited<ReturnType<Ort['InferenceSession']['create']>>;
  try {
    session = await ort.InferenceSession.create(similarityTopKModel(), {
      intraOpNumThreads: threads,
      interOpNumThreads: 1,
      executionMode: 'sequential',
      graphOptimizationLevel: 'all',
      // Idle intra-op threads sleep instead of spinning: between runs the calling thread re-scores
      // candidates, and on a shared machine spinning only takes CPU from others (measured 4.5 →
      // 4.2 CPU s for N = 20,000, d = 512, wall time unchanged).
      extra: { session: { intra_op: { allow_spinning: '0' } } },
    });
  } catch (e) {
    return `onnxruntime-node could not create a session (${String((e as Error)?.message ?? e).split('\n')[0]})`;
  }
  const g = new ort.Tensor('float32', gallery, [n, dim]); // N×d, shared with the caller
  return {
    name: 'onnxruntime',
    errorBound: float32DotErrorBound(dim),
    async search(queries: Float32Array, m: number, kp: number): Promise<CandidateLists> {
      const q = new ort.Tensor('float32', queries, [m, dim]);
      const k = new ort.Tensor('int64', BigInt64Array.of(BigInt(kp)), [1]);
      const out = await session.run({ q, g, k });
      if (!out.values || !out.indices)
        throw new Error('ONNX Runtime returned no `values`/`indices` output for the top-k graph.');
      const values = out.values.data as Float32Array; // m×kp, best first
      const wide = out.indices.data as BigInt64Array; // m×kp
      const indices = new Int32Array(wide.length);
      wide.forEach((v, i) => {
        indices[i] = Number(v);
      });
      return { values, indices };
    },
    release: () => session.release(),
  };
}
