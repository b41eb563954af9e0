import { describe, expect, it } from 'vitest';
import { DEFAULT_KS, l2NormalizeRows, recallAtK } from '../src/index.js';

/** Seeded uniform [0, 1) generator (mulberry32) so every dataset is reproducible. */
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

/**
 * The definition, written out with no tricks: full N×N cosine matrix, then each query's
 * other items sorted by (similarity desc, index asc). Normalised rows are stored as float32,
 * as the library documents, so both sides rank the same float32 vectors.
 */
function naiveRecall(emb: Float32Array, dim: number, labels: Int32Array, ks: number[]) {
  const n = labels.length;
  const x = new Float32Array(n * dim);
  for (let i = 0; i < n; i++) {
    let sq = 0;
    for (let c = 0; c < dim; c++) sq += emb[i * dim + c]! ** 2;
    const norm = Math.sqrt(sq);
    for (let c = 0; c < dim; c++) x[i * dim + c] = norm === 0 ? 0 : emb[i * dim + c]! / norm;
  }
  const sim: number[][] = [];
  for (let i = 0; i < n; i++) {
    const row: number[] = [];
    for (let j = 0; j < n; j++) {
      let s = 0;
      for (let c = 0; c < dim; c++) s += x[i * dim + c]! * x[j * dim + c]!;
      row.push(s);
    }
    sim.push(row);
  }
  const out: Record<number, number> = {};
  for (const k of ks) {
    let hits = 0;
    for (let i = 0; i < n; i++) {
      const order = [...Array(n).keys()]
        .filter((j) => j !== i)
        .sort((a, b) => sim[i]![b]! - sim[i]![a]! || a - b);
      if (order.slice(0, k).some((j) => labels[j] === labels[i])) hits++;
    }
    out[k] = hits / n;
  }
  return out;
}

function randomDataset(seed: number, n: number, dim: number, numLabels: number) {
  const rand = rng(seed);
  const emb = new Float32Array(n * dim);
  for (let i = 0; i < emb.length; i++) emb[i] = gaussian(rand);
  const labels = new Int32Array(n);
  for (let i = 0; i < n; i++) labels[i] = Math.floor(rand() * numLabels);
  return { emb, labels, rand };
}

describe('recallAtK against the naive O(N²) definition', () => {
  const ks = [1, 2, 3, 5, 10, 50, 100];
  const cases = [
    { n: 2, dim: 1, labels: 2, chunk: 1 },
    { n: 7, dim: 3, labels: 2, chunk: 3 },
    { n: 64, dim: 8, labels: 4, chunk: 16 }, // chunk divides N
    { n: 101, dim: 17, labels: 10, chunk: 32 }, // odd N, odd dim, chunk does not divide N
    { n: 150, dim: 2, labels: 30, chunk: 7 }, // low dim: many near neighbours
    { n: 200, dim: 64, labels: 50, chunk: 256 }, // one chunk bigger than N
    { n: 257, dim: 33, labels: 100, chunk: 256 }, // default chunk + 1 leftover row
  ];
  for (const [t, c] of cases.entries()) {
    it(`N=${c.n} d=${c.dim} labels=${c.labels} chunk=${c.chunk}`, () => {
      const { emb, labels } = randomDataset(1000 + t, c.n, c.dim, c.labels);
      const expected = naiveRecall(emb, c.dim, labels, ks);
      expect(recallAtK(emb, c.dim, labels, ks, { chunkSize: c.chunk })).toEqual(expected);
      expect(recallAtK(emb, c.dim, labels, ks)).toEqual(expected);
    });
  }

  it('agrees on data full of exact ties (duplicate rows, zero rows)', () => {
    const n = 120;
    const dim = 5;
    const { emb, labels, rand } = randomDataset(77, n, dim, 6);
    for (let i = 0; i < n; i++) {
      const r = rand();
      if (r < 0.3) {
        const src = Math.floor(rand() * i);
        for (let c = 0; c < dim; c++) emb[i * dim + c] = emb[src * dim + c]!;
      } else if (r < 0.4) {
        emb.fill(0, i * dim, (i + 1) * dim);
      }
    }
    const expected = naiveRecall(emb, dim, labels, ks);
    for (const chunkSize of [1, 5, 13, 64, 256]) {
      expect(recallAtK(emb, dim, labels, ks, { chunkSize })).toEqual(expected);
    }
  });
});

