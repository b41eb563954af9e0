import { l2NormalizeRows } from './normalize.js';
import { fullScan } from './exact-top-k.js';

export interface Retrieval {
  /** queries.length×k item indices, best first (the query itself never appears). */
  indices: Int32Array;
  /** queries.length×k cosine similarities matching `indices`. */
  similarities: Float64Array;
  k: number;
}

/**
 * The k most cosine-similar other items for a few queries — the lists Recall@K scores, for
 * showing them (retrieval grids). Same definition and tie rule as `recallAtK`: rows are
 * L2-normalised, equal similarities rank the lower item index first. k is clamped to N − 1.
 * Cost: queries.length × N × dim.
 */
export function nearestNeighbours(
  embeddings: Float32Array,
  dim: number,
  queries: ArrayLike<number>,
  k: number,
): Retrieval {
  const n = embeddings.length / dim;
  if (!Number.isInteger(n) || n < 2)
    throw new RangeError(
      `nearestNeighbours: needs at least 2 rows of dim ${dim}, got ${embeddings.length} values.`,
    );
  if (!Number.isInteger(k) || k <= 0)
    throw new RangeError(`nearestNeighbours: k must be a positive integer, got ${k}.`);
  const kk = Math.min(k, n - 1);
  const x = l2NormalizeRows(embeddings, dim); // N×dim unit rows
  const indices = new Int32Array(queries.length * kk);
  const similarities = new Float64Array(queries.length * kk);
  for (let q = 0; q < queries.length; q++) {
    const i = queries[q];
    if (i === undefined || !Number.isInteger(i) || i < 0 || i >= n)
      throw new RangeError(`nearestNeighbours: query ${i} is not a row index in [0, ${n}).`);
    fullScan(x, i, x, n, dim, kk, i, indices, similarities, q * kk);
  }
  return { indices, similarities, k: kk };
}
