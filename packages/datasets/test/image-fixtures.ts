import { mkdirSync, writeFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import { dirname, resolve } from 'node:path';
import { sharpImageDecoder, type ImageFileDecoder } from '../src/image-files.js';

/**
 * sharp for the tests. @maskcon/datasets does not depend on sharp (yet), so the tests borrow
 * the copy of the augment package and inject it as the decoder.
 */
const requireFromAugment = createRequire(
  resolve(import.meta.dirname, '../../augment/package.json'),
);
// eslint-disable-next-line @typescript-eslint/no-explicit-any
export const sharp = requireFromAugment('sharp') as any;

export const testDecoder: ImageFileDecoder = sharpImageDecoder(sharp);

/** A baseline JPEG of a solid colour (plus a gradient so it is not trivially flat). */
export async function jpegBytes(
  width: number,
  height: number,
  rgb: [number, number, number],
): Promise<Buffer> {
  const raw = Buffer.alloc(width * height * 3);
  for (let y = 0; y < height; y++) {
    for (let x = 0; x < width; x++) {
      const o = 3 * (y * width + x);
      raw[o] = rgb[0];
      raw[o + 1] = rgb[1];
      raw[o + 2] = (rgb[2] + 4 * x) & 0xff;
    }
  }
  return sharp(raw, { raw: { width, height, channels: 3 } })
    .jpeg({ quality: 95 })
    .toBuffer() as Promise<Buffer>;
}

export function writeFile(path: string, bytes: Uint8Array | string): void {
  mkdirSync(dirname(path), { recursive: true });
  writeFileSync(path, bytes);
}