describe('recallAtK on hand-made cases', () => {
  it('gives the known answer on a tiny 2-d dataset', () => {
    // Angles (degrees): item0 0°, item1 10°, item2 90°, item3 100°, item4 180°.
    // Neighbour orders (self excluded):
    //   0: 1, 2, 3, 4    1: 0, 2, 3, 4    2: 3, 1, {0, 4}    3: 2, 4, 1, 0    4: 3, 2, 1, 0
    const deg = [0, 10, 90, 100, 180];
    const emb = new Float32Array(
      deg.flatMap((a) => [Math.cos((a * Math.PI) / 180), Math.sin((a * Math.PI) / 180)]),
    );
    const labels = Int32Array.from([0, 1, 1, 0, 0]);
    // First same-label rank: 0→3 (rank 2), 1→2 (rank 1), 2→1 (rank 1), 3→4 (rank 1), 4→3 (rank 0).
    expect(recallAtK(emb, 2, labels, [1, 2, 3, 4])).toEqual({ 1: 1 / 5, 2: 4 / 5, 3: 1, 4: 1 });
  });

  it('breaks similarity ties by lower index', () => {
    // Items 1, 2, 3 are the same vector; item 0 points elsewhere, item 4 is opposite.
    const emb = new Float32Array([0, 1, 1, 0, 1, 0, 1, 0, -1, 0]);
    // Query 2 ranks 1 before 3 (equal similarity, lower index); query 3 ranks 1 before 2.
    const labels = Int32Array.from([7, 9, 5, 9, 5]);
    // Query 0: all of 1,2,3 at 0, plus 4 at 0 → order 1,2,3,4; label 7 nowhere → 0.
    // Query 1 (9): order 2,3,0,4 → label 9 at rank 1. Query 2 (5): order 1,3,0,4 → 4 at rank 3.
    // Query 3 (9): order 1,2,0,4 → rank 0. Query 4 (5): order 0, then 1,2,3 at −1 → 2 at rank 2.
    const r = recallAtK(emb, 2, labels, [1, 2, 3, 4]);
    expect(r).toEqual({ 1: 1 / 5, 2: 2 / 5, 3: 3 / 5, 4: 4 / 5 });
    // Swapping labels of 2 and 3 changes which tie wins.
    const swapped = Int32Array.from([7, 9, 9, 5, 5]);
    // Query 1 (9): order 2,3,... → rank 0. Query 2 (9): order 1,... → rank 0.
    // Query 3 (5): order 1,2,0,4 → rank 3. Query 4 (5): order 0,1,2,3 → rank 3.
    expect(recallAtK(emb, 2, swapped, [1, 2, 3, 4])).toEqual({
      1: 2 / 5,
      2: 2 / 5,
      3: 2 / 5,
      4: 4 / 5,
    });
  });

  it('never retrieves the query itself', () => {
    // Every label is unique, so the only same-label item is the query itself.
    const { emb } = randomDataset(5, 40, 8, 1);
    const labels = Int32Array.from({ length: 40 }, (_, i) => i);
    expect(recallAtK(emb, 8, labels, [1, 5, 39])).toEqual({ 1: 0, 5: 0, 39: 0 });
    // Pairs of identical vectors with different labels: the twin (sim 1) is ranked first.
    const twins = new Float32Array(80 * 8);
    twins.set(emb, 0);
    twins.set(emb, 40 * 8);
    const twinLabels = Int32Array.from({ length: 80 }, (_, i) => i);
    expect(recallAtK(twins, 8, twinLabels, [1])).toEqual({ 1: 0 });
    twinLabels.set(labels, 40); // now each twin shares its label → R@1 = 1
    expect(recallAtK(twins, 8, twinLabels, [1])).toEqual({ 1: 1 });
  });

  it('treats all-zero rows as similarity 0 to everything, without NaN', () => {
    // Item 0 and 2 are zero rows. Item 1 = (1, 0), item 3 = (−1, 0).
    const emb = new Float32Array([0, 0, 1, 0, 0, 0, -1, 0]);
    const labels = Int32Array.from([0, 1, 0, 1]);
    // Query 0: all at 0 → order 1,2,3 → label 0 at rank 1 (item 2).
    // Query 1: item 0 (0), 2 (0), 3 (−1) → order 0,2,3 → label 1 at rank 2.
    // Query 2: order 0,1,3 → rank 0. Query 3: 0 (0), 2 (0), 1 (−1) → rank 2.
    expect(recallAtK(emb, 2, labels, [1, 2, 3])).toEqual({ 1: 1 / 4, 2: 2 / 4, 3: 1 });
    const unit = l2NormalizeRows(emb, 2);
    expect(Array.from(unit)).toEqual([0, 0, 1, 0, 0, 0, -1, 0]);
  });

  it('clamps K above N − 1 and keys the result by the requested K', () => {
    const emb = new Float32Array([1, 0, 0, 1, -1, 0]);
    const labels = Int32Array.from([0, 1, 0]);
    // With every other item retrieved, a query hits iff its label occurs elsewhere: 2 of 3.
    expect(recallAtK(emb, 2, labels, [1, 2, 100])).toEqual({ 1: 0, 2: 2 / 3, 100: 2 / 3 });
    expect(Object.keys(recallAtK(emb, 2, labels)).map(Number)).toEqual([...DEFAULT_KS]);
  });

  it('reports progress per chunk of finished queries', () => {
    const { emb, labels } = randomDataset(9, 10, 4, 3);
    const calls: [number, number][] = [];
    recallAtK(emb, 4, labels, [1], { chunkSize: 4, onProgress: (d, t) => calls.push([d, t]) });
    expect(calls).toEqual([
      [4, 10],
      [8, 10],
      [10, 10],
    ]);
  });
});

