import { describe, expect, it, beforeAll } from 'vitest';
import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { parseTrainArgs, train } from '@maskcon/train';
import { buildTinyFashionIndex } from './fixtures.js';

const work = mkdtempSync(join(tmpdir(), 'maskcon-dp-'));
let index = '';

beforeAll(async () => {
  index = await buildTinyFashionIndex(work, 20, 8, 7);
});

describe('data parallelism over worker threads', () => {
  it('two workers reach the same weights as one process (all-reduced gradients and BN statistics)', async () => {
    const cfg = (workers: number) =>
      parseTrainArgs([
        '--preset',
        'tiny',
        '--index',
        index,
        '--K',
        '64',
        '--batch-size',
        '32',
        '--bn-splits',
        '2',
        '--epochs',
        '2',
        '--train-subset',
        '0',
        '--runs-db',
        join(work, 'runs.sqlite'),
        '--seed',
        '11',
        '--workers',
        String(workers),
        '--backend',
        'wasm',
      ]);
    const quiet = { log: () => {}, snapshot: true };
    const one = await train(cfg(1), quiet);
    const two = await train(cfg(2), quiet);
    expect(one.workers).toBe(1);
    expect(two.workers).toBe(2);
    expect(one.params!.size).toBeGreaterThan(10);
    let maxDiff = 0;
    let maxAbs = 0;
    for (const [name, a] of one.params!) {
      const b = two.params!.get(name)!;
      expect(b.length).toBe(a.length);
      for (let i = 0; i < a.length; i++) {
        maxDiff = Math.max(maxDiff, Math.abs(a[i] - b[i]));
        maxAbs = Math.max(maxAbs, Math.abs(a[i]));
      }
    }
    // Same computation up to float summation order: differences far below the weights' scale.
    expect(maxDiff).toBeLessThan(1e-3 * maxAbs);
    one.epochs.forEach((e, i) => expect(two.epochs[i].loss).toBeCloseTo(e.loss, 3));
    // Training moved the weights (the comparison is not between two untouched initialisations).
    const fresh = await train({ ...cfg(1), epochs: 1, lr: 1e-9 }, quiet);
    let moved = 0;
    for (const [name, a] of one.params!) {
      const f = fresh.params!.get(name)!;
      for (let i = 0; i < a.length; i++) moved = Math.max(moved, Math.abs(a[i] - f[i]));
    }
    expect(moved).toBeGreaterThan(100 * maxDiff);
  });
});

describe('the BatchLoader feeding training', () => {
  it('gives bit-identical weights to augmenting inside the replicas (same order, same pixels), with 1 and 2 workers', async () => {
    const cfg = (loaderWorkers: number, workers: number) =>
      parseTrainArgs([
        '--preset',
        'tiny',
        '--index',
        index,
        '--K',
        '64',
        '--batch-size',
        '32',
        '--bn-splits',
        '2',
        '--epochs',
        '2',
        '--train-subset',
        '0',
        '--runs-db',
        join(work, 'runs-loader.sqlite'),
        '--seed',
        '3',
        '--workers',
        String(workers),
        '--loader-workers',
        String(loaderWorkers),
        '--backend',
        'wasm',
      ]);
    for (const workers of [1, 2]) {
      const inline = await train(cfg(0, workers), { log: () => {}, snapshot: true });
      const loaded = await train(cfg(2, workers), { log: () => {}, snapshot: true });
      expect(loaded.params!.size).toBe(inline.params!.size);
      for (const [name, a] of inline.params!)
        expect(Array.from(loaded.params!.get(name)!), name).toEqual(Array.from(a));
      loaded.epochs.forEach((e, i) => expect(e.loss).toBe(inline.epochs[i].loss));
    }
  });
});

