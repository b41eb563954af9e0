import type { ImageU8 } from '@maskcon/datasets';
import { checkImage } from './image.js';

/*
 * Pillow's `ImageFilter.GaussianBlur(radius)` (libImaging/BoxBlur.c): three passes of an
 * "extended" box blur per direction whose fractional box width matches the Gaussian's
 * variance (Gwosdek et al. 2011), 24-bit fixed point, rounded to uint8 after every pass;
 * three horizontal passes over every row, then three vertical passes over every column.
 */

const f32 = Math.fround;
const PASSES = 3;

/** The extended-box radius Pillow uses for a Gaussian of standard deviation `sigma` (float32 steps). */
export function boxRadiusForSigma(sigma: number): number {
  const r = f32(sigma);
  const sigma2 = f32(f32(r * r) / PASSES);
  const L = f32(Math.sqrt(12.0 * sigma2 + 1.0));
  const l = f32(Math.floor((L - 1.0) / 2.0));
  let a = f32(f32(f32(2 * l) + 1) * f32(f32(l * f32(l + 1)) - f32(3 * sigma2)));
  a = f32(a / f32(6 * f32(sigma2 - f32(f32(l + 1) * f32(l + 1)))));
  return f32(l + a);
}

/** One pass of the extended box blur along a line of n values (in → out, distinct arrays). */
function boxBlurLine(src: Uint8Array, out: Uint8Array, n: number, radius: number, ww: number, fw: number): void {
  const lastx = n - 1;
  const edgeA = Math.min(radius + 1, n);
  const edgeB = Math.max(n - radius - 1, 0);
  let acc = src[0] * (radius + 1);
  for (let x = 0; x < edgeA - 1; x++) acc += src[x];
  acc += src[lastx] * (radius - edgeA + 1);
  const save = (x: number, bulk: number) => {
    out[x] = ((bulk + 8388608) / 16777216) | 0;
  };
  if (edgeA <= edgeB) {
    for (let x = 0; x < edgeA; x++) {
      acc += src[x + radius] - src[0];
      save(x, acc * ww + (src[0] + src[x + radius + 1]) * fw);
    }
    for (let x = edgeA; x < edgeB; x++) {
      acc += src[x + radius] - src[x - radius - 1];
      save(x, acc * ww + (src[x - radius - 1] + src[x + radius + 1]) * fw);
    }
    for (let x = edgeB; x <= lastx; x++) {
      acc += src[lastx] - src[x - radius - 1];
      save(x, acc * ww + (src[x - radius - 1] + src[lastx]) * fw);
    }
  } else {
    for (let x = 0; x < edgeB; x++) {
      acc += src[x + radius] - src[0];
      save(x, acc * ww + (src[0] + src[lastx]) * fw);
    }
    for (let x = edgeB; x < edgeA; x++) {
      acc += src[lastx] - src[0];
      save(x, acc * ww + (src[0] + src[lastx]) * fw);
    }
    for (let x = edgeA; x <= lastx; x++) {
      acc += src[lastx] - src[x - radius - 1];
      save(x, acc * ww + (src[x - radius - 1] + src[lastx]) * fw);
    }
  }
}

/**
 * Blur every line of `data` (count lines of n values; value i of line k at
 * k*lineStep + i*step) with `PASSES` passes in place.
 */
function blurLines(
  data: Uint8Array,
  count: number,
  n: number,
  lineStep: number,
  step: number,
  floatRadius: number,
): void {
  const radius = Math.trunc(floatRadius);
  const ww = Math.trunc(f32(16777216 / f32(f32(floatRadius * 2) + 1)));
  const fw = Math.floor((16777216 - (radius * 2 + 1) * ww) / 2);
  let a = new Uint8Array(n);
  let b = new Uint8Array(n);
  for (let k = 0; k < count; k++) {
    const base = k * lineStep;
    for (let i = 0, s = base; i < n; i++, s += step) a[i] = data[s];
    for (let p = 0; p < PASSES; p++) {
      boxBlurLine(a, b, n, radius, ww, fw);
      const t = a; a = b; b = t;
    }
    for (let i = 0, s = base; i < n; i++, s += step) data[s] = a[i];
  }
}

/** `img.filter(ImageFilter.GaussianBlur(radius = sigma))`, as MoCo v2's GaussianBlur applies it. */
export function gaussianBlur(img: ImageU8, sigma: number): ImageU8 {
  checkImage(img, 'gaussianBlur');
  if (!(sigma >= 0 && Number.isFinite(sigma))) throw new Error(`gaussianBlur: sigma must be a finite number ≥ 0, got ${sigma}.`);
  const { height: H, width: W, channels: C } = img;
  const out = img.data.slice();
  const r = boxRadiusForSigma(sigma);
  if (r === 0) return { data: out, height: H, width: W, channels: C };
  for (let c = 0; c < C; c++) {
    blurLines(out.subarray(c), H, W, W * C, C, r); // rows
    blurLines(out.subarray(c), W, H, C, W * C, r); // columns
  }
  return { data: out, height: H, width: W, channels: C };
}
