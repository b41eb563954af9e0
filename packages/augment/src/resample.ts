import type { ImageU8 } from '@maskcon/datasets';
import { checkImage, checkPositiveInt } from './image.js';

/*
 * PIL's BILINEAR resize (Pillow `libImaging/Resample.c`), reproduced so that our crops and
 * resizes give the same bytes as torchvision transforms applied to PIL images:
 *  - a separable triangle filter whose support grows with the downscale factor (antialiased
 *    when shrinking; plain bilinear with half-pixel centres when enlarging);
 *  - weights normalised in double precision, then converted to 22-bit fixed point;
 *  - horizontal pass first, rounded and clipped to uint8, then the vertical pass;
 *  - a pass whose size does not change is skipped.
 */

const PRECISION_BITS = 32 - 8 - 2;
const ONE = 2 ** PRECISION_BITS;
const HALF = 2 ** (PRECISION_BITS - 1);
const CLIP_HIGH = 2 ** (PRECISION_BITS + 8);

/** Per output index `o`: input taps `first[o] .. first[o]+count[o]-1`, weights at `o*taps`. */
interface Coefficients {
  first: Int32Array;
  count: Int32Array;
  weights: Int32Array; // fixed point, sum ≈ 2^22 per output index
  taps: number;
}

const coefficientCache = new Map<number, Coefficients>();
const CACHE_LIMIT = 4096;

function triangle(x: number): number {
  if (x < 0) x = -x;
  return x < 1 ? 1 - x : 0;
}

/** Pillow's `precompute_coeffs` + `normalize_coeffs_8bpc` for box [0, inSize) → outSize. */
function coefficients(inSize: number, outSize: number): Coefficients {
  const key = inSize * 65536 + outSize;
  const cached = coefficientCache.get(key);
  if (cached) return cached;

  const scale = inSize / outSize;
  const filterScale = scale < 1 ? 1 : scale;
  const support = 1 * filterScale; // triangle support is 1
  const taps = Math.ceil(support) * 2 + 1;
  const inverse = 1 / filterScale;
  const first = new Int32Array(outSize);
  const count = new Int32Array(outSize);
  const weights = new Int32Array(outSize * taps);
  const w = new Float64Array(taps);
  for (let o = 0; o < outSize; o++) {
    const center = (o + 0.5) * scale;
    let lo = Math.trunc(center - support + 0.5);
    if (lo < 0) lo = 0;
    let hi = Math.trunc(center + support + 0.5);
    if (hi > inSize) hi = inSize;
    const n = hi - lo;
    let sum = 0;
    for (let t = 0; t < n; t++) {
      w[t] = triangle((t + lo - center + 0.5) * inverse);
      sum += w[t];
    }
    for (let t = 0; t < n; t++) {
      const k = sum !== 0 ? w[t] / sum : w[t];
      weights[o * taps + t] = k < 0 ? Math.trunc(-0.5 + k * ONE) : Math.trunc(0.5 + k * ONE);
    }
    first[o] = lo;
    count[o] = n;
  }
  const c: Coefficients = { first, count, weights, taps };
  if (coefficientCache.size >= CACHE_LIMIT) coefficientCache.clear();
  coefficientCache.set(key, c);
  return c;
}

function clip8(acc: number): number {
  if (acc >= CLIP_HIGH) return 255;
  if (acc <= 0) return 0;
  return acc >> PRECISION_BITS; // acc is an integer below 2^30
}

/**
 * Crop rows [top, top+h) × columns [left, left+w) of `img` and resize the crop to
 * outHeight × outWidth with PIL BILINEAR — equal to `img.crop(box).resize(size, BILINEAR)`.
 * The crop is never copied: the filter reads the region in place and clamps at its edges,
 * as PIL does on the cropped image.
 */
export function resampleRegion(
  img: ImageU8,
  top: number,
  left: number,
  h: number,
  w: number,
  outHeight: number,
  outWidth: number,
): ImageU8 {
  const out = new Uint8Array(outHeight * outWidth * img.channels);
  resampleRegionInto(img, top, left, h, w, outHeight, outWidth, out);
  return { data: out, height: outHeight, width: outWidth, channels: img.channels };
}

