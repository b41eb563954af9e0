import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { cmykToRgb, decodeToRgb } from '../src/image-files.js';
import { openIndex } from '../src/read-index.js';
import { csvSource } from '../src/sources/csv.js';
import { writeIndex } from '../src/write-index.js';
import { tempDir } from './helpers.js';
import { sharp, testDecoder, writeFile } from './image-fixtures.js';

/** CMYK JPEGs written by PIL, and PIL's `Image.open(f).convert('RGB')` of them (scripts/gen-cmyk-fixture.py). */
const FIXTURES = join(import.meta.dirname, 'fixtures');
const pilRgb = (name: string) => readFileSync(join(FIXTURES, `${name}.rgb`));

function maxDiff(a: Uint8Array, b: Uint8Array): number {
  let m = 0;
  for (let i = 0; i < a.length; i++) m = Math.max(m, Math.abs(a[i] - b[i]));
  return m;
}

describe('CMYK JPEGs decode as PIL/torchvision do (issue 16 item 9)', () => {
  it.each([
    'cmyk',
    'cmyk-progressive',
  ])('%s.jpg: byte for byte PIL convert("RGB")', async (name) => {
    const path = join(FIXTURES, `${name}.jpg`);
    const image = await decodeToRgb(sharp, path);
    expect([image.height, image.width, image.channels]).toEqual([24, 40, 3]);
    expect(maxDiff(image.data, pilRgb(name))).toBe(0);
    // From bytes as well as from a path.
    const fromBytes = await decodeToRgb(sharp, readFileSync(path));
    expect(Buffer.from(fromBytes.data).equals(Buffer.from(image.data))).toBe(true);
    // What libvips' own CMYK → sRGB (through a CMYK profile) gives instead: far off.
    const vips = await sharp(path).toColourspace('srgb').raw().toBuffer();
    expect(maxDiff(vips, pilRgb(name))).toBeGreaterThan(60);
  });

  it('cmykToRgb follows PIL’s integer formula on corner values', () => {
    // nk = 255 − K; out = nk − round(ink·nk/255).
    const cmyk = new Uint8Array([0, 0, 0, 0, 255, 255, 255, 0, 128, 64, 0, 100, 10, 20, 30, 255]);
    const naive = Array.from({ length: 4 }, (_, p) =>
      [0, 1, 2].map((c) => {
        const nk = 255 - cmyk[4 * p + 3];
        return nk - Math.round((cmyk[4 * p + c] * nk) / 255);
      }),
    ).flat();
    expect(Array.from(cmykToRgb(cmyk))).toEqual(naive);
    expect(naive.slice(0, 9)).toEqual([255, 255, 255, 0, 0, 0, 77, 116, 155]);
  });

  it('a csv build stores the PIL colours of a CMYK JPEG', async () => {
    const root = tempDir('cmyk');
    writeFile(join(root, 'a.jpg'), readFileSync(join(FIXTURES, 'cmyk.jpg')));
    writeFile(join(root, 'b.jpg'), readFileSync(join(FIXTURES, 'cmyk-progressive.jpg')));
    writeFile(join(root, 'labels.csv'), 'path,coarse,split\na.jpg,x,train\nb.jpg,x,test\n');
    const out = join(root, 'cmyk.sqlite');
    // Short side 24 = the images' own: stored at full size, comparable pixel for pixel.
    await writeIndex(csvSource({ name: 'cmyk', root, decoder: testDecoder, shortSide: 24 }), out);
    const train = openIndex(out, 'train');
    expect(maxDiff(train.image(0).data, pilRgb('cmyk'))).toBe(0);
    train.close();
  });
});