describe('micro-batches (gradient accumulation over whole BN groups)', () => {
  it('two passes of 16 per step train to the same weights as one pass of 32', async () => {
    const cfg = (micro: number) =>
      parseTrainArgs([
        '--preset',
        'tiny',
        '--index',
        index,
        '--K',
        '64',
        '--batch-size',
        '32',
        '--bn-splits',
        '2',
        '--epochs',
        '1',
        '--train-subset',
        '0',
        '--runs-db',
        join(work, 'runs-micro.sqlite'),
        '--seed',
        '5',
        '--workers',
        '1',
        '--backend',
        'wasm',
        '--micro-batch',
        String(micro),
      ]);
    const logs: string[] = [];
    const one = await train(cfg(32), { log: () => {}, snapshot: true });
    const two = await train(cfg(16), { log: (m: string) => logs.push(m), snapshot: true });
    expect(logs.some((l) => /micro-batches: 2 passes of 16/.test(l))).toBe(true);
    let maxDiff = 0;
    let maxAbs = 0;
    for (const [name, a] of one.params!) {
      const b = two.params!.get(name)!;
      for (let i = 0; i < a.length; i++) {
        maxDiff = Math.max(maxDiff, Math.abs(a[i] - b[i]));
        maxAbs = Math.max(maxAbs, Math.abs(a[i]));
      }
    }
    expect(maxDiff).toBeLessThan(1e-3 * maxAbs);
    expect(two.epochs[0].loss).toBeCloseTo(one.epochs[0].loss, 3);
  });
});

describe('wasm memory', () => {
  it('refuses, before any work, a pass that cannot fit one wasm heap, naming the flags that make it fit', async () => {
    const cfg = parseTrainArgs([
      '--preset',
      'tiny',
      '--index',
      index,
      '--arch',
      'resnet50',
      '--K',
      '64',
      '--batch-size',
      '64',
      '--bn-splits',
      '1',
      '--epochs',
      '1',
      '--train-subset',
      '0',
      '--runs-db',
      join(work, 'runs-mem.sqlite'),
      '--workers',
      '1',
      '--backend',
      'wasm',
    ]);
    // ResNet-50 on 28×28 (small stem): 64 images in one BatchNorm group ≈ 5.9 GB > 4 GB; groups of 32 fit.
    await expect(train(cfg, { log: () => {} })).rejects.toThrow(
      /pass of 64 images of 28×28 with resnet50 needs about 5\.9 GB.*--bn-splits 2 --micro-batch 32/,
    );
  });

  it('explains a wasm trap in the middle of training as the heap running out', async () => {
    const { explainFailure } = await import('@maskcon/train');
    const e = explainFailure(
      new Error('RuntimeError: memory access out of bounds'),
      'wasm',
    ) as Error;
    expect(e.message).toMatch(
      /heap, at most 4 GB per training worker, ran out of memory.*--micro-batch/,
    );
    const other = new Error('something else');
    expect(explainFailure(other, 'wasm')).toBe(other);
    const native = new Error('memory access out of bounds');
    expect(explainFailure(native, 'tfjs-node')).toBe(native); // only the wasm heap has the 4 GB limit
  });
});

describe('the training engine step', () => {
  it('leaves no tensor behind: tf.memory().numTensors is the same after every step (in-process replica)', async () => {
    const tf = await import('@tensorflow/tfjs');
    const { createEngine } = await import('@maskcon/train');
    const cfg = parseTrainArgs([
      '--preset',
      'tiny',
      '--index',
      index,
      '--K',
      '64',
      '--batch-size',
      '16',
      '--bn-splits',
      '2',
      '--workers',
      '1',
      '--backend',
      'wasm',
      '--runs-db',
      join(work, 'runs-leak.sqlite'),
    ]);
    const engine = await createEngine(cfg, index, 1, () => {});
    try {
      const batch = (step: number) => {
        const indices = Int32Array.from({ length: 16 }, (_, i) => (i * 7 + step * 3) % 200);
        return {
          indices,
          labels: Int32Array.from(indices, (i) => i % 10),
          epoch: 0,
          step,
          lr: 0.01,
        };
      };
      await engine.fill(batch(0));
      await engine.step(batch(1));
      expect(Number.isFinite(await engine.takeLossSum())).toBe(true);
      const counts: number[] = [];
      for (let s = 2; s < 6; s++) {
        await engine.step(batch(s));
        await engine.takeLossSum();
        counts.push(tf.memory().numTensors);
      }
      expect(new Set(counts).size).toBe(1);
    } finally {
      await engine.close();
    }
  });
});
