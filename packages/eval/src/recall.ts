import { sweepBlockPair } from './tiles.js';
import { l2NormalizeRows } from './normalize.js';
import { TopKNeighbours } from './topk.js';

/** The K values the paper reports. */
export const DEFAULT_KS: readonly number[] = [1, 2, 5, 10, 50, 100];

/**
 * Recall@K keyed by the K that was asked for, as a fraction in [0, 1]
 * (e.g. `{ 1: 0.6552, 2: 0.7310 }`). Plain object so it serialises to JSON as-is.
 */
export type RecallResult = Record<number, number>;

export interface RecallOptions {
  /**
   * Rows per block (default 256). Similarities are computed in chunkSize×chunkSize tiles,
   * so the scratch memory is chunkSize² doubles on top of the N×maxK neighbour lists.
   */
  chunkSize?: number;
  /**
   * Called after each chunk of queries has its final neighbour list: `done` of `total` (= N)
   * queries. The upper-triangle sweep front-loads work, so early chunks take longer.
   */
  onProgress?: (done: number, total: number) => void;
}

/**
 * Recall@K for retrieval by cosine similarity.
 *
 * embeddings: N×dim row-major float32; labels: N (the fine labels).
 * Each row is L2-normalised (all-zero rows stay zero: similarity 0 to every item). For each
 * query i, its K most similar *other* items are taken (i itself is never a candidate), with
 * equal similarities ranked by lower item index first. The query scores 1 if any of them has
 * labels[i]; Recall@K is the mean score over all N queries.
 *
 * A K larger than N − 1 is clamped to N − 1 (every other item is retrieved); the result is
 * still keyed by the K that was asked for. Duplicate Ks are computed once.
 *
 * Cost: N²·dim/2 multiply-adds (each unordered pair is computed once and offered to both
 * queries), memory O(N·dim + N·maxK + chunkSize²) — never an N×N matrix.
 */
export function recallAtK(
  embeddings: Float32Array,
  dim: number,
  labels: Int32Array,
  ks: readonly number[] = DEFAULT_KS,
  opts: RecallOptions = {},
): RecallResult {
  validateInputs(embeddings, dim, labels, ks);
  const requestedChunk = opts.chunkSize ?? 256;
  if (!Number.isInteger(requestedChunk) || requestedChunk <= 0) {
    throw new RangeError(`recallAtK: chunkSize must be a positive integer, got ${requestedChunk}.`);
  }
  const n = labels.length;
  const chunkSize = Math.min(requestedChunk, n); // no tile larger than the data
  const maxK = Math.min(Math.max(...ks), n - 1);

  const x = l2NormalizeRows(embeddings, dim); // N×dim, unit (or zero) rows
  const neighbours = new TopKNeighbours(n, maxK);
  const tile = new Float64Array(chunkSize * chunkSize); // chunk×chunk similarity block

  // Upper-triangle sweep over chunk pairs (I ≤ J). Once the inner loop for I ends, queries
  // in I have seen every J ≥ I here and every J < I in earlier outer iterations.
  for (let i0 = 0; i0 < n; i0 += chunkSize) {
    const i1 = Math.min(i0 + chunkSize, n);
    for (let j0 = i0; j0 < n; j0 += chunkSize)
      sweepBlockPair(x, dim, n, chunkSize, i0, j0, tile, neighbours);
    opts.onProgress?.(i1, n);
  }

  return recallFromNeighbours(neighbours.indices, maxK, labels, ks);
}

/**
 * Recall@K from final neighbour lists: indices is N×maxK (best first). Query i scores 1 at K
 * exactly when its first same-label neighbour has rank < K.
 */
export function recallFromNeighbours(
  indices: Int32Array,
  maxK: number,
  labels: Int32Array,
  ks: readonly number[],
): RecallResult {
  const n = labels.length;
  // firstHit[i]: rank (0-based) of the first same-label neighbour of i, or maxK if none.
  // Query i scores 1 at K exactly when firstHit[i] < K.
  const hitsAtRank = new Float64Array(maxK + 1); // histogram of firstHit
  for (let i = 0; i < n; i++) {
    const base = i * maxK;
    const label = labels[i];
    let rank = 0;
    // indices holds n×maxK item indices < n, the labels' length
    while (rank < maxK && labels[indices[base + rank]!] !== label) rank++;
    hitsAtRank[rank]!++;
  }
  const cumulative = new Float64Array(maxK + 1); // cumulative[K] = #queries with firstHit < K
  for (let r = 0; r < maxK; r++) cumulative[r + 1] = cumulative[r]! + hitsAtRank[r]!;

  const result: RecallResult = {};
  for (const k of ks) result[k] = cumulative[Math.min(k, maxK)]! / n;
  return result;
}

export function validateInputs(
  embeddings: Float32Array,
  dim: number,
  labels: Int32Array,
  ks: readonly number[],
): void {
  if (!(embeddings instanceof Float32Array)) {
    throw new TypeError('recallAtK: embeddings must be a Float32Array (N×dim, row-major).');
  }
  if (!(labels instanceof Int32Array)) {
    throw new TypeError('recallAtK: labels must be an Int32Array with one label per row.');
  }
  if (!Number.isInteger(dim) || dim <= 0) {
    throw new RangeError(`recallAtK: dim must be a positive integer, got ${dim}.`);
  }
  const n = labels.length;
  if (embeddings.length !== n * dim) {
    throw new RangeError(
      `recallAtK: embeddings has ${embeddings.length} values but ${n} labels × dim ${dim} ` +
        `needs ${n * dim}; pass one row of dim values per label, from the same split.`,
    );
  }
  if (n < 2) {
    throw new RangeError(
      `recallAtK: needs at least 2 items (a query and one other item to retrieve), got ${n}.`,
    );
  }
  if (ks.length === 0) {
    throw new RangeError('recallAtK: ks is empty; pass at least one K, e.g. [1, 2, 5, 10].');
  }
  for (const k of ks) {
    if (!Number.isInteger(k) || k <= 0) {
      throw new RangeError(`recallAtK: every K must be a positive integer, got ${k}.`);
    }
  }
  for (let i = 0; i < embeddings.length; i++) {
    const v = embeddings[i];
    if (!Number.isFinite(v)) {
      const row = Math.floor(i / dim);
      const col = i - row * dim;
      throw new RangeError(
        `recallAtK: embeddings row ${row} contains ${v} at column ${col}; Recall@K needs ` +
          'finite embeddings — check the model for divergence before evaluating.',
      );
    }
  }
}
