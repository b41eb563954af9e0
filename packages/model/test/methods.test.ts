import { beforeAll, describe, expect, it } from 'vitest';
import * as tf from '@tensorflow/tfjs';
import {
  coinsLoss,
  contrastiveLogits,
  grafitTargets,
  maskconTargets,
  sameLabelMask,
  sameLabelMaskHost,
  selfconTargets,
  softTargetCrossEntropy,
  METHOD_NAMES,
  METHODS,
  methodLoss,
  methodOf,
  methodTargets,
  type MethodName,
} from '../src/index.js';

beforeAll(async () => {
  await tf.setBackend('cpu');
});

/** Deterministic pseudo-random numbers for test inputs. */
function lcg(seed: number): () => number {
  let s = seed >>> 0;
  return () => {
    s = (Math.imul(s, 1664525) + 1013904223) >>> 0;
    return s / 4294967296;
  };
}

function randomUnitRows(n: number, d: number, rnd: () => number): number[][] {
  const rows: number[][] = [];
  for (let i = 0; i < n; i++) {
    const r = Array.from({ length: d }, () => rnd() * 2 - 1);
    const norm = Math.hypot(...r);
    rows.push(r.map((v) => v / norm));
  }
  return rows;
}

const dot = (a: number[], b: number[]) => a.reduce((s, v, i) => s + v * b[i], 0);

/** MaskCon's target as docs/method.md states it, element by element, literally (softmax, then divide by max). */
function naiveMaskcon(
  k: number[][],
  Q: number[][],
  labels: number[],
  qLabels: number[],
  w: number,
  tau: number,
): number[][] {
  return k.map((ki, i) => {
    const same = qLabels.map((l) => l === labels[i]);
    const s = Q.map((qj) => dot(ki, qj) / tau);
    const p = new Array(Q.length).fill(0);
    const idx = same.flatMap((m, j) => (m ? [j] : []));
    if (idx.length > 0) {
      const mx = Math.max(...idx.map((j) => s[j]));
      let denom = 0;
      for (const j of idx) denom += Math.exp(s[j] - mx);
      for (const j of idx) p[j] = Math.exp(s[j] - mx) / denom;
      const pmax = Math.max(...idx.map((j) => p[j]));
      for (const j of idx) p[j] /= pmax;
    }
    const total = 1 + p.reduce((a, b) => a + b, 0);
    const z = [1 / total, ...p.map((v) => v / total)];
    return z.map((v, j) => w * v + (1 - w) * (j === 0 ? 1 : 0));
  });
}

function naiveGrafit(labels: number[], qLabels: number[], w: number): number[][] {
  return labels.map((l) => {
    const m = qLabels.map((q) => (q === l ? 1 : 0));
    const total = 1 + m.reduce<number>((a, b) => a + b, 0);
    return [1, ...m].map((v, j) => w * (v / total) + (1 - w) * (j === 0 ? 1 : 0));
  });
}

function maxAbsDiff(a: number[][], b: number[][]): number {
  let m = 0;
  a.forEach((r, i) => r.forEach((v, j) => (m = Math.max(m, Math.abs(v - b[i][j])))));
  return m;
}

