import type { ImageU8 } from '@maskcon/datasets';
import { Rng } from '@maskcon/random';

/** A random image with a fixed seed. */
export function noiseImage(height: number, width: number, channels: number, seed = 1): ImageU8 {
  const rng = new Rng(seed);
  const data = new Uint8Array(height * width * channels);
  for (let i = 0; i < data.length; i++) data[i] = rng.int(256);
  return { data, height, width, channels };
}

export function imageFrom(
  height: number,
  width: number,
  channels: number,
  f: (y: number, x: number, c: number) => number,
): ImageU8 {
  const data = new Uint8Array(height * width * channels);
  for (let y = 0; y < height; y++)
    for (let x = 0; x < width; x++)
      for (let c = 0; c < channels; c++) data[(y * width + x) * channels + c] = f(y, x, c);
  return { data, height, width, channels };
}

export function pixel(img: ImageU8, y: number, x: number, c = 0): number {
  return img.data[(y * img.width + x) * img.channels + c];
}

/** Copy rows [top, top+h) × columns [left, left+w) into a new image. */
export function naiveCrop(img: ImageU8, top: number, left: number, h: number, w: number): ImageU8 {
  return imageFrom(h, w, img.channels, (y, x, c) => pixel(img, top + y, left + x, c));
}

/** Rows of a single-channel image, for readable assertions. */
export function rows(img: ImageU8): number[][] {
  const out: number[][] = [];
  for (let y = 0; y < img.height; y++)
    out.push(Array.from({ length: img.width }, (_, x) => pixel(img, y, x)));
  return out;
}
