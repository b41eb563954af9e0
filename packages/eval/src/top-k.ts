import { availableParallelism } from 'node:os';
import { openCandidateSource, type SimilarityBackend } from './backends/index.js';
import { exactTopKFromCandidates, fullScan } from './exact-top-k.js';
import { l2NormalizeRows } from './normalize.js';

export interface TopKOptions {
  /** Values per row of both `queries` and `gallery`. */
  dim: number;
  /**
   * `auto` (default): the first fast backend that loads (onnxruntime-node), else `exact`.
   * `exact`: float64 JavaScript on the calling thread, the definition itself. Both give the same
   * lists; a named backend that cannot load throws with the reason.
   */
  backend?: SimilarityBackend;
  /** Threads of the fast backend (default: one per core). */
  threads?: number;
  /**
   * Query rows per similarity block (default: as many as keep the block's rows × N float32
   * similarities within 64 MiB, 64 to 512). Memory is bounded by this block, never Q×N.
   */
  chunkSize?: number;
  /**
   * Queries taken from the gallery itself: query q is gallery item `selfOffset + q` and is never
   * retrieved (k is then clamped to N − 1).
   */
  selfOffset?: number;
  /** Called after each block of queries: `done` of `total` (= Q) queries finished. */
  onProgress?: (done: number, total: number) => void;
  /** Called once with the backend used and, for a fallback, why (e.g. to log it). */
  onBackend?: (backend: string, reason?: string) => void;
}

export interface TopKResult {
  /** Q×k gallery indices, best first. */
  indices: Int32Array;
  /** Q×k cosine similarities matching `indices` (float64, exact whatever the backend). */
  similarities: Float64Array;
  /** The list length: the k asked for, clamped to the number of retrievable items. */
  k: number;
  /** The backend that computed the lists (`onnxruntime` or `exact`). */
  backend: string;
}

/**
 * Default query rows per block: the block's rows × N float32 similarities within 64 MiB, 64 to
 * 512 rows (1024-row blocks measured slower for N = 20,000: the block falls out of cache).
 */
export function defaultQueryChunk(n: number): number {
  return Math.max(64, Math.min(512, Math.floor(2 ** 24 / n)));
}

/**
 * The k most cosine-similar gallery items of every query — the search kernel of Recall@K and
 * of embedding search.
 *
 * queries: Q×dim, gallery: N×dim, both row-major float32 (rows are L2-normalised here; an
 * all-zero row has similarity 0 to everything). Lists are ordered by similarity, equal
 * similarities by lower gallery index, and are the same, ids and order bit for bit, on every
 * backend: the fast backend only proposes candidates, which are re-scored in float64 wherever
 * float32 rounding could change the order (see `exact-top-k.ts`).
 *
 * Cost: Q·N·dim multiply-adds on the fast backend's threads plus about k·dim per query in
 * JavaScript; memory O((Q + N)·dim + Q·k + chunkSize·N).
 */
export async function topK(
  queries: Float32Array,
  gallery: Float32Array,
  k: number,
  options: TopKOptions,
): Promise<TopKResult> {
  const { dim } = options;
  if (!Number.isInteger(dim) || dim <= 0)
    throw new RangeError(`topK: dim must be a positive integer, got ${dim}.`);
  checkRows('queries', queries, dim);
  checkRows('gallery', gallery, dim);
  const numQueries = queries.length / dim;
  const n = gallery.length / dim;
  if (n === 0) throw new RangeError('topK: the gallery is empty; pass at least one row.');
  if (!Number.isInteger(k) || k <= 0)
    throw new RangeError(`topK: k must be a positive integer, got ${k}.`);
  const { selfOffset } = options;
  if (selfOffset !== undefined) {
    if (!Number.isInteger(selfOffset) || selfOffset < 0 || selfOffset + numQueries > n)
      throw new RangeError(
        `topK: selfOffset ${selfOffset} + ${numQueries} queries does not fit the gallery of ${n} rows; ` +
          'selfOffset is the gallery row of the first query when queries come from the gallery.',
      );
    if (n < 2) throw new RangeError('topK: with selfOffset the gallery needs at least 2 rows.');
  }
  const kk = Math.min(k, selfOffset === undefined ? n : n - 1);
  const threads = options.threads ?? availableParallelism();
  if (!Number.isInteger(threads) || threads <= 0)
    throw new RangeError(`topK: threads must be a positive integer, got ${threads}.`);
  const chunkSize = options.chunkSize ?? defaultQueryChunk(n);
  if (!Number.isInteger(chunkSize) || chunkSize <= 0)
    throw new RangeError(`topK: chunkSize must be a positive integer, got ${chunkSize}.`);

  const q = l2NormalizeRows(queries, dim); // Q×dim unit rows
  const g = l2NormalizeRows(gallery, dim); // N×dim unit rows
  const source = await openCandidateSource(options.backend ?? 'auto', g, n, dim, threads);
  if (typeof source === 'string') {
    options.onBackend?.('exact', source);
    const indices = new Int32Array(numQueries * kk);
    const similarities = new Float64Array(numQueries * kk);
    for (let i = 0; i < numQueries; i++) {
      const self = selfOffset === undefined ? -1 : selfOffset + i;
      fullScan(q, i, g, n, dim, kk, self, indices, similarities, i * kk);
      if ((i + 1) % chunkSize === 0 || i + 1 === numQueries)
        options.onProgress?.(i + 1, numQueries);
    }
    return { indices, similarities, k: kk, backend: 'exact' };
  }
  options.onBackend?.(source.name);
  try {
    const lists = await exactTopKFromCandidates(source, {
      queries: q,
      gallery: g,
      dim,
      k: kk,
      selfOffset,
      chunkSize,
      withSimilarities: true,
      onProgress: options.onProgress,
    });
    return {
      indices: lists.indices,
      similarities: lists.similarities,
      k: kk,
      backend: source.name,
    };
  } finally {
    await source.release();
  }
}

function checkRows(name: string, rows: Float32Array, dim: number): void {
  if (!(rows instanceof Float32Array))
    throw new TypeError(`topK: ${name} must be a Float32Array (rows × dim, row-major).`);
  if (rows.length % dim !== 0)
    throw new RangeError(
      `topK: ${name} has ${rows.length} values, not a whole number of rows of dim ${dim}.`,
    );
  for (let i = 0; i < rows.length; i++) {
    if (!Number.isFinite(rows[i])) {
      const row = Math.floor(i / dim);
      throw new RangeError(
        `topK: ${name} row ${row} contains ${rows[i]} at column ${i - row * dim}; similarity ` +
          'search needs finite embeddings.',
      );
    }
  }
}
