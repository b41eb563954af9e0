import { describe, expect, it } from 'vitest';
import { Rng } from '@maskcon/random';
import { Normalizer, toNormalizedFloat } from '../src/normalize.js';
import { resizeBilinear } from '../src/resample.js';
import { compose, hflip, horizontalFlip, resize, resizedShape } from '../src/transforms.js';
import { imageFrom, noiseImage, pixel } from './helpers.js';

describe('hflip', () => {
  it('mirrors every row, matching a naive loop, for 1 to 4 channels', () => {
    for (const C of [1, 2, 3, 4]) {
      const img = noiseImage(5, 7, C, C);
      const out = hflip(img);
      const want = imageFrom(5, 7, C, (y, x, c) => pixel(img, y, 6 - x, c));
      expect(out.data).toEqual(want.data);
      expect(hflip(out).data).toEqual(img.data);
    }
  });
});

describe('horizontalFlip', () => {
  it('flips with probability p, drawing exactly one number per call', () => {
    const img = noiseImage(4, 6, 3, 2);
    const flipped = hflip(img);
    const rng = new Rng(1);
    const mirror = new Rng(1);
    const t = horizontalFlip(0.5);
    let flips = 0;
    let wrong = 0;
    const same = (a: Uint8Array, b: Uint8Array) => Buffer.from(a).equals(Buffer.from(b));
    for (let i = 0; i < 4000; i++) {
      const out = t(img, rng);
      const drew = mirror.next() < 0.5;
      if (!same(out.data, drew ? flipped.data : img.data)) wrong++;
      if (drew) flips++;
    }
    expect(wrong).toBe(0);
    expect(Math.abs(flips / 4000 - 0.5)).toBeLessThan(0.04);
    const never = horizontalFlip(0);
    const always = horizontalFlip(1);
    const r = new Rng(3);
    for (let i = 0; i < 50; i++) {
      expect(never(img, r)).toBe(img);
      expect(always(img, r).data).toEqual(flipped.data);
    }
    expect(() => horizontalFlip(1.5)).toThrow(/probability must be in \[0, 1\]/);
  });
});

describe('resize (torchvision Resize(int))', () => {
  it('sets the shorter side to size and the longer to int(size * long / short)', () => {
    expect(resizedShape(32, 48, 16)).toEqual([16, 24]);
    expect(resizedShape(48, 32, 16)).toEqual([24, 16]);
    expect(resizedShape(7, 10, 3)).toEqual([3, 4]); // int(4.2857)
    expect(resizedShape(10, 7, 3)).toEqual([4, 3]);
    expect(resizedShape(375, 500, 224)).toEqual([224, 298]); // int(298.67)
    expect(resizedShape(28, 28, 32)).toEqual([32, 32]);
    const img = noiseImage(30, 45, 3, 6);
    const out = resize(20)(img, new Rng(0));
    expect([out.height, out.width, out.channels]).toEqual([20, 30, 3]);
    expect(out.data).toEqual(resizeBilinear(img, 20, 30).data);
  });

  it('is the identity when the image already has that size', () => {
    const img = noiseImage(28, 28, 1, 6);
    expect(resize(28)(img, new Rng(0))).toBe(img);
    const wide = noiseImage(28, 40, 1, 6);
    expect(resize(28)(wide, new Rng(0))).toBe(wide); // int(28 * 40 / 28) = 40
  });
});

describe('compose', () => {
  it('applies transforms left to right on one random stream', () => {
    const img = noiseImage(6, 8, 1, 4);
    const t = compose(horizontalFlip(1), resize(3));
    expect(t(img, new Rng(0)).data).toEqual(resizeBilinear(hflip(img), 3, 4).data);
    expect(compose()(img, new Rng(0))).toBe(img);
  });
});

describe('toNormalizedFloat', () => {
  const mean = [0.4914, 0.4822, 0.4465];
  const std = [0.247, 0.243, 0.261];

  it('computes (x/255 − mean_c)/std_c in HWC order, bit-identical to torch float32 steps', () => {
    const img = noiseImage(5, 6, 3, 9);
    const out = toNormalizedFloat(img, mean, std);
    expect(out.length).toBe(5 * 6 * 3);
    const f = Math.fround;
    for (let y = 0; y < 5; y++)
      for (let x = 0; x < 6; x++)
        for (let c = 0; c < 3; c++) {
          const v = pixel(img, y, x, c);
          const got = out[(y * 6 + x) * 3 + c];
          expect(got).toBeCloseTo((v / 255 - mean[c]) / std[c], 5);
          expect(got).toBe(f(f(f(v / 255) - f(mean[c])) / f(std[c])));
        }
    // Hand values: 0 → −mean/std, 255 → (1 − mean)/std.
    const ends = imageFrom(1, 2, 3, (_, x) => (x === 0 ? 0 : 255));
    const e = toNormalizedFloat(ends, mean, std);
    expect(e[0]).toBeCloseTo(-0.4914 / 0.247, 6);
    expect(e[5]).toBeCloseTo((1 - 0.4465) / 0.261, 6);
  });

  it('writes into a batch buffer at an offset without touching the rest', () => {
    const img = noiseImage(4, 4, 3, 10);
    const n = 4 * 4 * 3;
    const batch = new Float32Array(3 * n).fill(Number.NaN);
    const ret = toNormalizedFloat(img, mean, std, batch, n);
    expect(ret).toBe(batch);
    expect(Array.from(batch.subarray(n, 2 * n))).toEqual(
      Array.from(toNormalizedFloat(img, mean, std)),
    );
    expect(batch.subarray(0, n).every(Number.isNaN)).toBe(true);
    expect(batch.subarray(2 * n).every(Number.isNaN)).toBe(true);
    expect(() => toNormalizedFloat(img, mean, std, batch, 2 * n + 1)).toThrow(
      /do not fit in an output of length 144/,
    );
  });

  it('with mirror, equals flipping first and then normalising', () => {
    for (const C of [1, 3, 4]) {
      const img = noiseImage(5, 7, C, 12 + C);
      const m = new Array(C).fill(0.3);
      const sd = new Array(C).fill(0.2);
      const norm = new Normalizer(m, sd);
      expect(Array.from(norm.apply(img, undefined, 0, true))).toEqual(
        Array.from(toNormalizedFloat(hflip(img), m, sd)),
      );
    }
  });

  it('broadcasts a single mean/std to a grey image and rejects mismatched channel counts', () => {
    const grey = noiseImage(3, 3, 1, 11);
    const out = toNormalizedFloat(grey, [0.286], [0.353]);
    for (let i = 0; i < 9; i++) expect(out[i]).toBeCloseTo((grey.data[i] / 255 - 0.286) / 0.353, 5);
    expect(() => toNormalizedFloat(grey, mean, std)).toThrow(
      /3 means\/stds but the image has 1 channels/,
    );
    expect(() => new Normalizer([0.5], [0])).toThrow(/non-zero/);
    expect(() => new Normalizer([0.5, 0.5], [0.2])).toThrow(/one mean and one std per channel/);
  });
});
