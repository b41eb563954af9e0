import { describe, expect, it } from 'vitest';
import {
  CIFAR10_POLICY,
  colorJitterRanges,
  makePipeline,
  MAGNITUDES,
  randomApply,
  randomGrayscale,
  randomPerspective,
  Rng,
  sampleColorJitterParams,
  samplePerspectiveParams,
  samplePolicy,
  SIGNED_OPS,
  toNormalizedFloat,
  type Transform,
} from '../src/index.js';
import { noiseImage } from './helpers.js';

const TRIALS = 20000;

function frequency(
  t: Transform,
  trials: number,
  seed: number,
  changed: (out: ReturnType<Transform>, img: ReturnType<Transform>) => boolean,
): number {
  const img = noiseImage(8, 8, 3, 3);
  const rng = new Rng(seed);
  let hits = 0;
  for (let i = 0; i < trials; i++) if (changed(t(img, rng), img)) hits++;
  return hits / trials;
}

describe('parameter distributions of the random operations', () => {
  it('RandomPerspective: corners move inwards by uniform integers up to ⌊d·⌊side/2⌋⌋, as torchvision draws them', () => {
    const rng = new Rng(1);
    const tl = new Map<number, number>();
    let trXmin = Infinity;
    let brYmin = Infinity;
    let sumTlY = 0;
    for (let i = 0; i < TRIALS; i++) {
      const { startpoints, endpoints } = samplePerspectiveParams(224, 160, 0.5, rng);
      expect(startpoints).toEqual([
        [0, 0],
        [223, 0],
        [223, 159],
        [0, 159],
      ]);
      tl.set(endpoints[0][0], (tl.get(endpoints[0][0]) ?? 0) + 1);
      trXmin = Math.min(trXmin, endpoints[1][0]);
      brYmin = Math.min(brYmin, endpoints[2][1]);
      sumTlY += endpoints[0][1];
      expect(endpoints[1][0]).toBeLessThanOrEqual(223);
      expect(endpoints[3][1]).toBeLessThanOrEqual(159);
    }
    expect([...tl.keys()].sort((a, b) => a - b)).toEqual(Array.from({ length: 57 }, (_, k) => k)); // 0..56
    for (const count of tl.values()) expect(Math.abs(count / TRIALS - 1 / 57)).toBeLessThan(0.006);
    expect(trXmin).toBe(224 - 56 - 1);
    expect(brYmin).toBe(160 - 40 - 1);
    expect(sumTlY / TRIALS).toBeCloseTo(20, 0); // uniform on 0..40
  });

  it('RandomPerspective(0.5, p = 0.5), RandomGrayscale(0.2) and RandomApply(p = 0.8) fire at their rates', () => {
    const differs = (a: { data: Uint8Array }, b: { data: Uint8Array }) =>
      a !== b && a.data.some((v, i) => v !== b.data[i]);
    expect(frequency(randomPerspective(0.5, 0.5), 4000, 2, differs)).toBeCloseTo(0.5, 1);
    const grey = frequency(
      randomGrayscale(0.2),
      TRIALS,
      3,
      (out) =>
        out.data[0] === out.data[1] && out.data[1] === out.data[2] && out.data[3] === out.data[4],
    );
    expect(Math.abs(grey - 0.2)).toBeLessThan(0.015);
    const mark: Transform = (img) => ({ ...img, data: new Uint8Array(img.data.length) });
    expect(
      Math.abs(frequency(randomApply(mark, 0.8), TRIALS, 4, (out, img) => out !== img) - 0.8),
    ).toBeLessThan(0.015);
  });

  it('ColorJitter(0.4, 0.4, 0.4, 0.1): uniform factors in [0.6, 1.4], hue in [−0.1, 0.1], all 24 orders equally likely', () => {
    const ranges = colorJitterRanges(0.4, 0.4, 0.4, 0.1);
    expect(ranges).toEqual({
      brightness: [0.6, 1.4],
      contrast: [0.6, 1.4],
      saturation: [0.6, 1.4],
      hue: [-0.1, 0.1],
    });
    const rng = new Rng(5);
    const orders = new Map<string, number>();
    const sums = { brightness: 0, contrast: 0, saturation: 0, hue: 0 };
    let below = 0;
    for (let i = 0; i < TRIALS; i++) {
      const p = sampleColorJitterParams(ranges, rng);
      orders.set(p.order.join(''), (orders.get(p.order.join('')) ?? 0) + 1);
      for (const k of ['brightness', 'contrast', 'saturation'] as const) {
        expect(p[k]).toBeGreaterThanOrEqual(0.6);
        expect(p[k]).toBeLessThan(1.4);
        sums[k] += p[k];
      }
      expect(Math.abs(p.hue)).toBeLessThanOrEqual(0.1);
      sums.hue += p.hue;
      if (p.brightness < 0.8) below++;
    }
    expect(orders.size).toBe(24);
    for (const c of orders.values()) expect(Math.abs(c / TRIALS - 1 / 24)).toBeLessThan(0.006);
    expect(sums.brightness / TRIALS).toBeCloseTo(1, 2);
    expect(sums.saturation / TRIALS).toBeCloseTo(1, 2);
    expect(sums.hue / TRIALS).toBeCloseTo(0, 2);
    expect(below / TRIALS).toBeCloseTo(0.25, 1.5);
  });

  it('CIFAR10Policy: uniform over 25 sub-policies, each step with its probability, fair signs', () => {
    expect(CIFAR10_POLICY.length).toBe(25);
    expect(MAGNITUDES.posterize).toEqual([8, 8, 7, 7, 6, 6, 5, 5, 4, 4]);
    expect(MAGNITUDES.solarize[2]).toBeCloseTo(256 - (2 * 256) / 9, 12);
    expect(MAGNITUDES.translateX[9]).toBe(150 / 331);
    expect(MAGNITUDES.rotate[2]).toBeCloseTo(20 / 3, 12);
    const rng = new Rng(6);
    const counts = new Array<number>(25).fill(0);
    const applied = CIFAR10_POLICY.map(() => [0, 0]);
    let signed = 0;
    let negative = 0;
    const n = 50000;
    for (let i = 0; i < n; i++) {
      const d = samplePolicy(rng);
      counts[d.policy]++;
      for (let s = 0; s < 2; s++) {
        if (d.applied[s]) applied[d.policy][s]++;
        if (d.applied[s] && SIGNED_OPS.has(CIFAR10_POLICY[d.policy][s].op)) {
          signed++;
          if (d.signs[s] === -1) negative++;
        }
      }
    }
    for (const c of counts) expect(Math.abs(c / n - 1 / 25)).toBeLessThan(0.005);
    CIFAR10_POLICY.forEach((steps, k) =>
      steps.forEach((st, s) =>
        expect(Math.abs(applied[k][s] / counts[k] - st.p)).toBeLessThan(0.05),
      ),
    );
    expect(negative / signed).toBeCloseTo(0.5, 1);
  });
});

describe('pipeline families', () => {
  it('the SOP and Cars196 families are reproducible from a seed', () => {
    const big = noiseImage(64, 80, 3, 9);
    const imagenet = { mean: [0.485, 0.456, 0.406], std: [0.229, 0.224, 0.225] };
    for (const family of ['cars196', 'sop'] as const) {
      for (const kind of ['strong', 'weak'] as const) {
        const p = makePipeline(kind, { size: 48, ...imagenet, family });
        const a = p(big, new Rng(3));
        expect(a.length).toBe(48 * 48 * 3);
        expect(Array.from(p(big, new Rng(3)))).toEqual(Array.from(a));
        expect(Array.from(p(big, new Rng(4)))).not.toEqual(Array.from(a));
        // The uint8 transform and the fused run agree (ImageNet normalisation).
        expect(Array.from(a)).toEqual(
          Array.from(
            toNormalizedFloat(
              p.transform(big, new Rng(3)),
              [0.485, 0.456, 0.406],
              [0.229, 0.224, 0.225],
            ),
          ),
        );
      }
    }
  });
});
