import type { ImageU8 } from '@maskcon/datasets';
import { checkImage, checkPositiveInt } from './image.js';
import { resampleRegion } from './resample.js';
import type { Rng } from '@maskcon/random';

/**
 * An image-to-image augmentation. Randomness comes only from `rng`, so a transform is
 * reproducible from a seed. Transforms never modify their input; they may return it
 * unchanged (e.g. a flip that was not drawn).
 */
export type Transform = (img: ImageU8, rng: Rng) => ImageU8;

/** Apply transforms left to right (torchvision `Compose`). */
export function compose(...transforms: Transform[]): Transform {
  if (transforms.length === 0) return (img) => img;
  if (transforms.length === 1) return transforms[0];
  return (img, rng) => {
    let out = img;
    for (const t of transforms) out = t(out, rng);
    return out;
  };
}

/** A crop box in pixels: rows [top, top+height), columns [left, left+width). */
export interface CropBox {
  top: number;
  left: number;
  height: number;
  width: number;
  /** True when all 10 attempts were rejected and the central fallback crop was used. */
  fallback: boolean;
}

/** Python's `round` (half to even), which torchvision uses for crop sizes. */
export function roundHalfEven(x: number): number {
  const r = Math.round(x);
  return r - x === 0.5 && r % 2 !== 0 ? r - 1 : r;
}

function checkRange(range: readonly [number, number], what: string): void {
  const [lo, hi] = range;
  if (!(Number.isFinite(lo) && Number.isFinite(hi) && lo > 0 && lo <= hi)) {
    throw new Error(`${what} must be [lo, hi] with 0 < lo ≤ hi, got [${lo}, ${hi}].`);
  }
}

/**
 * torchvision `RandomResizedCrop.get_params` for an h×w image: up to 10 draws of an area
 * fraction uniform in `scale` and a log-uniform aspect ratio (width/height) in `ratio`;
 * the first draw whose rounded box fits is placed uniformly; otherwise a central crop
 * with the aspect ratio clamped to `ratio`.
 */
export function sampleResizedCropParams(
  h: number,
  w: number,
  scale: readonly [number, number],
  ratio: readonly [number, number],
  rng: Rng,
): CropBox {
  checkPositiveInt(h, 'Image height');
  checkPositiveInt(w, 'Image width');
  checkRange(scale, 'RandomResizedCrop scale');
  checkRange(ratio, 'RandomResizedCrop ratio');
  const area = h * w;
  const logLo = Math.log(ratio[0]);
  const logHi = Math.log(ratio[1]);
  for (let attempt = 0; attempt < 10; attempt++) {
    const targetArea = area * rng.uniform(scale[0], scale[1]);
    const aspect = Math.exp(rng.uniform(logLo, logHi));
    const cw = roundHalfEven(Math.sqrt(targetArea * aspect));
    const chh = roundHalfEven(Math.sqrt(targetArea / aspect));
    if (cw > 0 && cw <= w && chh > 0 && chh <= h) {
      const top = rng.int(h - chh + 1);
      const left = rng.int(w - cw + 1);
      return { top, left, height: chh, width: cw, fallback: false };
    }
  }
  const inRatio = w / h;
  let cw: number;
  let chh: number;
  if (inRatio < ratio[0]) {
    cw = w;
    chh = roundHalfEven(cw / ratio[0]);
  } else if (inRatio > ratio[1]) {
    chh = h;
    cw = roundHalfEven(chh * ratio[1]);
  } else {
    cw = w;
    chh = h;
  }
  return {
    top: Math.floor((h - chh) / 2),
    left: Math.floor((w - cw) / 2),
    height: chh,
    width: cw,
    fallback: true,
  };
}

/** Crop rows [top, top+h) × columns [left, left+w) and resize to size×size, PIL BILINEAR. */
export function resizedCrop(
  img: ImageU8,
  top: number,
  left: number,
  h: number,
  w: number,
  size: number,
): ImageU8 {
  checkPositiveInt(size, 'resizedCrop size');
  return resampleRegion(img, top, left, h, w, size, size);
}

/** torchvision `RandomResizedCrop(size, scale, ratio)` with PIL BILINEAR interpolation. */
export function randomResizedCrop(
  size: number,
  scale: readonly [number, number] = [0.2, 1],
  ratio: readonly [number, number] = [3 / 4, 4 / 3],
): Transform {
  checkPositiveInt(size, 'RandomResizedCrop size');
  checkRange(scale, 'RandomResizedCrop scale');
  checkRange(ratio, 'RandomResizedCrop ratio');
  return (img, rng) => {
    const box = sampleResizedCropParams(img.height, img.width, scale, ratio, rng);
    return resampleRegion(img, box.top, box.left, box.height, box.width, size, size);
  };
}

/** Mirror left–right (torchvision `F.hflip`). Returns a new image. */
export function hflip(img: ImageU8): ImageU8 {
  checkImage(img, 'hflip');
  const { height, width, channels: C, data } = img;
  const out = new Uint8Array(data.length);
  const stride = width * C;
  if (C === 1) {
    for (let y = 0; y < height; y++) {
      const row = y * stride;
      for (let x = 0, s = row + width - 1; x < width; x++, s--) out[row + x] = data[s];
    }
  } else if (C === 3) {
    for (let y = 0; y < height; y++) {
      const row = y * stride;
      for (let x = 0, o = row, s = row + stride - 3; x < width; x++, o += 3, s -= 3) {
        out[o] = data[s];
        out[o + 1] = data[s + 1];
        out[o + 2] = data[s + 2];
      }
    }
  } else {
    for (let y = 0; y < height; y++) {
      const row = y * stride;
      for (let x = 0; x < width; x++) {
        const o = row + x * C;
        const s = row + (width - 1 - x) * C;
        for (let c = 0; c < C; c++) out[o + c] = data[s + c];
      }
    }
  }
  return { data: out, height, width, channels: C };
}

/**
 * torchvision `RandomHorizontalFlip(p)`: flips with probability p. Always draws one number,
 * so the random stream does not depend on the outcome.
 */
export function horizontalFlip(p = 0.5): Transform {
  if (!(p >= 0 && p <= 1))
    throw new Error(`horizontalFlip probability must be in [0, 1], got ${p}.`);
  return (img, rng) => (rng.next() < p ? hflip(img) : img);
}

/**
 * Output [height, width] of torchvision `Resize(size)` with an int size: the shorter side
 * becomes `size`, the longer side `int(size * long / short)`.
 */
export function resizedShape(height: number, width: number, size: number): [number, number] {
  checkPositiveInt(size, 'Resize size');
  if (width <= height) return [Math.floor((size * height) / width), size];
  return [size, Math.floor((size * width) / height)];
}

/**
 * torchvision `Resize([size, size])` (PIL BILINEAR, antialiased when shrinking): every image
 * becomes size×size whatever its aspect ratio; the identity when already that size.
 */
export function resizeSquare(size: number): Transform {
  checkPositiveInt(size, 'Resize size');
  return (img) => {
    if (img.height === size && img.width === size) return img;
    return resampleRegion(img, 0, 0, img.height, img.width, size, size);
  };
}

/** torchvision `Resize(size)` (int size, PIL BILINEAR); the identity when already that size. */
export function resize(size: number): Transform {
  checkPositiveInt(size, 'Resize size');
  return (img) => {
    const [h, w] = resizedShape(img.height, img.width, size);
    if (h === img.height && w === img.width) return img;
    return resampleRegion(img, 0, 0, img.height, img.width, h, w);
  };
}