describe('soft targets', () => {
  it('SelfCon is onehot(0)', () => {
    const y = selfconTargets(3, 4).arraySync();
    expect(y).toEqual([
      [1, 0, 0, 0, 0],
      [1, 0, 0, 0, 0],
      [1, 0, 0, 0, 0],
    ]);
  });

  for (const [w, tau, seed] of [
    [1, 0.1, 1],
    [0.5, 0.05, 2],
    [0.8, 0.5, 3],
    [0.2, 0.01, 4],
  ] as const) {
    it(`MaskCon matches the element-wise definition (w=${w}, τ=${tau})`, () => {
      const rnd = lcg(seed);
      const n = 6,
        K = 16,
        d = 8;
      const k = randomUnitRows(n, d, rnd);
      const Q = randomUnitRows(K, d, rnd);
      const labels = Array.from({ length: n }, () => Math.floor(rnd() * 3));
      labels[n - 1] = 7; // a row with no same-coarse entry in the queue
      const qLabels = Array.from({ length: K }, () => Math.floor(rnd() * 3));
      const expected = naiveMaskcon(k, Q, labels, qLabels, w, tau);
      const got = tf.tidy(() =>
        maskconTargets(
          tf.tensor2d(k),
          tf.tensor2d(Q),
          sameLabelMask(tf.tensor1d(labels, 'int32'), tf.tensor1d(qLabels, 'int32')),
          w,
          tau,
        ).arraySync(),
      );
      expect(maxAbsDiff(got, expected)).toBeLessThan(1e-5);
      // Every row is a distribution, the row with no same-label entry is onehot(0), no NaN.
      for (const row of got) {
        expect(row.every(Number.isFinite)).toBe(true);
        expect(row.reduce((a, b) => a + b, 0)).toBeCloseTo(1, 5);
      }
      expect(got[n - 1][0]).toBeCloseTo(1, 6);
      expect(Math.max(...got[n - 1].slice(1))).toBe(0);
    });
  }

  it('MaskCon gives the most similar same-coarse entry the weight of the positive key (w=1)', () => {
    const rnd = lcg(9);
    const k = randomUnitRows(4, 5, rnd);
    const Q = randomUnitRows(10, 5, rnd);
    const labels = [0, 1, 0, 1];
    const qLabels = [0, 1, 0, 1, 0, 1, 0, 1, 0, 1];
    const y = tf.tidy(() =>
      maskconTargets(
        tf.tensor2d(k),
        tf.tensor2d(Q),
        sameLabelMask(tf.tensor1d(labels, 'int32'), tf.tensor1d(qLabels, 'int32')),
        1,
        0.1,
      ).arraySync(),
    );
    for (const row of y) expect(Math.max(...row.slice(1))).toBeCloseTo(row[0], 6);
  });

  it('Grafit and SupFINE match the element-wise definition', () => {
    const labels = [0, 1, 2, 5];
    const qLabels = [0, 0, 1, 2, 2, 2, 1, 0];
    for (const w of [0.2, 0.8, 1]) {
      const got = tf.tidy(() =>
        grafitTargets(
          sameLabelMask(tf.tensor1d(labels, 'int32'), tf.tensor1d(qLabels, 'int32')),
          w,
        ).arraySync(),
      );
      expect(maxAbsDiff(got, naiveGrafit(labels, qLabels, w))).toBeLessThan(1e-6);
    }
    const sup = tf.tidy(() =>
      methodTargets(
        'supfine',
        tf.zeros([4, 2]),
        { keys: tf.zeros([8, 2]), labels: qLabels },
        labels,
        { w: 0.3, t: 0.1 },
      ).arraySync(),
    );
    expect(maxAbsDiff(sup, naiveGrafit(labels, qLabels, 1))).toBeLessThan(1e-6);
  });

  it('CoIns mixes the classifier cross-entropy and the SelfCon loss by w', () => {
    const logits = [
      [2, -1, 0.5],
      [0, 0, 3],
      [-2, 1, 1],
    ];
    const labels = [0, 2, 1];
    const contrastive = 1.7;
    let ce = 0;
    logits.forEach((l, i) => {
      const lse = Math.log(l.reduce((s, v) => s + Math.exp(v), 0));
      ce += lse - l[labels[i]];
    });
    ce /= logits.length;
    for (const w of [0, 0.2, 1]) {
      const got = tf.tidy(
        () =>
          coinsLoss(
            tf.tensor2d(logits),
            tf.tensor1d(labels, 'int32'),
            tf.scalar(contrastive),
            w,
          ).dataSync()[0],
      );
      expect(got).toBeCloseTo(w * ce + (1 - w) * contrastive, 5);
    }
  });

  it('host mask equals the device mask', () => {
    const labels = [0, 2, 1, 2];
    const qLabels = [2, 0, 0, 1, 2, 3];
    const host = Array.from(sameLabelMaskHost(labels, qLabels));
    const dev = Array.from(
      tf.tidy(() =>
        sameLabelMask(tf.tensor1d(labels, 'int32'), tf.tensor1d(qLabels, 'int32')).dataSync(),
      ),
    );
    expect(host).toEqual(dev);
    expect(host.reduce((a, b) => a + b, 0)).toBe(2 + 2 + 1 + 2);
  });

  it('contrastive loss equals the naive cross-entropy over [q·k, q·Q]/τ0', () => {
    const rnd = lcg(5);
    const n = 4,
      K = 8,
      d = 6,
      t0 = 0.1;
    const q = randomUnitRows(n, d, rnd);
    const k = randomUnitRows(n, d, rnd);
    const Q = randomUnitRows(K, d, rnd);
    const y = naiveGrafit([0, 1, 0, 1], [0, 1, 1, 0, 0, 1, 1, 0], 0.6);
    let expected = 0;
    for (let i = 0; i < n; i++) {
      const l = [dot(q[i], k[i]) / t0, ...Q.map((qj) => dot(q[i], qj) / t0)];
      const mx = Math.max(...l);
      const lse = mx + Math.log(l.reduce((s, v) => s + Math.exp(v - mx), 0));
      expected += -l.reduce((s, v, j) => s + y[i][j] * (v - lse), 0);
    }
    expected /= n;
    const got = tf.tidy(
      () =>
        softTargetCrossEntropy(
          contrastiveLogits(tf.tensor2d(q), tf.tensor2d(k), tf.tensor2d(Q), t0),
          tf.tensor2d(y),
        ).dataSync()[0],
    );
    expect(got).toBeCloseTo(expected, 4);
  });
});