// Horizontal-pass output, reused between calls (everything here is synchronous).
let scratch = new Uint8Array(4096);

/** `resampleRegion` writing into `dst` (length ≥ outHeight*outWidth*channels). */
export function resampleRegionInto(
  img: ImageU8,
  top: number,
  left: number,
  h: number,
  w: number,
  outHeight: number,
  outWidth: number,
  dst: Uint8Array,
): void {
  checkImage(img, 'resample');
  checkPositiveInt(outHeight, 'Output height');
  checkPositiveInt(outWidth, 'Output width');
  if (
    !(Number.isInteger(top) && Number.isInteger(left) && Number.isInteger(h) && Number.isInteger(w)) ||
    top < 0 || left < 0 || h <= 0 || w <= 0 || top + h > img.height || left + w > img.width
  ) {
    throw new Error(
      `Crop (top ${top}, left ${left}, ${h}×${w}) does not fit inside the ${img.height}×${img.width} image; ` +
        'crop boxes must be integer and lie within the image.',
    );
  }
  const C = img.channels;
  if (dst.length < outHeight * outWidth * C) {
    throw new Error(`resample: output buffer holds ${dst.length} bytes, ${outHeight * outWidth * C} needed.`);
  }
  const src = img.data;
  const srcStride = img.width * C;
  const needHorizontal = outWidth !== w;
  const needVertical = outHeight !== h;

  // Vertical coefficients first: they say which crop rows the horizontal pass must produce.
  const cv = needVertical ? coefficients(h, outHeight) : null;
  let rowFirst = 0;
  let rowEnd = h;
  if (cv) {
    rowFirst = cv.first[0];
    rowEnd = cv.first[outHeight - 1] + cv.count[outHeight - 1];
  }

  // Stage 1 (horizontal): crop rows [rowFirst, rowEnd) → mid, (rowEnd−rowFirst)×outWidth×C,
  // or straight into dst when there is no vertical pass.
  let mid: Uint8Array;
  let midStride: number;
  let midBase: number; // index of crop row 0, column 0 in `mid` (may be negative: virtual)
  if (needHorizontal) {
    midStride = outWidth * C;
    if (cv) {
      const need = (rowEnd - rowFirst) * midStride;
      if (scratch.length < need) scratch = new Uint8Array(need);
      mid = scratch;
    } else {
      mid = dst;
    }
    midBase = -rowFirst * midStride;
    horizontalPass(src, (top + rowFirst) * srcStride + left * C, srcStride, rowEnd - rowFirst, C, coefficients(w, outWidth), mid);
  } else {
    mid = src;
    midStride = srcStride;
    midBase = top * srcStride + left * C;
  }

  // Stage 2 (vertical): mid → dst, outHeight×outWidth×C.
  const rowLen = outWidth * C;
  if (cv) {
    verticalPass(mid, midBase, midStride, rowLen, cv, dst);
  } else if (!needHorizontal) {
    for (let y = 0; y < outHeight; y++) {
      const s = midBase + y * midStride;
      dst.set(src.subarray(s, s + rowLen), y * rowLen);
    }
  }
}

