import { describe, expect, it } from 'vitest';
import { topK } from '@maskcon/eval';
import { AnnIndex, type Gallery } from '../src/index.js';

/** Seeded clustered unit vectors: n rows of dim around 50 centres. */
function gallery(n: number, dim: number): Gallery {
  let s = 7;
  const rnd = () => (s = (Math.imul(s, 1664525) + 1013904223) >>> 0) / 4294967296 - 0.5;
  const centres = Array.from({ length: 50 }, () => Float32Array.from({ length: dim }, rnd));
  const vectors = new Float32Array(n * dim);
  for (let i = 0; i < n; i++) {
    let norm = 0;
    for (let c = 0; c < dim; c++) {
      const v = centres[i % 50][c] + 0.3 * rnd();
      vectors[i * dim + c] = v;
      norm += v * v;
    }
    for (let c = 0; c < dim; c++) vectors[i * dim + c] /= Math.sqrt(norm);
  }
  const ids = Int32Array.from({ length: n }, (_, i) => i + 1);
  return {
    ids,
    vectors,
    dim,
    coarse: new Array(n).fill(null),
    rowOf: new Map(Array.from(ids, (id, i) => [id, i])),
  };
}

describe('--ann (usearch HNSW)', () => {
  it('finds at least 95% of the exact top-10', async () => {
    const g = gallery(5000, 64);
    // One thread: the graph (and so the recall) is the same on every run.
    const ann = await AnnIndex.build(g, undefined, 1);
    expect(ann.size).toBe(5000);
    const q = 200;
    const exact = await topK(g.vectors.slice(0, q * 64), g.vectors, 10, {
      dim: 64,
      backend: 'exact',
    });
    let found = 0;
    for (let i = 0; i < q; i++) {
      const r = ann.search(g.vectors.subarray(i * 64, (i + 1) * 64), 10);
      const want = new Set(
        Array.from(exact.indices.subarray(i * 10, (i + 1) * 10), (row) => g.ids[row]),
      );
      for (const id of r.ids) if (want.has(id)) found++;
      expect(r.scores[0]).toBeCloseTo(exact.similarities[i * 10], 4);
    }
    const recall = found / (q * 10);
    console.log(`ANN recall@10 vs exact over 5000×64: ${recall.toFixed(4)}`);
    expect(recall).toBeGreaterThanOrEqual(0.95);
  });
});
