import { describe, expect, it } from 'vitest';
import { Rng } from '@maskcon/random';
import { resizeBilinear, resampleRegion } from '../src/resample.js';
import {
  randomResizedCrop,
  resizedCrop,
  roundHalfEven,
  sampleResizedCropParams,
} from '../src/transforms.js';
import { imageFrom, naiveCrop, noiseImage, pixel, rows } from './helpers.js';
import type { ImageU8 } from '@maskcon/datasets';

const SCALE: [number, number] = [0.2, 1];
const RATIO: [number, number] = [3 / 4, 4 / 3];

/**
 * Expected mean area fraction of the accepted crop on a square image. A draw (s, r) fits iff
 * s·r ≤ 1 and s/r ≤ 1, so for s ≥ 3/4 it is accepted with probability −ln s / ln(4/3); the
 * first accepted of the 10 attempts has density ∝ P(accept | s) on [0.2, 1]. Hence the mean is
 * below the 0.6 of the raw uniform draw:
 *   E[s] = (∫_.2^.75 s ds + ∫_.75^1 −s ln s / ln(4/3) ds) / (0.55 + ∫_.75^1 −ln s / ln(4/3) ds).
 */
function expectedMeanAreaSquare(): number {
  const L = Math.log(4 / 3);
  const a = 0.75;
  const numLow = (a * a - 0.04) / 2;
  const F = (s: number) => -((s * s) / 2) * Math.log(s) + (s * s) / 4; // ∫ −s ln s
  const G = (s: number) => -(s * Math.log(s)) + s; // ∫ −ln s
  return (numLow + (F(1) - F(a)) / L) / (a - 0.2 + (G(1) - G(a)) / L);
}

/**
 * Naive PIL BILINEAR reference in floating point: for every output pixel, triangle weights
 * (support scaled by the shrink factor) over ALL input pixels, normalised; horizontal pass
 * rounded to uint8, then vertical.
 */
function naiveBilinear(img: ImageU8, outH: number, outW: number): ImageU8 {
  const weights = (inSize: number, outSize: number) => {
    const scale = inSize / outSize;
    const fs = Math.max(1, scale);
    return Array.from({ length: outSize }, (_, o) => {
      const center = (o + 0.5) * scale;
      const w = Array.from({ length: inSize }, (_, x) =>
        Math.max(0, 1 - Math.abs((x + 0.5 - center) / fs)),
      );
      const sum = w.reduce((a, b) => a + b, 0);
      return w.map((v) => v / sum);
    });
  };
  const round8 = (v: number) => Math.min(255, Math.max(0, Math.floor(v + 0.5)));
  const C = img.channels;
  const wx = outW === img.width ? null : weights(img.width, outW);
  const mid = wx
    ? imageFrom(img.height, outW, C, (y, x, c) =>
        round8(wx[x].reduce((s, w, i) => s + w * pixel(img, y, i, c), 0)),
      )
    : img;
  const wy = outH === img.height ? null : weights(img.height, outH);
  return wy
    ? imageFrom(outH, outW, C, (y, x, c) =>
        round8(wy[y].reduce((s, w, i) => s + w * pixel(mid, i, x, c), 0)),
      )
    : mid;
}

function compareToNaive(img: ImageU8, outH: number, outW: number) {
  const got = resizeBilinear(img, outH, outW);
  const want = naiveBilinear(img, outH, outW);
  expect([got.height, got.width, got.channels]).toEqual([outH, outW, img.channels]);
  let maxDiff = 0;
  let equal = 0;
  for (let i = 0; i < got.data.length; i++) {
    const d = Math.abs(got.data[i] - want.data[i]);
    maxDiff = Math.max(maxDiff, d);
    if (d === 0) equal++;
  }
  // Fixed-point (PIL) vs float weights may differ by one at exact .5 roundings, nowhere more.
  expect(maxDiff).toBeLessThanOrEqual(1);
  expect(equal / got.data.length).toBeGreaterThan(0.97);
}

describe('roundHalfEven', () => {
  it('rounds like Python round()', () => {
    expect([0.5, 1.5, 2.5, -0.5, 2.4999, 2.5001, 3].map(roundHalfEven)).toEqual([
      0, 2, 2, -0, 2, 3, 3,
    ]);
  });
});

