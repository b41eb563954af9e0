import { describe, expect, it } from 'vitest';
import { Rng } from '@maskcon/random';
import { toNormalizedFloat } from '../src/normalize.js';
import { augmentBatch, makePipeline } from '../src/pipeline.js';
import { cifar10Policy } from '../src/autoaugment.js';
import { hflip, resizedCrop, sampleResizedCropParams } from '../src/transforms.js';
import { resizeBilinear } from '../src/resample.js';
import { noiseImage } from './helpers.js';

const mean = [0.5071, 0.4865, 0.4409];
const std = [0.2673, 0.2564, 0.2762];

describe('makePipeline', () => {
  it('weak = RandomResizedCrop(size, (0.2, 1)) → flip → normalise, in that draw order', () => {
    const img = noiseImage(32, 32, 3, 21);
    const weak = makePipeline('weak', { size: 32, mean, std });
    expect(weak.kind).toBe('weak');
    expect(weak.size).toBe(32);
    const a = new Rng(100);
    const b = new Rng(100);
    for (let i = 0; i < 10; i++) {
      const got = weak(img, a);
      const box = sampleResizedCropParams(32, 32, [0.2, 1], [3 / 4, 4 / 3], b);
      let want = resizedCrop(img, box.top, box.left, box.height, box.width, 32);
      if (b.next() < 0.5) want = hflip(want);
      expect(Array.from(got)).toEqual(Array.from(toNormalizedFloat(want, mean, std)));
    }
  });

  it('the fused fast path equals normalising the composed uint8 transform', () => {
    for (const kind of ['weak', 'strong', 'test'] as const) {
      for (const C of [1, 3]) {
        const img = noiseImage(30, 30, C, 25 + C);
        const m = new Array(C).fill(0.45);
        const sd = new Array(C).fill(0.22);
        const p = makePipeline(kind, { size: 28, mean: m, std: sd });
        const a = new Rng(13);
        const b = new Rng(13);
        for (let i = 0; i < 20; i++) {
          expect(Array.from(p(img, a))).toEqual(
            Array.from(toNormalizedFloat(p.transform(img, b), m, sd)),
          );
        }
      }
    }
  });

  it('strong = weak draws followed by CIFAR10Policy for small images', () => {
    const img = noiseImage(28, 28, 1, 22);
    const opts = { size: 28, mean: [0.286], std: [0.353] };
    const strong = makePipeline('strong', opts);
    const weak = makePipeline('weak', opts);
    let differ = 0;
    for (let s = 0; s < 40; s++) {
      const a = new Rng(s);
      const b = new Rng(s);
      const viaStrong = strong.transform(img, a);
      const viaWeak = cifar10Policy(128)(weak.transform(img, b), b);
      expect(Array.from(viaStrong.data)).toEqual(Array.from(viaWeak.data));
      if (Array.from(strong(img, new Rng(s))).some((v, i) => v !== weak(img, new Rng(s))[i]))
        differ++;
    }
    expect(differ).toBeGreaterThan(10); // the policy changes most images
  });

  it('test = Resize(size) → normalise, deterministic', () => {
    const img = noiseImage(40, 40, 3, 23);
    const test = makePipeline('test', { size: 32, mean, std });
    const got = test(img, new Rng(1));
    expect(Array.from(got)).toEqual(
      Array.from(toNormalizedFloat(resizeBilinear(img, 32, 32), mean, std)),
    );
    expect(Array.from(test(img, new Rng(2)))).toEqual(Array.from(got));
  });

  it('gives the same output for the same seed and a different one for another seed', () => {
    const img = noiseImage(32, 32, 3, 24);
    const weak = makePipeline('weak', { size: 32, mean, std });
    expect(Array.from(weak(img, new Rng(9)))).toEqual(Array.from(weak(img, new Rng(9))));
    expect(Array.from(weak(img, new Rng(9)))).not.toEqual(Array.from(weak(img, new Rng(10))));
  });

  it('rejects unknown kinds; the test pipeline makes every image size×size', () => {
    expect(() => makePipeline('medium' as 'weak', { size: 8, mean, std })).toThrow(
      /Unknown pipeline kind 'medium'/,
    );
    const test = makePipeline('test', { size: 8, mean, std });
    const wide = noiseImage(8, 12, 3, 1);
    expect(test(wide, new Rng(0)).length).toBe(8 * 8 * 3);
    expect(Array.from(test(wide, new Rng(0)))).toEqual(
      Array.from(toNormalizedFloat(resizeBilinear(wide, 8, 8), mean, std)),
    );
  });
});

describe('augmentBatch', () => {
  it('equals applying the pipeline to image i with rng.fork(i), into NHWC slots', () => {
    const images = [0, 1, 2, 3, 4].map((s) => noiseImage(32, 32, 3, 30 + s));
    const weak = makePipeline('weak', { size: 24, mean, std });
    const batch = augmentBatch(images, weak, new Rng(8));
    expect(batch.length).toBe(5 * 24 * 24 * 3);
    const parent = new Rng(8);
    const forks = images.map((_, i) => parent.fork(i));
    const per = 24 * 24 * 3;
    images.forEach((img, i) => {
      expect(Array.from(batch.subarray(i * per, (i + 1) * per))).toEqual(
        Array.from(weak(img, forks[i])),
      );
    });
    // Deterministic, and images do not share a random stream.
    expect(Array.from(augmentBatch(images, weak, new Rng(8)))).toEqual(Array.from(batch));
    const same = [images[0], images[0]];
    const two = augmentBatch(same, weak, new Rng(8));
    expect(Array.from(two.subarray(0, per))).not.toEqual(Array.from(two.subarray(per)));
  });

  it('advances the caller rng the same way for any batch content', () => {
    const weak = makePipeline('weak', { size: 8, mean: [0.5], std: [0.5] });
    const r1 = new Rng(3);
    const r2 = new Rng(3);
    augmentBatch([noiseImage(10, 10, 1, 1), noiseImage(10, 10, 1, 2)], weak, r1);
    augmentBatch([noiseImage(30, 30, 1, 3), noiseImage(12, 12, 1, 4)], weak, r2);
    expect(r1.nextU32()).toBe(r2.nextU32());
  });

  it('rejects mixed channel counts with a sentence', () => {
    const weak = makePipeline('weak', { size: 8, mean: [0.5], std: [0.5] });
    expect(() =>
      augmentBatch([noiseImage(8, 8, 1), noiseImage(8, 8, 3)], weak, new Rng(0)),
    ).toThrow(/image 1 has 3 channels but image 0 has 1/);
  });
});
