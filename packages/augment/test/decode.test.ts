import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import sharp from 'sharp';
import { describe, expect, it } from 'vitest';
import { decodeImage, resizeShortSide } from '../src/decode.js';
import { imageFrom, noiseImage } from './helpers.js';

describe('decodeImage', () => {
  it('round-trips an RGB PNG written by sharp byte for byte', async () => {
    const img = noiseImage(13, 17, 3, 40);
    const png = await sharp(Buffer.from(img.data), { raw: { width: 17, height: 13, channels: 3 } })
      .png()
      .toBuffer();
    const back = await decodeImage(png);
    expect([back.height, back.width, back.channels]).toEqual([13, 17, 3]);
    expect(Buffer.from(back.data).equals(Buffer.from(img.data))).toBe(true);
  });

  it('drops alpha and expands grey to RGB', async () => {
    const rgba = noiseImage(5, 4, 4, 41);
    const png = await sharp(Buffer.from(rgba.data), { raw: { width: 4, height: 5, channels: 4 } })
      .png()
      .toBuffer();
    const back = await decodeImage(png);
    expect(back.channels).toBe(3);
    expect(Array.from(back.data)).toEqual(Array.from(rgba.data).filter((_, i) => i % 4 !== 3));

    const grey = noiseImage(3, 3, 1, 42);
    const gpng = await sharp(Buffer.from(grey.data), { raw: { width: 3, height: 3, channels: 1 } })
      .png()
      .toBuffer();
    const g = await decodeImage(gpng);
    expect(g.channels).toBe(3);
    expect(Array.from(g.data)).toEqual(Array.from(grey.data).flatMap((v) => [v, v, v]));
  });

  it('converts a CMYK JPEG as PIL does (the fixture of @maskcon/datasets, made by PIL)', async () => {
    const fixtures = join(import.meta.dirname, '../../datasets/test/fixtures');
    const back = await decodeImage(readFileSync(join(fixtures, 'cmyk.jpg')));
    expect([back.height, back.width, back.channels]).toEqual([24, 40, 3]);
    expect(Buffer.from(back.data).equals(readFileSync(join(fixtures, 'cmyk.rgb')))).toBe(true);
  });

  it('fails with a sentence on a truncated file', async () => {
    await expect(decodeImage(Buffer.from([0x89, 0x50, 0x4e, 0x47, 1, 2, 3]))).rejects.toThrow(
      /could not decode a 7-byte buffer/,
    );
  });
});

describe('resizeShortSide', () => {
  it('follows Resize(int) shape semantics and keeps a constant image constant', async () => {
    const img = imageFrom(60, 40, 3, (_, __, c) => 50 + c * 60);
    const out = await resizeShortSide(img, 20);
    expect([out.height, out.width, out.channels]).toEqual([30, 20, 3]);
    for (let i = 0; i < out.data.length; i++) expect(out.data[i]).toBe(50 + (i % 3) * 60);
    const wide = await resizeShortSide(
      imageFrom(7, 10, 1, () => 99),
      3,
    );
    expect([wide.height, wide.width, wide.channels]).toEqual([3, 4, 1]);
    expect(Array.from(wide.data)).toEqual(new Array(12).fill(99));
    const same = noiseImage(20, 30, 3, 2);
    expect(await resizeShortSide(same, 20)).toBe(same);
  });
});