describe('sampleResizedCropParams', () => {
  it('over 5000 draws: crops inside the image, area in [0.2, 1], ratio in [3/4, 4/3], mean area as derived', () => {
    const rng = new Rng(2024);
    const H = 1000;
    const W = 1000;
    let areaSum = 0;
    let logRatioSum = 0;
    let fallbacks = 0;
    const n = 5000;
    for (let i = 0; i < n; i++) {
      const b = sampleResizedCropParams(H, W, SCALE, RATIO, rng);
      expect(b.top >= 0 && b.left >= 0 && b.top + b.height <= H && b.left + b.width <= W).toBe(
        true,
      );
      expect(
        Number.isInteger(b.top) &&
          Number.isInteger(b.left) &&
          Number.isInteger(b.height) &&
          Number.isInteger(b.width),
      ).toBe(true);
      if (b.fallback) {
        fallbacks++;
        continue;
      }
      const area = (b.height * b.width) / (H * W);
      // Boxes are rounded to whole pixels: allow the rounding of two sides of ≥ 387 px.
      expect(area).toBeGreaterThanOrEqual(0.2 * (1 - 0.003));
      expect(area).toBeLessThanOrEqual(1);
      const ratio = b.width / b.height;
      expect(ratio).toBeGreaterThanOrEqual((3 / 4) * (1 - 0.003));
      expect(ratio).toBeLessThanOrEqual((4 / 3) * (1 + 0.003));
      areaSum += area;
      logRatioSum += Math.log(ratio);
    }
    expect(fallbacks).toBeLessThan(3); // probability 0.331^10 per draw
    const meanArea = areaSum / (n - fallbacks);
    expect(expectedMeanAreaSquare()).toBeCloseTo(0.5384, 3);
    // Standard deviation of the area fraction ≈ 0.21, so the standard error is ≈ 0.003.
    expect(Math.abs(meanArea - expectedMeanAreaSquare())).toBeLessThan(0.012);
    expect(Math.abs(logRatioSum / (n - fallbacks))).toBeLessThan(0.01); // symmetric in log ratio
  });

  it('places crops uniformly: on a 28×28 image the crop centres average to the image centre', () => {
    const rng = new Rng(3);
    let cy = 0;
    let cx = 0;
    const n = 5000;
    for (let i = 0; i < n; i++) {
      const b = sampleResizedCropParams(28, 28, SCALE, RATIO, rng);
      expect(b.top >= 0 && b.left >= 0 && b.top + b.height <= 28 && b.left + b.width <= 28).toBe(
        true,
      );
      expect(b.height * b.width).toBeGreaterThanOrEqual(Math.floor(0.2 * 784 * 0.85));
      cy += b.top + b.height / 2;
      cx += b.left + b.width / 2;
    }
    expect(cy / n).toBeCloseTo(14, 0);
    expect(cx / n).toBeCloseTo(14, 0);
  });

  it('is deterministic for a seed and differs for another seed', () => {
    const seq = (seed: number) => {
      const rng = new Rng(seed);
      return Array.from({ length: 50 }, () => sampleResizedCropParams(32, 48, SCALE, RATIO, rng));
    };
    expect(seq(1)).toEqual(seq(1));
    expect(seq(1)).not.toEqual(seq(2));
  });

  it('falls back to a central crop clamped to the ratio range when no draw fits', () => {
    const rng = new Rng(4);
    // 10×100 with area ≥ 90%: every draw is ~30 px tall, never fits in 10 rows.
    expect(sampleResizedCropParams(10, 100, [0.9, 1], RATIO, rng)).toEqual({
      top: 0,
      left: 43,
      height: 10,
      width: 13,
      fallback: true, // w = round(10 · 4/3), left = (100 − 13) // 2
    });
    expect(sampleResizedCropParams(100, 10, [0.9, 1], RATIO, rng)).toEqual({
      top: 43,
      left: 0,
      height: 13,
      width: 10,
      fallback: true, // h = round(10 / (3/4))
    });
    expect(sampleResizedCropParams(10, 10, [1, 1], [2, 3], rng)).toMatchObject({
      top: 2,
      left: 0,
      height: 5,
      width: 10,
    }); // h = round(10 / 2), top = (10 − 5) // 2
  });

  it('rejects bad ranges with a sentence', () => {
    expect(() => sampleResizedCropParams(10, 10, [0.5, 0.2], RATIO, new Rng(1))).toThrow(
      /scale must be/,
    );
    expect(() => sampleResizedCropParams(10, 10, SCALE, [0, 1], new Rng(1))).toThrow(
      /ratio must be/,
    );
  });
});

