import { nearestNeighbours } from '@maskcon/eval';
import type { EmbeddingStore, StoreItem } from './store.js';

/**
 * Exact cosine search over a store's vectors, through @maskcon/eval's retrieval kernel (the one
 * Recall@K uses, so its lists are the ones Recall@K scores: same similarity, same tie rule —
 * higher similarity first, then the lower row).
 */

export interface Gallery {
  /** Store ids, row order. */
  ids: Int32Array;
  /** N×dim unit rows. */
  vectors: Float32Array;
  dim: number;
  coarse: (string | null)[];
  /** store id → row. */
  rowOf: Map<number, number>;
}

export function loadGallery(store: EmbeddingStore): Gallery {
  const model = store.model();
  if (!model)
    throw new Error(`${store.file} holds no vectors yet; run \`pnpm embed\` into it first.`);
  const { ids, vectors, coarse } = store.loadVectors(model.dim);
  const rowOf = new Map<number, number>();
  for (let i = 0; i < ids.length; i++) rowOf.set(ids[i], i);
  return { ids, vectors, dim: model.dim, coarse, rowOf };
}

export interface SearchHit {
  rank: number;
  id: number;
  score: number;
  item: StoreItem;
}

export interface SearchQuery {
  /** A stored item (it is not returned as its own neighbour)… */
  id?: number;
  /** …or a unit feature vector of a new image. */
  vector?: Float32Array;
  k: number;
  /** Only items with this coarse label name. */
  coarse?: string;
}

/** The k most cosine-similar stored items of the query, best first. */
export function searchGallery(store: EmbeddingStore, g: Gallery, q: SearchQuery): SearchHit[] {
  if (!Number.isInteger(q.k) || q.k < 1)
    throw new Error(`--k must be a positive integer, got ${q.k}.`);
  if ((q.id === undefined) === (q.vector === undefined))
    throw new Error('Search by exactly one of an image or a stored id.');
  const dim = g.dim;
  let queryVector: Float32Array;
  let selfRow = -1;
  if (q.id !== undefined) {
    const row = g.rowOf.get(q.id);
    if (row === undefined)
      throw new Error(
        `No item ${q.id} in ${store.file}; ids run from ${g.ids[0] ?? '?'} to ${g.ids[g.ids.length - 1] ?? '?'}.`,
      );
    selfRow = row;
    queryVector = g.vectors.subarray(row * dim, (row + 1) * dim);
  } else {
    queryVector = q.vector!;
    if (queryVector.length !== dim)
      throw new Error(
        `The query vector has ${queryVector.length} values; the store holds dim ${dim}.`,
      );
  }
  // Candidate rows (all, or one coarse label's), then the query appended as the last row so the
  // kernel's "never retrieve yourself" rule excludes exactly the query.
  let rows: Int32Array | null = null;
  if (q.coarse !== undefined) {
    const keep: number[] = [];
    for (let i = 0; i < g.ids.length; i++)
      if (g.coarse[i] === q.coarse && i !== selfRow) keep.push(i);
    if (keep.length === 0) {
      const names = [...new Set(g.coarse.filter((c) => c !== null))].sort();
      throw new Error(
        `No item with coarse label ${JSON.stringify(q.coarse)}${names.length ? `; labels: ${names.slice(0, 20).join(', ')}` : ' (this store has no labels)'}.`,
      );
    }
    rows = Int32Array.from(keep);
  } else if (selfRow >= 0) {
    rows = null; // the query is a row of the gallery itself
  }
  let matrix: Float32Array;
  let queryRow: number;
  let rowIds: (r: number) => number;
  if (rows === null && selfRow >= 0) {
    matrix = g.vectors;
    queryRow = selfRow;
    rowIds = (r) => g.ids[r];
  } else {
    const sel = rows ?? null;
    const n = sel ? sel.length : g.ids.length;
    matrix = new Float32Array((n + 1) * dim);
    if (sel)
      for (let i = 0; i < n; i++)
        matrix.set(g.vectors.subarray(sel[i] * dim, (sel[i] + 1) * dim), i * dim);
    else matrix.set(g.vectors);
    matrix.set(queryVector, n * dim);
    queryRow = n;
    rowIds = (r) => g.ids[sel ? sel[r] : r];
  }
  if (matrix.length / dim < 2) return [];
  const r = nearestNeighbours(matrix, dim, [queryRow], q.k);
  const hits: SearchHit[] = [];
  for (let j = 0; j < r.k; j++) {
    const id = rowIds(r.indices[j]);
    hits.push({ rank: j + 1, id, score: r.similarities[j], item: store.item(id)! });
  }
  return hits;
}
