import { describe, expect, it } from 'vitest';
import { Rng } from '../src/index.js';

function draws(seed: number, n: number): number[] {
  const r = new Rng(seed);
  return Array.from({ length: n }, () => r.nextU32());
}

describe('Rng', () => {
  it('repeats its stream for the same seed and changes it for another seed', () => {
    expect(draws(42, 1000)).toEqual(draws(42, 1000));
    const a = draws(42, 1000);
    const b = draws(43, 1000);
    const same = a.filter((v, i) => v === b[i]).length;
    expect(same).toBeLessThan(3);
  });

  it('rejects a non-finite seed with a sentence', () => {
    expect(() => new Rng(Number.NaN)).toThrow(/finite number/);
  });

  it('next() is uniform on [0, 1): chi-square over 20 buckets and the first two moments', () => {
    const r = new Rng(7);
    const n = 200_000;
    const buckets = new Array(20).fill(0);
    let sum = 0;
    let sumSq = 0;
    let outside = 0;
    for (let i = 0; i < n; i++) {
      const u = r.next();
      if (!(u >= 0 && u < 1)) outside++;
      buckets[Math.floor(u * 20)]++;
      sum += u;
      sumSq += u * u;
    }
    expect(outside).toBe(0);
    const expected = n / 20;
    const chi2 = buckets.reduce((s, c) => s + (c - expected) ** 2 / expected, 0);
    expect(chi2).toBeLessThan(43.8); // 99.9% quantile of chi-square with 19 degrees of freedom
    expect(sum / n).toBeCloseTo(0.5, 2);
    expect(sumSq / n - (sum / n) ** 2).toBeCloseTo(1 / 12, 3);
  });

  it('uniform(lo, hi) stays in [lo, hi) and int(n) hits every value in [0, n) about equally', () => {
    const r = new Rng(9);
    let outside = 0;
    for (let i = 0; i < 10_000; i++) {
      const u = r.uniform(-3, 5);
      if (!(u >= -3 && u < 5)) outside++;
    }
    expect(outside).toBe(0);
    const counts = new Array(7).fill(0);
    for (let i = 0; i < 70_000; i++) counts[r.int(7)]++;
    for (const c of counts) expect(Math.abs(c - 10_000)).toBeLessThan(500); // > 5 sigma
    expect(() => r.int(0)).toThrow(/n > 0/);
  });

  it('permutation(n) contains every index once and all 24 orders of 4 appear equally often', () => {
    const r = new Rng(11);
    for (const n of [0, 1, 2, 17, 1000]) {
      const p = r.permutation(n);
      expect(p.length).toBe(n);
      expect(Array.from(p).sort((a, b) => a - b)).toEqual(Array.from({ length: n }, (_, i) => i));
    }
    const counts = new Map<string, number>();
    const trials = 48_000;
    for (let i = 0; i < trials; i++) {
      const key = Array.from(r.permutation(4)).join('');
      counts.set(key, (counts.get(key) ?? 0) + 1);
    }
    expect(counts.size).toBe(24);
    const expected = trials / 24;
    let chi2 = 0;
    for (const c of counts.values()) chi2 += (c - expected) ** 2 / expected;
    expect(chi2).toBeLessThan(49.7); // 99.9% quantile, 23 degrees of freedom
  });

  it('fork(label) is deterministic and gives different streams for different labels', () => {
    const a = new Rng(5);
    const b = new Rng(5);
    const fa = a.fork(0);
    const fb = b.fork(0);
    expect(Array.from({ length: 10 }, () => fa.nextU32())).toEqual(
      Array.from({ length: 10 }, () => fb.nextU32()),
    );
    const g0 = new Rng(5).fork(0);
    const g1 = new Rng(5).fork(1);
    expect(g0.nextU32()).not.toBe(g1.nextU32());
  });
});
