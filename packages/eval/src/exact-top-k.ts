/**
 * Exact top-k lists from a fast, approximate candidate source.
 *
 * A candidate source (ONNX Runtime's float32 GEMM + TopK) proposes each query's best kp
 * gallery items by similarities s32 that are within e (`source.errorBound`) of the exact
 * similarities s64 (the float64 even/odd dot of `kernels.ts`, which the exact sweep uses).
 * With t the k-th best s32 of a query and δ = 2e:
 *  - every item of the exact top k has s32 ≥ t − δ (its s64 ≥ the k-th best s64 ≥ t − e), so
 *    the window {s32 ≥ t − δ} holds them all; if the source's list ends inside the window
 *    (its last value ≥ t − δ), items beyond it might belong too, and that query is asked again
 *    for a longer list (4× each time, at most the whole gallery, where the window always fits);
 *  - two candidates whose s32 differ by more than δ are ordered the same by s64, so only runs
 *    of neighbours closer than δ (near-ties and exact ties) are re-scored in float64 and
 *    sorted by the documented total order (similarity desc, index asc).
 * The result is therefore the exact path's lists, ids and order bit for bit, whatever the
 * source's rounding; re-scoring costs about k·dim per query.
 */
import { exactDot } from './kernels.js';
import { TopKNeighbours } from './topk.js';
import type { CandidateSource } from './backends/index.js';

export interface UnitRowSearch {
  /** Q×dim unit (or zero) rows. */
  queries: Float32Array;
  /** N×dim unit (or zero) rows. */
  gallery: Float32Array;
  dim: number;
  /** List length, already clamped to the number of retrievable items. */
  k: number;
  /** Query q is gallery item selfOffset + q and is never retrieved; undefined: none is. */
  selfOffset?: number;
  /** Query rows per candidate-source call (its m×N similarity block is the scratch memory). */
  chunkSize: number;
  /** Also return the exact similarities (otherwise only the order is resolved). */
  withSimilarities: boolean;
  onProgress?: (done: number, total: number) => void;
}

export interface ExactLists {
  /** Q×k gallery indices, best first. */
  indices: Int32Array;
  /** Q×k exact similarities when asked for, else empty. */
  similarities: Float64Array;
  /** Times a query was asked again for a longer list (its window did not fit the first). */
  retried: number;
}

/** Extra candidates asked of the source beyond k, so that near-ties at the cut fit the list. */
const CANDIDATE_MARGIN = 16;

export async function exactTopKFromCandidates(
  source: CandidateSource,
  s: UnitRowSearch,
): Promise<ExactLists> {
  const { queries, gallery, dim, k } = s;
  const numQueries = queries.length / dim;
  const n = gallery.length / dim;
  const hasSelf = s.selfOffset !== undefined;
  const delta = 2 * source.errorBound;
  const indices = new Int32Array(numQueries * k);
  const similarities = new Float64Array(s.withSimilarities ? numQueries * k : 0);
  let candIdx = new Int32Array(0);
  let candSim = new Float64Array(0);
  let exact = new Float64Array(0);
  const order: number[] = [];
  let retried = 0;

  /**
   * Resolves query q from row r of an m×kp candidate list. Returns false, writing nothing,
   * when the window may extend past the list (then the query is asked again with a longer one).
   */
  const resolve = (q: number, values: Float32Array, ids: Int32Array, r: number, kp: number) => {
    const self = hasSelf ? (s.selfOffset as number) + q : -1;
    if (ids.length < (r + 1) * kp || values.length < (r + 1) * kp)
      throw new Error(
        `exactTopK: the candidate source returned ${ids.length} ids and ${values.length} values, fewer than ${r + 1} rows of ${kp}.`,
      );
    // Below, every index is < len ≤ kp (the buffers' length), and len ≥ k: a row holds kp ≥ k + 1
    // candidates when the query itself may be among them, and skips it at most once.
    let len = 0;
    for (let t = r * kp; t < (r + 1) * kp; t++) {
      if (ids[t] === self) continue;
      candIdx[len] = ids[t]!;
      candSim[len++] = values[t]!;
    }
    const cut = candSim[k - 1]! - delta; // the window's lower edge
    if (kp < n && candSim[len - 1]! >= cut) return false;
    let windowEnd = k;
    while (windowEnd < len && candSim[windowEnd]! >= cut) windowEnd++;
    // Runs of candidates closer than δ to their neighbour are re-scored and sorted exactly.
    const out = q * k;
    let emitted = 0;
    for (let start = 0; emitted < k; ) {
      let end = start + 1;
      while (end < windowEnd && candSim[end - 1]! - candSim[end]! <= delta) end++;
      if (end - start === 1) {
        const id = candIdx[start]!;
        indices[out + emitted] = id;
        if (s.withSimilarities)
          similarities[out + emitted] = exactDot(queries, q, gallery, id, dim);
        emitted++;
      } else {
        order.length = 0;
        for (let c = start; c < end; c++) {
          exact[c] = exactDot(queries, q, gallery, candIdx[c]!, dim);
          order.push(c);
        }
        order.sort((a, b) => exact[b]! - exact[a]! || candIdx[a]! - candIdx[b]!);
        for (const c of order) {
          if (emitted === k) break;
          indices[out + emitted] = candIdx[c]!;
          if (s.withSimilarities) similarities[out + emitted] = exact[c]!;
          emitted++;
        }
      }
      start = end;
    }
    return true;
  };

  for (let q0 = 0; q0 < numQueries; q0 += s.chunkSize) {
    const m = Math.min(s.chunkSize, numQueries - q0);
    let pending = Array.from({ length: m }, (_, r) => q0 + r);
    let rows = queries.subarray(q0 * dim, (q0 + m) * dim); // pending.length×dim
    let kp = Math.min(n, k + (hasSelf ? 1 : 0) + CANDIDATE_MARGIN);
    for (;;) {
      if (candIdx.length < kp) {
        candIdx = new Int32Array(kp);
        candSim = new Float64Array(kp);
        exact = new Float64Array(kp);
      }
      const lists = await source.search(rows, pending.length, kp);
      const overflow = pending.filter((q, r) => !resolve(q, lists.values, lists.indices, r, kp));
      if (overflow.length === 0) break;
      // Many near-equal candidates at the cut (duplicates, zero rows): ask those queries
      // again for a 4× longer list, up to the whole gallery, where the window always fits.
      retried += overflow.length;
      kp = Math.min(n, kp * 4);
      rows = new Float32Array(overflow.length * dim);
      overflow.forEach((q, r) => rows.set(queries.subarray(q * dim, (q + 1) * dim), r * dim));
      pending = overflow;
    }
    s.onProgress?.(q0 + m, numQueries);
  }
  return { indices, similarities, retried };
}

/**
 * Query q against every gallery row in float64, the exact definition: its top-k other items
 * by (similarity desc, index asc) into indices/similarities at `out`. Cost N·dim.
 */
export function fullScan(
  queries: Float32Array,
  q: number,
  gallery: Float32Array,
  n: number,
  dim: number,
  k: number,
  self: number,
  indices: Int32Array,
  similarities: Float64Array,
  out: number,
): void {
  const list = new TopKNeighbours(1, k);
  for (let j = 0; j < n; j++) {
    if (j === self) continue;
    const sim = exactDot(queries, q, gallery, j, dim);
    if (sim >= list.thresholds[0]!) list.offer(0, j, sim);
  }
  indices.set(list.indices, out);
  if (similarities.length > 0) similarities.set(list.similarities, out);
}
