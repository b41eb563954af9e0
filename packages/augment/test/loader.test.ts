import { writeIndex, type DatasetRecord, type DatasetSource } from '@maskcon/datasets';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { BatchLoader, type Batch, type BatchLoaderOptions } from '../src/index.js';

const N = 50;
const SIDE = 16;
const fineOf = (i: number) => (i * 7) % 10;
const coarseOf = (i: number) => fineOf(i) % 3;

/** Image i: pixel (0, 0, 0) is 5·i, so a test-pipeline view names the image it came from. */
function imageOf(i: number): Uint8Array {
  const data = new Uint8Array(SIDE * SIDE * 3);
  for (let p = 0; p < data.length; p++) data[p] = (i * 5 + p * 31) & 255;
  return data;
}

function source(): DatasetSource {
  const records = (count: number): DatasetRecord[] =>
    Array.from({ length: count }, (_, i) => ({
      fine: fineOf(i),
      coarse: coarseOf(i),
      image: { data: imageOf(i), height: SIDE, width: SIDE, channels: 3 },
    }));
  return {
    name: 'loader_toy',
    builderVersion: '1',
    fineClassNames: Array.from({ length: 10 }, (_, k) => `f${k}`),
    coarseClassNames: ['c0', 'c1', 'c2'],
    sourceFiles: [],
    readSplit: (split) => ({ records: records(split === 'train' ? N : 4) }),
  };
}

let dir = '';
let indexPath = '';
const pipelines = {
  query: { kind: 'strong', size: SIDE, mean: [0.5, 0.5, 0.5], std: [0.25, 0.25, 0.25] },
  key: { kind: 'weak', size: SIDE, mean: [0.5, 0.5, 0.5], std: [0.25, 0.25, 0.25] },
} as const;

beforeAll(async () => {
  dir = mkdtempSync(join(tmpdir(), 'maskcon-loader-'));
  indexPath = join(dir, 'loader_toy.sqlite');
  await writeIndex(source(), indexPath);
});
afterAll(() => rmSync(dir, { recursive: true, force: true }));

async function collect(options: Partial<BatchLoaderOptions>, epochs: number[]): Promise<Batch[][]> {
  const loader = new BatchLoader({ indexPath, batchSize: 8, seed: 7, ...pipelines, ...options });
  try {
    const out: Batch[][] = [];
    for (const e of epochs) {
      const batches: Batch[] = [];
      for await (const b of loader.epoch(e)) batches.push(b);
      out.push(batches);
    }
    return out;
  } finally {
    await loader.close();
  }
}

