import { describe, expect, it } from 'vitest';
import { l2NormalizeRows, recallAtK, recallAtKParallel, topK } from '../src/index.js';
import { float32DotErrorBound, openOnnxCandidates } from '../src/backends/onnx.js';
import { exactDot, similarityTile } from '../src/kernels.js';
import { TopKNeighbours } from '../src/topk.js';
import { exactTopKFromCandidates } from '../src/exact-top-k.js';

/** Seeded uniform [0, 1) generator (mulberry32). */
function rng(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

function gaussian(rand: () => number): number {
  return Math.sqrt(-2 * Math.log(1 - rand())) * Math.cos(2 * Math.PI * rand());
}

function randomRows(rand: () => number, n: number, dim: number): Float32Array {
  return Float32Array.from({ length: n * dim }, () => gaussian(rand));
}

/**
 * Rows built to be full of exact ties and near-ties: copies of a few prototypes (exact ties),
 * copies nudged by one float32 ulp-scale step in one coordinate (similarities that differ by
 * less than float32 GEMM rounding, so float32 may order them either way), all-zero rows, and
 * some plain random rows.
 */
function tieHeavyRows(rand: () => number, n: number, dim: number): Float32Array {
  const protos = randomRows(rand, 5, dim);
  const x = new Float32Array(n * dim);
  for (let i = 0; i < n; i++) {
    const r = rand();
    const row = x.subarray(i * dim, (i + 1) * dim);
    if (r < 0.08) continue; // zero row
    if (r < 0.25) {
      row.set(randomRows(rand, 1, dim));
      continue;
    }
    row.set(protos.subarray(Math.floor(rand() * 5) * dim).subarray(0, dim));
    if (r < 0.6) {
      const c = Math.floor(rand() * dim);
      row[c]! *= 1 + (rand() < 0.5 ? -1 : 1) * 2 ** -(20 + Math.floor(rand() * 4));
    }
  }
  return x;
}

/** The definition: every other gallery row, exact float64 dots, (similarity desc, index asc). */
function naiveTopK(q: Float32Array, g: Float32Array, dim: number, k: number, self?: number) {
  const qu = l2NormalizeRows(q, dim);
  const gu = l2NormalizeRows(g, dim);
  const n = g.length / dim;
  const indices: number[] = [];
  const sims: number[] = [];
  for (let i = 0; i < q.length / dim; i++) {
    const order = [...Array(n).keys()]
      .filter((j) => self === undefined || j !== self + i)
      .map((j) => ({ j, s: exactDot(qu, i, gu, j, dim) }))
      .sort((a, b) => b.s - a.s || a.j - b.j)
      .slice(0, k);
    for (const { j, s } of order) {
      indices.push(j);
      sims.push(s);
    }
  }
  return { indices: Int32Array.from(indices), similarities: Float64Array.from(sims) };
}

describe('topK on ONNX Runtime against the exact definition', () => {
  const cases = [
    { name: 'random, separate queries', q: 37, n: 500, dim: 33, k: 10, chunk: 8, self: false },
    {
      name: 'random, queries from the gallery',
      q: 300,
      n: 300,
      dim: 64,
      k: 20,
      chunk: 64,
      self: true,
    },
    { name: 'k larger than the gallery', q: 5, n: 12, dim: 7, k: 40, chunk: 2, self: true },
    { name: 'tie-heavy, separate queries', q: 60, n: 400, dim: 16, k: 25, chunk: 16, self: false },
    {
      name: 'tie-heavy, queries from the gallery',
      q: 400,
      n: 400,
      dim: 48,
      k: 10,
      chunk: 100,
      self: true,
    },
  ];
  for (const [t, c] of cases.entries()) {
    it(`${c.name}: same ids, order and similarities, bit for bit`, async () => {
      const rand = rng(500 + t);
      const tieHeavy = c.name.startsWith('tie');
      const gallery = tieHeavy ? tieHeavyRows(rand, c.n, c.dim) : randomRows(rand, c.n, c.dim);
      const queries = c.self
        ? gallery.slice(0, c.q * c.dim)
        : tieHeavy
          ? tieHeavyRows(rand, c.q, c.dim)
          : randomRows(rand, c.q, c.dim);
      const selfOffset = c.self ? 0 : undefined;
      const opts = { dim: c.dim, chunkSize: c.chunk, selfOffset };
      const fast = await topK(queries, gallery, c.k, { ...opts, backend: 'onnxruntime' });
      const exact = await topK(queries, gallery, c.k, { ...opts, backend: 'exact' });
      const naive = naiveTopK(queries, gallery, c.dim, fast.k, selfOffset);
      expect(fast.backend).toBe('onnxruntime');
      expect(exact.backend).toBe('exact');
      expect(fast.k).toBe(Math.min(c.k, c.self ? c.n - 1 : c.n));
      expect(fast.indices).toEqual(naive.indices);
      expect(fast.similarities).toEqual(naive.similarities);
      expect(exact.indices).toEqual(naive.indices);
      expect(exact.similarities).toEqual(naive.similarities);
    });
  }

  it('ranks near-ties that float32 cannot separate by their exact similarity', async () => {
    // Gallery: one direction u plus tiny, distinct perturbations. The exact similarities to u
    // differ by ~1e-9 — far below float32 rounding of a 256-long dot — and are all distinct.
    const dim = 256;
    const n = 64;
    const rand = rng(9);
    const u = randomRows(rand, 1, dim);
    const gallery = new Float32Array(n * dim);
    for (let j = 0; j < n; j++) {
      for (let c = 0; c < dim; c++) gallery[j * dim + c] = u[c]! * (1 + (rand() - 0.5) * 2 ** -22);
    }
    const queries = new Float32Array(4 * dim);
    for (let i = 0; i < 4; i++) {
      for (let c = 0; c < dim; c++) queries[i * dim + c] = u[c]! + 0.1 * (rand() - 0.5);
    }
    const fast = await topK(queries, gallery, 20, { dim, backend: 'onnxruntime' });
    const naive = naiveTopK(queries, gallery, dim, 20);
    expect(new Set(naive.similarities).size).toBeGreaterThan(10); // the lists really are decided by tiny gaps
    expect(fast.indices).toEqual(naive.indices);
    expect(fast.similarities).toEqual(naive.similarities);
  });
});

describe('the ONNX Runtime candidate source', () => {
  it('returns float32 similarities within the documented error bound, best first', async () => {
    const dim = 300;
    const n = 257;
    const rand = rng(3);
    const g = l2NormalizeRows(randomRows(rand, n, dim), dim);
    const source = await openOnnxCandidates(g, n, dim, 2);
    if (typeof source === 'string') throw new Error(source);
    const m = 9;
    const { values, indices } = await source.search(g.subarray(50 * dim, (50 + m) * dim), m, n);
    await source.release();
    let worst = 0;
    for (let r = 0; r < m; r++) {
      const seen = new Set<number>();
      for (let t = 0; t < n; t++) {
        const j = indices[r * n + t]!;
        const v = values[r * n + t]!;
        seen.add(j);
        worst = Math.max(worst, Math.abs(v - exactDot(g, 50 + r, g, j, dim)));
        if (t > 0) expect(v).toBeLessThanOrEqual(values[r * n + t - 1]!);
      }
      expect(seen.size).toBe(n); // every gallery row once
      expect(indices[r * n]).toBe(50 + r); // a unit row is its own best match
    }
    expect(worst).toBeGreaterThan(0); // float32 really does round…
    expect(worst).toBeLessThan(float32DotErrorBound(dim)); // …within the bound the resolver uses
  });
});

describe('candidate windows longer than the list', () => {
  it('asks again with longer lists until duplicates and zero rows fit, same lists as the definition', async () => {
    // 3 prototypes × ~90 exact copies each and ~30 zero rows: for every query the k-th
    // candidate is tied with far more than k + 17 others, so the first list cannot hold its window.
    const dim = 10;
    const n = 300;
    const rand = rng(17);
    const protos = randomRows(rand, 3, dim);
    const x = new Float32Array(n * dim);
    for (let i = 0; i < n; i++) {
      if (i % 10 === 3) continue; // zero row
      x.set(protos.subarray((i % 3) * dim, ((i % 3) + 1) * dim), i * dim);
    }
    const g = l2NormalizeRows(x, dim);
    const source = await openOnnxCandidates(g, n, dim, 2);
    if (typeof source === 'string') throw new Error(source);
    const k = 12;
    const lists = await exactTopKFromCandidates(source, {
      queries: g,
      gallery: g,
      dim,
      k,
      selfOffset: 0,
      chunkSize: 64,
      withSimilarities: true,
    });
    await source.release();
    const naive = naiveTopK(x, x, dim, k, 0);
    expect(lists.retried).toBeGreaterThanOrEqual(n); // every query needed a second, longer list
    expect(lists.indices).toEqual(naive.indices);
    expect(lists.similarities).toEqual(naive.similarities);
    // Spot check of the tie rule: row 0's copies are rows 3k (k ≥ 1) minus the zero rows.
    expect(Array.from(lists.indices.subarray(0, 4))).toEqual([6, 9, 12, 15]);
  });
});

describe('recallAtKParallel on ONNX Runtime', () => {
  const ks = [1, 2, 5, 10, 50];
  it('equals the exact single-thread recallAtK on random and tie-heavy data', async () => {
    const rand = rng(21);
    for (const [n, dim, x] of [
      [600, 24, randomRows(rand, 600, 24)],
      [500, 12, tieHeavyRows(rand, 500, 12)],
    ] as const) {
      const labels = Int32Array.from({ length: n }, () => Math.floor(rand() * 7));
      const expected = recallAtK(x, dim, labels, ks);
      const used: string[] = [];
      const fast = await recallAtKParallel(x, dim, labels, ks, {
        backend: 'onnxruntime',
        chunkSize: 128,
        onBackend: (b) => used.push(b),
      });
      expect(used).toEqual(['onnxruntime']);
      expect(fast).toEqual(expected);
    }
  });

  it('is what auto picks from 10⁷ multiply-adds on, the exact sweep below', async () => {
    const rand = rng(22);
    for (const [n, dim, backend] of [
      [1500, 16, 'onnxruntime'], // 1.8·10⁷ multiply-adds
      [600, 24, 'exact'], // 4.3·10⁶
    ] as const) {
      const x = randomRows(rand, n, dim);
      const labels = Int32Array.from({ length: n }, () => Math.floor(rand() * 9));
      const used: string[] = [];
      const r = await recallAtKParallel(x, dim, labels, ks, { onBackend: (b) => used.push(b) });
      expect(used).toEqual([backend]);
      expect(r).toEqual(recallAtK(x, dim, labels, ks));
    }
  });
});

describe('topK input checks', () => {
  const g = new Float32Array([1, 0, 0, 1, 1, 1]);
  it('names the bad value', async () => {
    await expect(topK(new Float32Array([1, Number.NaN]), g, 1, { dim: 2 })).rejects.toThrow(
      /queries row 0 contains NaN at column 1/,
    );
    await expect(topK(g, g, 0, { dim: 2 })).rejects.toThrow(/k must be a positive integer/);
    await expect(topK(g, g, 1, { dim: 4 })).rejects.toThrow(/not a whole number of rows of dim 4/);
    await expect(topK(g, g, 1, { dim: 2, selfOffset: 1 })).rejects.toThrow(
      /selfOffset 1 \+ 3 queries does not fit the gallery of 3 rows/,
    );
    await expect(topK(g, g, 1, { dim: 2, backend: 'faiss' as unknown as 'exact' })).rejects.toThrow(
      /unknown similarity backend 'faiss'; use one of auto, exact, onnxruntime/,
    );
  });
});

describe('kernel bounds (checked once per call, so the inner loops read in range)', () => {
  it('refuse rows, lists and outputs outside the arrays they are given', () => {
    const x = new Float32Array([1, 0, 0, 1, 1, 1]); // 3 rows of dim 2
    const out = new Float64Array(9);
    similarityTile(x, 2, 0, 3, 0, 3, out, 3);
    expect(Array.from(out)).toEqual([1, 0, 1, 0, 1, 1, 1, 1, 2]);
    expect(() => similarityTile(x, 2, 0, 4, 0, 3, out, 3)).toThrow(
      /rows \[0, 4\) × \[0, 3\) of dim 2 exceed the 6 values given/,
    );
    expect(() => similarityTile(x, 2, 0, 3, 0, 3, new Float64Array(8), 3)).toThrow(
      /output \(8 values\) is smaller than the tile/,
    );
    expect(exactDot(x, 2, x, 1, 2)).toBe(1);
    expect(() => exactDot(x, 3, x, 0, 2)).toThrow(/row 3 or 0 of dim 2 is outside/);
    const lists = new TopKNeighbours(2, 1);
    lists.offer(1, 0, 0.5);
    expect(Array.from(lists.indices)).toEqual([0, 0]);
    expect(Array.from(lists.counts)).toEqual([0, 1]);
    expect(() => lists.offer(2, 0, 0.5)).toThrow(/query 2 is not one of the 2 lists/);
  });
});
