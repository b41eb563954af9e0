import { topK } from '@maskcon/eval';
import type { AnnIndex } from './ann.js';
import type { EmbeddingStore, StoreItem } from './store.js';

/**
 * Exact cosine search over a store's vectors, through @maskcon/eval's top-K (the kernel Recall@K
 * uses, so its lists are the ones Recall@K scores: same similarity, same tie rule — higher
 * similarity first, then the lower row).
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
  /** Approximate search through this graph instead of the exact scan. */
  ann?: AnnIndex;
}

/** The k most cosine-similar stored items of the query, best first. */
export async function searchGallery(
  store: EmbeddingStore,
  g: Gallery,
  q: SearchQuery,
): Promise<SearchHit[]> {
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
  if (q.ann) {
    // Over-fetch: one more for the query item itself, 20× for a coarse filter; when the
    // filter leaves fewer than k, the exact scan below answers instead.
    const want = Math.min(g.ids.length, q.coarse !== undefined ? q.k * 20 : q.k + 1);
    const r = q.ann.search(Float32Array.from(queryVector), want);
    const hits: SearchHit[] = [];
    for (let j = 0; j < r.ids.length && hits.length < q.k; j++) {
      const id = r.ids[j];
      if (id === q.id) continue;
      if (q.coarse !== undefined && g.coarse[g.rowOf.get(id)!] !== q.coarse) continue;
      hits.push({ rank: hits.length + 1, id, score: r.scores[j], item: store.item(id)! });
    }
    let eligible = 0;
    for (let i = 0; i < g.ids.length; i++)
      if ((q.coarse === undefined || g.coarse[i] === q.coarse) && g.ids[i] !== q.id) eligible++;
    if (hits.length >= Math.min(q.k, eligible)) return hits;
  }
  // Candidate rows: all (the query row itself excluded by the kernel), or one coarse label's.
  let sel: Int32Array | null = null;
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
    sel = Int32Array.from(keep);
  }
  let gallery = g.vectors;
  if (sel) {
    gallery = new Float32Array(sel.length * dim);
    for (let i = 0; i < sel.length; i++)
      gallery.set(g.vectors.subarray(sel[i] * dim, (sel[i] + 1) * dim), i * dim);
  }
  const n = gallery.length / dim;
  if (n === 0 || (selfRow >= 0 && !sel && n < 2)) return [];
  // One query: the exact float64 scan (a fast backend's set-up costs more than it saves).
  const r = await topK(Float32Array.from(queryVector), gallery, q.k, {
    dim,
    backend: 'exact',
    selfOffset: selfRow >= 0 && !sel ? selfRow : undefined,
  });
  const rowIds = (row: number) => g.ids[sel ? sel[row] : row];
  const hits: SearchHit[] = [];
  for (let j = 0; j < r.k; j++) {
    const id = rowIds(r.indices[j]);
    hits.push({ rank: j + 1, id, score: r.similarities[j], item: store.item(id)! });
  }
  return hits;
}