describe('BatchLoader', () => {
  it('starts an epoch at batch `first` with the same batches as the whole epoch from there (a resumed run)', async () => {
    const loader = new BatchLoader({ indexPath, batchSize: 8, seed: 7, ...pipelines, workers: 2 });
    try {
      const whole: Batch[] = [];
      for await (const b of loader.epoch(3)) whole.push(b);
      const tail: Batch[] = [];
      for await (const b of loader.epoch(3, 4)) tail.push(b);
      expect(tail.map((b) => b.index)).toEqual([4, 5]);
      for (const b of tail) {
        const w = whole[b.index];
        expect(Array.from(b.indices)).toEqual(Array.from(w.indices));
        expect(Buffer.from(b.query.buffer).equals(Buffer.from(w.query.buffer))).toBe(true);
        expect(Buffer.from(b.key.buffer).equals(Buffer.from(w.key.buffer))).toBe(true);
      }
    } finally {
      await loader.close();
    }
  });

  it('gives identical batches with 1 and 3 workers, reshuffles every epoch and drops the last batch', async () => {
    const [one, three] = await Promise.all([
      collect({ workers: 1 }, [1, 2]),
      collect({ workers: 3, prefetch: 4 }, [1, 2]),
    ]);
    for (let e = 0; e < 2; e++) {
      expect(one[e].length).toBe(Math.floor(N / 8)); // 6 full batches; the 2 leftover images are dropped
      for (let b = 0; b < one[e].length; b++) {
        const x = one[e][b];
        const y = three[e][b];
        expect(x.index).toBe(b);
        expect(x.query.length).toBe(8 * SIDE * SIDE * 3);
        expect(Array.from(y.indices)).toEqual(Array.from(x.indices));
        expect(Buffer.from(y.query.buffer).equals(Buffer.from(x.query.buffer))).toBe(true);
        expect(Buffer.from(y.key.buffer).equals(Buffer.from(x.key.buffer))).toBe(true);
        // The two views are different augmentations of the same images.
        expect(Buffer.from(x.query.buffer).equals(Buffer.from(x.key.buffer))).toBe(false);
      }
      const seen = one[e].flatMap((b) => Array.from(b.indices));
      expect(new Set(seen).size).toBe(48);
    }
    const order1 = one[0].flatMap((b) => Array.from(b.indices));
    const order2 = one[1].flatMap((b) => Array.from(b.indices));
    expect(order1).not.toEqual(order2);
    expect(order1).not.toEqual([...order1].sort((a, b) => a - b));
  });

  it('gives the same batches when the consumer releases them for reuse', async () => {
    const [plain] = await collect({ workers: 2 }, [4]);
    const loader = new BatchLoader({ indexPath, batchSize: 8, seed: 7, ...pipelines, workers: 2 });
    const given: Batch[] = [];
    try {
      for (let e = 0; e < 2; e++) {
        let b = 0;
        for await (const batch of loader.epoch(4)) {
          const want = plain[b++];
          expect(Array.from(batch.indices)).toEqual(Array.from(want.indices));
          expect(Buffer.from(batch.query.buffer).equals(Buffer.from(want.query.buffer))).toBe(true);
          expect(Buffer.from(batch.key.buffer).equals(Buffer.from(want.key.buffer))).toBe(true);
          loader.release(batch);
          loader.release(batch); // twice is harmless
          given.push(batch);
        }
        expect(b).toBe(plain.length);
      }
    } finally {
      await loader.close();
    }
    // Released arrays went back to the workers (transferred, hence detached here).
    expect(given.filter((b) => b.query.length === 0 && b.key.length === 0).length).toBeGreaterThan(
      4,
    );
  });

  it('serves the next epoch when the consumer left the previous one early (batches still in flight)', async () => {
    const [full] = await collect({ workers: 2 }, [1]);
    const loader = new BatchLoader({
      indexPath,
      batchSize: 8,
      seed: 7,
      ...pipelines,
      workers: 2,
      prefetch: 4,
    });
    try {
      let taken = 0;
      for await (const b of loader.epoch(0)) {
        expect(b.index).toBe(taken);
        if (++taken === 1) break; // the other workers are still augmenting batches of epoch 0
      }
      const again: Batch[] = [];
      for await (const b of loader.epoch(1)) again.push(b);
      expect(again.length).toBe(full.length);
      again.forEach((b, i) => {
        expect(Array.from(b.indices)).toEqual(Array.from(full[i].indices));
        expect(Array.from(b.query)).toEqual(Array.from(full[i].query));
      });
    } finally {
      await loader.close();
    }
  });

  it('labels line up with the images they come with (test views identify the image)', async () => {
    const view = { kind: 'test', size: SIDE, mean: [0], std: [1] } as const;
    const subset = Array.from({ length: 30 }, (_, k) => 49 - k); // a subset, not in split order
    const [[...batches]] = await collect(
      { workers: 2, query: view, key: view, indices: subset, batchSize: 7, dropLast: false },
      [3],
    );
    expect(batches.map((b) => b.indices.length)).toEqual([7, 7, 7, 7, 2]);
    const all = batches.flatMap((b) => Array.from(b.indices));
    expect([...all].sort((a, b) => a - b)).toEqual([...subset].sort((a, b) => a - b));
    for (const b of batches) {
      for (let j = 0; j < b.indices.length; j++) {
        const i = Math.round(b.query[j * SIDE * SIDE * 3] * 255) / 5; // pixel (0,0,0) = 5·i
        expect(i).toBe(b.indices[j]);
        expect(b.fineLabels[j]).toBe(fineOf(i));
        expect(b.coarseLabels[j]).toBe(coarseOf(i));
      }
    }
  });

  it('reports a failing batch with the worker, batch, epoch and cause', async () => {
    const loader = new BatchLoader({
      indexPath,
      batchSize: 4,
      seed: 1,
      ...pipelines,
      workers: 1,
      indices: [0, 1, 2, 999],
    });
    try {
      await expect(async () => {
        for await (const _ of loader.epoch(1)) void _;
      }).rejects.toThrow(
        /worker 0 failed on batch 0 of epoch 1 .*image index 999 is outside the train split/,
      );
    } finally {
      await loader.close();
    }
    await expect(async () => {
      for await (const _ of loader.epoch(2)) void _;
    }).rejects.toThrow(/closed/);
  });
});
