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
        '--preset', 'tiny', '--index', index, '--K', '64', '--batch-size', '32', '--bn-splits', '2', '--epochs', '2',
        '--train-subset', '0', '--runs-db', join(work, 'runs.sqlite'), '--seed', '11', '--workers', String(workers), '--backend', 'wasm',
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
