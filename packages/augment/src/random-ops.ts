import type { ImageU8 } from '@maskcon/datasets';
import { gaussianBlur } from './blur.js';
import {
  adjustBrightness,
  adjustContrast,
  adjustHue,
  adjustSaturation,
  grayscale,
} from './color.js';
import {
  perspectiveBilinear,
  perspectiveCoefficients,
  type Corners,
  type PerspectiveCoefficients,
} from './geometry.js';
import type { Rng } from '@maskcon/random';
import type { Transform } from './transforms.js';

/*
 * The randomised torchvision/MoCo transforms of the paper's large-image pipelines. Each
 * splits into a parameter sampler (what torchvision's `get_params` draws, from our Rng) and
 * the deterministic operation in color.ts / geometry.ts / blur.ts.
 */

function checkProbability(p: number, what: string): void {
  if (!(p >= 0 && p <= 1)) throw new Error(`${what} probability must be in [0, 1], got ${p}.`);
}

/** torchvision `RandomApply([t], p)`: one draw, then `t` with probability p. */
export function randomApply(t: Transform, p: number): Transform {
  checkProbability(p, 'RandomApply');
  return (img, rng) => (rng.next() < p ? t(img, rng) : img);
}

/** Start and end corners of torchvision `RandomPerspective.get_params(width, height, d)`. */
export interface PerspectiveParams {
  startpoints: Corners;
  endpoints: Corners;
}

/**
 * torchvision `RandomPerspective.get_params`: each corner moves inwards by a uniform integer
 * of up to ⌊d·⌊w/2⌋⌋ horizontally and ⌊d·⌊h/2⌋⌋ vertically (top-left, top-right,
 * bottom-right, bottom-left; x before y).
 */
export function samplePerspectiveParams(
  width: number,
  height: number,
  distortion: number,
  rng: Rng,
): PerspectiveParams {
  const dx = Math.trunc(distortion * Math.floor(width / 2));
  const dy = Math.trunc(distortion * Math.floor(height / 2));
  const between = (lo: number, hi: number) => lo + rng.int(hi - lo); // torch.randint(lo, hi)
  const topLeft: [number, number] = [between(0, dx + 1), between(0, dy + 1)];
  const topRight: [number, number] = [between(width - dx - 1, width), between(0, dy + 1)];
  const bottomRight: [number, number] = [
    between(width - dx - 1, width),
    between(height - dy - 1, height),
  ];
  const bottomLeft: [number, number] = [between(0, dx + 1), between(height - dy - 1, height)];
  return {
    startpoints: [
      [0, 0],
      [width - 1, 0],
      [width - 1, height - 1],
      [0, height - 1],
    ],
    endpoints: [topLeft, topRight, bottomRight, bottomLeft],
  };
}

/** torchvision `RandomPerspective(distortion, p)` with its default BILINEAR interpolation and fill 0. */
export function randomPerspective(distortion = 0.5, p = 0.5): Transform {
  checkProbability(p, 'RandomPerspective');
  if (!(distortion >= 0 && distortion <= 1))
    throw new Error(`RandomPerspective distortion must be in [0, 1], got ${distortion}.`);
  return (img, rng) => {
    if (!(rng.next() < p)) return img;
    const { startpoints, endpoints } = samplePerspectiveParams(
      img.width,
      img.height,
      distortion,
      rng,
    );
    let coeffs: PerspectiveCoefficients;
    try {
      coeffs = perspectiveCoefficients(startpoints, endpoints);
    } catch {
      // On tiny images (side < 16) the drawn corners can ask for a homography that sends an
      // output pixel to infinity; torchvision's least squares then returns garbage. Keep the image.
      return img;
    }
    return perspectiveBilinear(img, coeffs, 0);
  };
}

/** What torchvision `ColorJitter.get_params` draws: an order of the four adjustments and their factors. */
export interface ColorJitterParams {
  /** A permutation of 0 (brightness), 1 (contrast), 2 (saturation), 3 (hue). */
  order: number[];
  brightness: number;
  contrast: number;
  saturation: number;
  hue: number;
}

export interface ColorJitterRanges {
  brightness: readonly [number, number];
  contrast: readonly [number, number];
  saturation: readonly [number, number];
  hue: readonly [number, number];
}

/** ColorJitter(b, c, s, h) ranges: [max(0, 1 − x), 1 + x] for the first three, [−h, h] for hue. */
export function colorJitterRanges(
  brightness: number,
  contrast: number,
  saturation: number,
  hue: number,
): ColorJitterRanges {
  for (const [name, v] of [
    ['brightness', brightness],
    ['contrast', contrast],
    ['saturation', saturation],
  ] as const) {
    if (!(v >= 0 && Number.isFinite(v)))
      throw new Error(`ColorJitter ${name} must be a finite number ≥ 0, got ${v}.`);
  }
  if (!(hue >= 0 && hue <= 0.5))
    throw new Error(`ColorJitter hue must be in [0, 0.5], got ${hue}.`);
  const around1 = (v: number): [number, number] => [Math.max(0, 1 - v), 1 + v];
  return {
    brightness: around1(brightness),
    contrast: around1(contrast),
    saturation: around1(saturation),
    hue: [-hue, hue],
  };
}

export function sampleColorJitterParams(ranges: ColorJitterRanges, rng: Rng): ColorJitterParams {
  const order = Array.from(rng.permutation(4));
  return {
    order,
    brightness: rng.uniform(ranges.brightness[0], ranges.brightness[1]),
    contrast: rng.uniform(ranges.contrast[0], ranges.contrast[1]),
    saturation: rng.uniform(ranges.saturation[0], ranges.saturation[1]),
    hue: rng.uniform(ranges.hue[0], ranges.hue[1]),
  };
}

/** Apply the four adjustments in `params.order` (torchvision ColorJitter.forward). */
export function applyColorJitter(img: ImageU8, params: ColorJitterParams): ImageU8 {
  let out = img;
  for (const id of params.order) {
    if (id === 0) out = adjustBrightness(out, params.brightness);
    else if (id === 1) out = adjustContrast(out, params.contrast);
    else if (id === 2) out = adjustSaturation(out, params.saturation);
    else out = adjustHue(out, params.hue);
  }
  return out;
}

/** torchvision `ColorJitter(brightness, contrast, saturation, hue)` on PIL images. */
export function colorJitter(
  brightness: number,
  contrast: number,
  saturation: number,
  hue: number,
): Transform {
  const ranges = colorJitterRanges(brightness, contrast, saturation, hue);
  return (img, rng) => applyColorJitter(img, sampleColorJitterParams(ranges, rng));
}

/** torchvision `RandomGrayscale(p)`: PIL L conversion, kept at the input's channel count. */
export function randomGrayscale(p = 0.2): Transform {
  checkProbability(p, 'RandomGrayscale');
  return (img, rng) => (rng.next() < p ? grayscale(img) : img);
}

/** MoCo v2's `GaussianBlur(sigma)`: σ uniform in [lo, hi], then PIL GaussianBlur(radius = σ). */
export function randomGaussianBlur(sigma: readonly [number, number] = [0.1, 2]): Transform {
  if (!(sigma[0] >= 0 && sigma[0] <= sigma[1]))
    throw new Error(
      `GaussianBlur sigma range must be 0 ≤ lo ≤ hi, got [${sigma[0]}, ${sigma[1]}].`,
    );
  return (img, rng) => gaussianBlur(img, rng.uniform(sigma[0], sigma[1]));
}
