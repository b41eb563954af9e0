import { expect } from 'vitest';
/** The shape/stride/padding grids every conv and matmul kernel (wasm and native) is checked on. */

export type Pad = 'same' | 'valid' | number;
export interface ConvCase {
  b: number;
  h: number;
  w: number;
  ci: number;
  co: number;
  k: number;
  s: 1 | 2;
  pad: Pad;
}

/** Deterministic grid: batch 1–4, channels 1–16, sizes 5–12 (odd and even), k 1/3 (+7), s 1/2, same/valid/numeric. */
export function convCases(): ConvCase[] {
  const cases: ConvCase[] = [];
  const sizes = [5, 6, 7, 8, 9, 10, 11, 12];
  const chans = [1, 3, 4, 8, 16];
  let i = 0;
  for (const k of [1, 3]) {
    for (const s of [1, 2] as const) {
      for (const pad of ['same', 'valid'] as const) {
        for (let r = 0; r < 3; r++, i++) {
          const h = sizes[(i * 3 + r) % sizes.length];
          const w = sizes[(i * 5 + 2 * r + 1) % sizes.length];
          cases.push({
            b: 1 + (i % 4),
            h,
            w,
            ci: chans[i % chans.length],
            co: chans[(i * 2 + 1) % chans.length],
            k,
            s,
            pad,
          });
        }
      }
    }
  }
  // Extra coverage: 7×7 stems, numeric padding, asymmetric 'same' on even sizes.
  cases.push({ b: 2, h: 12, w: 12, ci: 3, co: 8, k: 7, s: 2, pad: 'same' });
  cases.push({ b: 1, h: 11, w: 9, ci: 3, co: 4, k: 7, s: 2, pad: 'valid' });
  cases.push({ b: 2, h: 9, w: 9, ci: 4, co: 5, k: 3, s: 2, pad: 1 });
  cases.push({ b: 3, h: 8, w: 7, ci: 2, co: 6, k: 3, s: 1, pad: 2 });
  cases.push({ b: 4, h: 12, w: 12, ci: 16, co: 16, k: 3, s: 2, pad: 'same' });
  cases.push({ b: 2, h: 10, w: 10, ci: 16, co: 8, k: 1, s: 2, pad: 'same' });
  return cases;
}

export const name = (c: ConvCase): string =>
  `b${c.b} ${c.h}x${c.w} ${c.ci}->${c.co} k${c.k} s${c.s} pad=${c.pad}`;

export interface MatMulCase {
  a: number[];
  b: number[];
  tA: boolean;
  tB: boolean;
}

export function matMulCases(): MatMulCase[] {
  const cases: MatMulCase[] = [];
  const dims = [1, 3, 7, 16, 33];
  let i = 0;
  for (const tA of [false, true]) {
    for (const tB of [false, true]) {
      for (let r = 0; r < 5; r++, i++) {
        const m = dims[(i * 3 + r) % dims.length];
        const k = dims[(i + 2 * r + 1) % dims.length];
        const n = dims[(i * 7 + r + 2) % dims.length];
        cases.push({ a: tA ? [k, m] : [m, k], b: tB ? [n, k] : [k, n], tA, tB });
      }
    }
  }
  // shapes of the MaskCon step (queue logits and their gradients, projector and its gradients)
  cases.push({ a: [32, 128], b: [1024, 128], tA: false, tB: true });
  cases.push({ a: [32, 1024], b: [32, 128], tA: true, tB: false });
  cases.push({ a: [32, 64], b: [32, 512], tA: true, tB: false });
  cases.push({ a: [32, 512], b: [64, 512], tA: false, tB: true });
  // rank 3 with one matrix (our path) and batched (tfjs's original kernel)
  cases.push({ a: [1, 5, 9], b: [1, 6, 9], tA: false, tB: true });
  cases.push({ a: [3, 9, 5], b: [3, 9, 6], tA: true, tB: false });
  cases.push({ a: [2, 4, 5], b: [1, 6, 5], tA: false, tB: true });
  return cases;
}

/** Largest |a − b| (Infinity when a NaN appears); the lengths must agree. */
export function maxAbsDiff(a: ArrayLike<number>, b: ArrayLike<number>): number {
  expect(a.length).toBe(b.length);
  let m = 0;
  for (let i = 0; i < a.length; i++) {
    const d = Math.abs(a[i] - b[i]);
    if (!(d <= m)) m = Number.isNaN(d) ? Infinity : d;
  }
  return m;
}

export function maxAbs(a: ArrayLike<number>): number {
  let m = 0;
  for (let i = 0; i < a.length; i++) m = Math.max(m, Math.abs(a[i]));
  return m;
}