describe('recallAtK input validation', () => {
  const emb = new Float32Array(12);
  const labels = new Int32Array(4);
  it('rejects a bad dim', () => {
    expect(() => recallAtK(emb, 0, labels)).toThrow('dim must be a positive integer, got 0.');
    expect(() => recallAtK(emb, 2.5, labels)).toThrow('got 2.5');
  });
  it('rejects mismatched lengths', () => {
    expect(() => recallAtK(emb, 4, labels)).toThrow(
      'embeddings has 12 values but 4 labels × dim 4 needs 16',
    );
  });
  it('names the row holding a NaN or infinity', () => {
    const bad = new Float32Array(12);
    bad[7] = NaN;
    expect(() => recallAtK(bad, 3, labels)).toThrow('embeddings row 2 contains NaN at column 1');
    bad[7] = 0;
    bad[11] = Infinity;
    expect(() => recallAtK(bad, 3, labels)).toThrow('row 3 contains Infinity at column 2');
  });
  it('rejects bad ks, chunk sizes and datasets too small to retrieve from', () => {
    expect(() => recallAtK(emb, 3, labels, [])).toThrow('ks is empty');
    expect(() => recallAtK(emb, 3, labels, [1, 0])).toThrow(
      'every K must be a positive integer, got 0.',
    );
    expect(() => recallAtK(emb, 3, labels, [1], { chunkSize: 0 })).toThrow(
      'chunkSize must be a positive integer',
    );
    expect(() => recallAtK(new Float32Array(3), 3, new Int32Array(1))).toThrow(
      'needs at least 2 items',
    );
  });
});

describe('recallAtKParallel (worker threads) against recallAtK and the naive definition', () => {
  it('gives the same result as one thread, with ties, zero rows and a chunk that does not divide N', async () => {
    const { recallAtKParallel } = await import('../src/index.js');
    const ks = [1, 2, 5, 10, 50];
    const n = 301;
    const dim = 9;
    const { emb, labels, rand } = randomDataset(4242, n, dim, 12);
    for (let i = 0; i < n; i++) {
      const r = rand();
      if (r < 0.2 && i > 0) {
        const src = Math.floor(rand() * i);
        for (let c = 0; c < dim; c++) emb[i * dim + c] = emb[src * dim + c]!;
      } else if (r < 0.25) emb.fill(0, i * dim, (i + 1) * dim);
    }
    const expected = naiveRecall(emb, dim, labels, ks);
    const progress: number[] = [];
    const got = await recallAtKParallel(emb, dim, labels, ks, {
      workers: 2,
      chunkSize: 37,
      onProgress: (d) => progress.push(d),
    });
    expect(got).toEqual(expected);
    expect(got).toEqual(recallAtK(emb, dim, labels, ks, { chunkSize: 37 }));
    expect(progress[progress.length - 1]).toBe(n);
    expect(await recallAtKParallel(emb, dim, labels, ks, { workers: 3, chunkSize: 64 })).toEqual(
      expected,
    );
    await expect(recallAtKParallel(emb, dim, labels, ks, { workers: 0 })).rejects.toThrow(
      'workers must be a positive integer, got 0.',
    );
  });
});

describe('nearestNeighbours', () => {
  it('lists the k most similar other items, ties by lower index', async () => {
    const { nearestNeighbours } = await import('../src/index.js');
    // Angles 0°, 10°, 90°, 100°, 180° as in the hand-made case; item 5 duplicates item 1.
    const deg = [0, 10, 90, 100, 180, 10];
    const emb = Float32Array.from(
      deg.flatMap((d) => [Math.cos((d * Math.PI) / 180), Math.sin((d * Math.PI) / 180)]),
    );
    const r = nearestNeighbours(emb, 2, [0, 2], 3);
    expect(r.k).toBe(3);
    expect(Array.from(r.indices)).toEqual([1, 5, 2, 3, 1, 5]);
    expect(r.similarities[0]).toBeCloseTo(Math.cos((10 * Math.PI) / 180), 6);
    expect(nearestNeighbours(emb, 2, [4], 99).k).toBe(5);
  });
});
