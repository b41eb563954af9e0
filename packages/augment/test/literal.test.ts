import { describe, expect, it } from 'vitest';
import { gaussianBlur } from '../src/blur.js';
import { resampleRegion } from '../src/resample.js';
import { Rng } from '@maskcon/random';
import { literalGaussianBlur, literalResizedCrop } from './literal.js';
import { noiseImage } from './helpers.js';

/*
 * The optimised resampling and blur (trimmed coefficient tables, unrolled and word-at-a-time
 * passes) against literal transcriptions of Pillow's C code: byte for byte, on shapes that
 * reach every fast path and fallback (RGB rows whose length is or is not a multiple of 4,
 * grey and 4-channel images, lines shorter than the blur window, shrinking and enlarging).
 */

function equalBytes(a: Uint8Array, b: Uint8Array, what: string): void {
  expect(a.length, what).toBe(b.length);
  let first = -1;
  for (let i = 0; i < a.length && first < 0; i++) if (a[i] !== b[i]) first = i;
  expect(first, `${what}: first differing value`).toBe(-1);
}

describe('optimised Pillow kernels equal their literal transcriptions', () => {
  it('resampleRegion (crop + BILINEAR resize) on 300 random crops and sizes', () => {
    const rng = new Rng(11);
    for (let k = 0; k < 300; k++) {
      const C = [1, 3, 3, 4][k % 4];
      const big = k % 3 === 0;
      const h = 1 + rng.int(big ? 120 : 30);
      const w = 1 + rng.int(big ? 120 : 30);
      const img = noiseImage(h, w, C, k);
      if (k % 5 === 0) img.data.fill(255, 0, img.data.length >> 1);
      const top = rng.int(h);
      const left = rng.int(w);
      const ch = 1 + rng.int(h - top);
      const cw = 1 + rng.int(w - left);
      const oh = k % 7 === 0 ? ch : 1 + rng.int(big ? 130 : 40);
      const ow = k % 11 === 0 ? cw : 1 + rng.int(big ? 130 : 40);
      const what = `${h}×${w}×${C} crop (${top}, ${left}, ${ch}×${cw}) → ${oh}×${ow}`;
      equalBytes(
        resampleRegion(img, top, left, ch, cw, oh, ow).data,
        literalResizedCrop(img, top, left, ch, cw, oh, ow).data,
        what,
      );
    }
  });

  it('resampleRegion reads unaligned and offset buffers (subarray views) the same way', () => {
    for (const offset of [0, 1, 2, 3, 4]) {
      for (const [h, w, C, oh, ow] of [
        [40, 32, 3, 64, 32],
        [40, 32, 4, 50, 32],
        [37, 24, 1, 20, 16],
        [30, 30, 3, 44, 60],
      ]) {
        const img = noiseImage(h, w, C, offset + h);
        const backing = new Uint8Array(img.data.length + 8);
        backing.set(img.data, offset);
        const view = { ...img, data: backing.subarray(offset, offset + img.data.length) };
        const what = `${h}×${w}×${C} at byte offset ${offset} → ${oh}×${ow}`;
        equalBytes(
          resampleRegion(view, 2, 0, h - 4, w, oh, ow).data,
          literalResizedCrop(img, 2, 0, h - 4, w, oh, ow).data,
          what,
        );
      }
    }
  });

  it('gaussianBlur on all paths (σ 0.1 … 3.5, widths with and without word-aligned RGB rows)', () => {
    const shapes = [
      [24, 32],
      [9, 20],
      [5, 8],
      [4, 4],
      [7, 13],
      [3, 20],
      [20, 3],
      [1, 8],
      [2, 2],
      [33, 17],
    ];
    let k = 0;
    for (const [h, w] of shapes) {
      for (const C of [1, 3, 4]) {
        for (const sigma of [0.1, 0.5, 1.2, 2, 3.5]) {
          const img = noiseImage(h, w, C, ++k);
          if (k % 4 === 0) img.data.fill(255, 0, img.data.length >> 1);
          equalBytes(
            gaussianBlur(img, sigma).data,
            literalGaussianBlur(img, sigma).data,
            `${h}×${w}×${C} σ=${sigma}`,
          );
        }
      }
    }
  });
});