/** −Σ_j y_j·log_softmax(ℓ)_j for one row, literally. */
function naiveCrossEntropy(logits: number[], y: number[]): number {
  const mx = Math.max(...logits);
  const lse = mx + Math.log(logits.reduce((s, v) => s + Math.exp(v - mx), 0));
  return -logits.reduce((s, v, j) => s + y[j] * (v - lse), 0);
}

/**
 * The whole loss of each method, element by element from docs/method.md: the method's target,
 * then the mean cross-entropy of [q·k, q·Q]/τ0 (CoIns: mixed with its classifier loss).
 */
function naiveMethodLoss(
  method: MethodName,
  q: number[][],
  k: number[][],
  Q: number[][],
  labels: number[],
  qLabels: number[],
  classLogits: number[][],
  w: number,
  tau: number,
  t0: number,
): number {
  const n = q.length;
  const onehot = () => Array.from({ length: n }, () => [1, ...Q.map(() => 0)]);
  const y =
    method === 'maskcon'
      ? naiveMaskcon(k, Q, labels, qLabels, w, tau)
      : method === 'grafit'
        ? naiveGrafit(labels, qLabels, w)
        : method === 'supfine'
          ? naiveGrafit(labels, qLabels, 1)
          : onehot();
  let contrastive = 0;
  for (let i = 0; i < n; i++) {
    const l = [dot(q[i], k[i]) / t0, ...Q.map((qj) => dot(q[i], qj) / t0)];
    contrastive += naiveCrossEntropy(l, y[i]);
  }
  contrastive /= n;
  if (method !== 'coins') return contrastive;
  let ce = 0;
  for (let i = 0; i < n; i++)
    ce += naiveCrossEntropy(
      classLogits[i],
      classLogits[i].map((_, c) => (c === labels[i] ? 1 : 0)),
    );
  return w * (ce / n) + (1 - w) * contrastive;
}

describe('methodLoss: the whole loss of every method from tensors', () => {
  it('the registry lists every method once, under its own name', () => {
    // The paper's five are there (a new method adds itself without editing this test).
    expect(METHOD_NAMES).toEqual(
      expect.arrayContaining(['selfcon', 'maskcon', 'grafit', 'coins', 'supfine']),
    );
    expect(new Set(METHOD_NAMES).size).toBe(METHOD_NAMES.length);
    for (const name of METHOD_NAMES) expect(METHODS[name].name).toBe(name);
    expect(METHODS.coins.needsClassifier).toBe(true);
    expect(METHODS.maskcon.needsClassifier).toBe(false);
    expect(METHODS.supfine.labels).toBe('fine');
    expect(METHODS.grafit.labels).toBe('any');
    expect(() => methodOf('simclr')).toThrow(/Unknown method 'simclr'; known: selfcon, maskcon/);
  });

  for (const method of ['selfcon', 'maskcon', 'grafit', 'coins', 'supfine'] as const) {
    for (const [w, tau, seed] of [
      [1, 0.1, 11],
      [0.5, 0.05, 12],
    ] as const) {
      it(`${method} (w=${w}, τ=${tau}) equals the naive loop`, () => {
        const rnd = lcg(seed);
        const n = 5;
        const K = 12;
        const d = 6;
        const C = 4;
        const t0 = 0.1;
        const q = randomUnitRows(n, d, rnd);
        const k = randomUnitRows(n, d, rnd);
        const Q = randomUnitRows(K, d, rnd);
        const labels = Array.from({ length: n }, () => Math.floor(rnd() * 3));
        labels[n - 1] = 3; // no same-label entry in the queue
        const qLabels = Array.from({ length: K }, () => Math.floor(rnd() * 3));
        const classLogits = Array.from({ length: n }, () =>
          Array.from({ length: C }, () => rnd() * 4 - 2),
        );
        const expected = naiveMethodLoss(method, q, k, Q, labels, qLabels, classLogits, w, tau, t0);
        const before = tf.memory().numTensors;
        const got = tf.tidy(
          () =>
            methodLoss(
              method,
              tf.tensor2d(q),
              tf.tensor2d(k),
              { keys: tf.tensor2d(Q), labels: Int32Array.from(qLabels) },
              Int32Array.from(labels),
              { w, t: tau, t0, classLogits: tf.tensor2d(classLogits) },
            ).dataSync()[0],
        );
        expect(tf.memory().numTensors).toBe(before);
        expect(Number.isFinite(got)).toBe(true);
        expect(got).toBeCloseTo(expected, 4);
      });
    }
  }

  it('CoIns without classifier logits fails with a sentence', () => {
    expect(() =>
      tf.tidy(() =>
        methodLoss(
          'coins',
          tf.ones([1, 2]) as tf.Tensor2D,
          tf.ones([1, 2]) as tf.Tensor2D,
          { keys: tf.ones([2, 2]) as tf.Tensor2D, labels: [0, 1] },
          [0],
          { w: 0.5, t: 0.1, t0: 0.1 },
        ),
      ),
    ).toThrow(/CoIns needs classifier logits/);
  });
});