describe('resizedCrop / PIL bilinear', () => {
  it('is the exact identity when the crop is the whole image and the size is unchanged', () => {
    for (const C of [1, 3]) {
      const img = noiseImage(9, 9, C, 8);
      const out = resizedCrop(img, 0, 0, 9, 9, 9);
      expect(out.data).toEqual(img.data);
      expect(out.data).not.toBe(img.data);
    }
  });

  it('enlarges 2×2 → 4×4 to the values PIL computes by hand', () => {
    // Each axis: outputs at centres 0.25, 0.75, 1.25, 1.75 → weights [1], [¾, ¼], [¼, ¾], [1]
    // (taps beyond the edge are dropped and the rest renormalised); 22-bit fixed point,
    // +0.5 and floor, horizontal pass rounded to uint8 before the vertical pass.
    // Rows:  [0,100] → [0, 25, 75, 100];  [200,255] → [200, 214, 241, 255]
    // Column 1 (25, 214): ¾·25+¼·214+½ = 72.75 → 72;  ¼·25+¾·214+½ = 167.25 → 167
    const img = imageFrom(
      2,
      2,
      1,
      (y, x) =>
        [
          [0, 100],
          [200, 255],
        ][y][x],
    );
    const out = resizeBilinear(img, 4, 4);
    expect(rows(out)).toEqual([
      [0, 25, 75, 100],
      [50, 72, 117, 139],
      [150, 167, 200, 216],
      [200, 214, 241, 255],
    ]);
    // RGB channels are filtered independently.
    const rgb = imageFrom(2, 2, 3, (y, x, c) =>
      c === 1 ? 255 - pixel(img, y, x) : c === 2 ? 7 : pixel(img, y, x),
    );
    const outRgb = resizeBilinear(rgb, 4, 4);
    for (let y = 0; y < 4; y++)
      for (let x = 0; x < 4; x++) {
        expect(pixel(outRgb, y, x, 0)).toBe(pixel(out, y, x));
        expect(pixel(outRgb, y, x, 2)).toBe(7);
      }
    expect(pixel(outRgb, 1, 1, 1)).toBe(Math.floor(0.75 * 230 + 0.25 * 41 + 0.5)); // rows [255,230,180,155], [55,41,14,0]
  });

  it('keeps a constant image constant when shrinking by any factor', () => {
    for (const v of [0, 1, 128, 254, 255]) {
      const img = imageFrom(37, 23, 3, () => v);
      for (const [h, w] of [
        [10, 10],
        [5, 17],
        [36, 22],
        [1, 1],
        [13, 23],
      ]) {
        const out = resizeBilinear(img, h, w);
        expect(out.data.every((p) => p === v)).toBe(true);
      }
    }
  });

  it('matches a naive triangle filter on a gradient and on noise (shrink, enlarge and mixed)', () => {
    const gradient = imageFrom(40, 30, 1, (y, x) => Math.round((255 * (x + 2 * y)) / (29 + 78)));
    compareToNaive(gradient, 13, 11);
    compareToNaive(gradient, 7, 30);
    compareToNaive(gradient, 40, 9);
    const noise = noiseImage(23, 31, 3, 5);
    compareToNaive(noise, 10, 12);
    compareToNaive(noise, 48, 17);
    compareToNaive(noise, 32, 32);
    // An exact halving of a ramp averages neighbours: triangle of support 2 on centres 1, 3, …
    const ramp = imageFrom(1, 8, 1, (_, x) => x * 30);
    const half = resizeBilinear(ramp, 1, 4);
    expect(rows(half)[0]).toEqual(rows(naiveBilinear(ramp, 1, 4))[0]);
  });

  it('reads the crop in place exactly as crop-then-resize would', () => {
    const img = noiseImage(30, 40, 3, 12);
    for (const [top, left, h, w, size] of [
      [3, 5, 20, 17, 28],
      [0, 0, 30, 40, 16],
      [10, 22, 6, 18, 32],
      [29, 39, 1, 1, 4],
    ]) {
      const direct = resizedCrop(img, top, left, h, w, size);
      const twoStep = resizeBilinear(naiveCrop(img, top, left, h, w), size, size);
      expect(direct.data).toEqual(twoStep.data);
    }
    // A pass with no change of size copies the crop rows/columns exactly.
    const sameWidth = resampleRegion(img, 2, 4, 10, 16, 20, 16);
    expect(sameWidth.data).toEqual(resizeBilinear(naiveCrop(img, 2, 4, 10, 16), 20, 16).data);
  });

  it('rejects crop boxes outside the image with a sentence', () => {
    const img = noiseImage(8, 8, 1);
    expect(() => resizedCrop(img, 4, 0, 5, 8, 8)).toThrow(/does not fit inside the 8×8 image/);
    expect(() => resizedCrop(img, 0, 0, 8, 8, 0)).toThrow(/positive integer/);
  });
});

describe('randomResizedCrop', () => {
  it('equals sampling the box and applying resizedCrop with the same stream', () => {
    const img = noiseImage(32, 32, 3, 3);
    const t = randomResizedCrop(24);
    const a = new Rng(77);
    const b = new Rng(77);
    for (let i = 0; i < 20; i++) {
      const got = t(img, a);
      const box = sampleResizedCropParams(32, 32, SCALE, RATIO, b);
      expect(got.data).toEqual(resizedCrop(img, box.top, box.left, box.height, box.width, 24).data);
      expect([got.height, got.width, got.channels]).toEqual([24, 24, 3]);
    }
  });
});