/** rows × (coefficient inputs) of `src` starting at `base` → rows × outWidth × C in `out`. */
function horizontalPass(
  src: Uint8Array,
  base: number,
  srcStride: number,
  rows: number,
  C: number,
  coeffs: Coefficients,
  out: Uint8Array,
): void {
  const { first, count, weights, taps } = coeffs;
  const outWidth = first.length;
  let o = 0;
  for (let y = 0; y < rows; y++) {
    const srcRow = base + y * srcStride;
    if (C === 1) {
      for (let x = 0; x < outWidth; x++) {
        const n = count[x];
        const kb = x * taps;
        const sb = srcRow + first[x];
        let acc = HALF;
        for (let t = 0; t < n; t++) acc += src[sb + t] * weights[kb + t];
        out[o++] = clip8(acc);
      }
    } else if (C === 3) {
      for (let x = 0; x < outWidth; x++) {
        const n = count[x];
        const kb = x * taps;
        let s = srcRow + first[x] * 3;
        let a0 = HALF;
        let a1 = HALF;
        let a2 = HALF;
        for (let t = 0; t < n; t++, s += 3) {
          const k = weights[kb + t];
          a0 = (a0 + Math.imul(src[s], k)) | 0;
          a1 = (a1 + Math.imul(src[s + 1], k)) | 0;
          a2 = (a2 + Math.imul(src[s + 2], k)) | 0;
        }
        out[o] = a0 >= CLIP_HIGH ? 255 : a0 <= 0 ? 0 : a0 >> PRECISION_BITS;
        out[o + 1] = a1 >= CLIP_HIGH ? 255 : a1 <= 0 ? 0 : a1 >> PRECISION_BITS;
        out[o + 2] = a2 >= CLIP_HIGH ? 255 : a2 <= 0 ? 0 : a2 >> PRECISION_BITS;
        o += 3;
      }
    } else {
      for (let x = 0; x < outWidth; x++) {
        const n = count[x];
        const kb = x * taps;
        const sb = srcRow + first[x] * C;
        for (let c = 0; c < C; c++) {
          let acc = HALF;
          for (let t = 0, s = sb + c; t < n; t++, s += C) acc += src[s] * weights[kb + t];
          out[o++] = clip8(acc);
        }
      }
    }
  }
}

/** Filter columns of `mid` (row r at midBase + r*midStride, rowLen values each) into `out`. */
function verticalPass(
  mid: Uint8Array,
  midBase: number,
  midStride: number,
  rowLen: number,
  coeffs: Coefficients,
  out: Uint8Array,
): void {
  const { first, count, weights, taps } = coeffs;
  const outHeight = first.length;
  // The weights are non-negative and sum to ≈ 2^22, so HALF + Σ v·k stays below 2^30 and
  // int32 arithmetic is exact; the clip is kept for Pillow's semantics.
  for (let y = 0; y < outHeight; y++) {
    const n = count[y];
    const kb = y * taps;
    const r0 = midBase + first[y] * midStride;
    const o = y * rowLen;
    // Enlarging (the usual case) has at most 3 taps: unrolled.
    if (n === 1) {
      const k0 = weights[kb];
      for (let i = 0; i < rowLen; i++) {
        const acc = (HALF + Math.imul(mid[r0 + i], k0)) | 0;
        out[o + i] = acc >= CLIP_HIGH ? 255 : acc <= 0 ? 0 : acc >> PRECISION_BITS;
      }
    } else if (n === 2) {
      const k0 = weights[kb];
      const k1 = weights[kb + 1];
      const r1 = r0 + midStride;
      for (let i = 0; i < rowLen; i++) {
        const acc = (HALF + Math.imul(mid[r0 + i], k0) + Math.imul(mid[r1 + i], k1)) | 0;
        out[o + i] = acc >= CLIP_HIGH ? 255 : acc <= 0 ? 0 : acc >> PRECISION_BITS;
      }
    } else if (n === 3) {
      const k0 = weights[kb];
      const k1 = weights[kb + 1];
      const k2 = weights[kb + 2];
      const r1 = r0 + midStride;
      const r2 = r1 + midStride;
      for (let i = 0; i < rowLen; i++) {
        const acc = (HALF + Math.imul(mid[r0 + i], k0) + Math.imul(mid[r1 + i], k1) + Math.imul(mid[r2 + i], k2)) | 0;
        out[o + i] = acc >= CLIP_HIGH ? 255 : acc <= 0 ? 0 : acc >> PRECISION_BITS;
      }
    } else {
      for (let i = 0; i < rowLen; i++) {
        let acc = HALF;
        for (let t = 0, s = r0 + i; t < n; t++, s += midStride) acc += mid[s] * weights[kb + t];
        out[o + i] = clip8(acc);
      }
    }
  }
}

/** Resize the whole image to outHeight × outWidth with PIL BILINEAR (`img.resize((W, H), BILINEAR)`). */
export function resizeBilinear(img: ImageU8, outHeight: number, outWidth: number): ImageU8 {
  checkImage(img, 'resizeBilinear');
  return resampleRegion(img, 0, 0, img.height, img.width, outHeight, outWidth);
}
