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
 * Speed: coefficient tables are cached per (input size, output size) with a common tap count
 * (zero weights trimmed, then padded), the crop is read in place by the first pass, and RGB
 * passes are unrolled per tap count; all integer arithmetic, so the bytes are Pillow's.
 */

const PRECISION_BITS = 32 - 8 - 2;
const ONE = 2 ** PRECISION_BITS;
const HALF = 2 ** (PRECISION_BITS - 1);

/**
 * Per output index `o`: the K input taps `first[o] .. first[o]+K-1` (all inside the input)
 * and their fixed-point weights at `weights[o*K ..]`. Pillow's window is trimmed of taps
 * whose weight is 0 and then padded with zero weights to the common width K (shifting the
 * window left at the end of the line), so every output index runs the same unrolled loop;
 * a zero weight adds exactly nothing, so the sums are Pillow's.
 */
interface Coefficients {
  first: Int32Array;
  weights: Int32Array; // fixed point, non-negative, sum ≈ 2^22 per output index
  taps: number; // K
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
  const maxTaps = Math.ceil(support) * 2 + 1;
  const inverse = 1 / filterScale;
  // Pillow's coefficients, then the trimmed window [lo, hi) of non-zero weights per index.
  const fixed = new Int32Array(outSize * maxTaps);
  const lo = new Int32Array(outSize);
  const hi = new Int32Array(outSize);
  const w = new Float64Array(maxTaps);
  let K = 1;
  for (let o = 0; o < outSize; o++) {
    const center = (o + 0.5) * scale;
    let xmin = Math.trunc(center - support + 0.5);
    if (xmin < 0) xmin = 0;
    let xmax = Math.trunc(center + support + 0.5);
    if (xmax > inSize) xmax = inSize;
    const n = xmax - xmin;
    let sum = 0;
    for (let t = 0; t < n; t++) {
      w[t] = triangle((t + xmin - center + 0.5) * inverse);
      sum += w[t];
    }
    let a = -1;
    let b = -1;
    for (let t = 0; t < n; t++) {
      const k = sum !== 0 ? w[t] / sum : w[t];
      const v = k < 0 ? Math.trunc(-0.5 + k * ONE) : Math.trunc(0.5 + k * ONE);
      fixed[o * maxTaps + t] = v;
      if (v !== 0) {
        if (a < 0) a = t;
        b = t;
      }
    }
    if (a < 0) a = b = 0; // all zero (cannot happen for the triangle): one zero tap
    lo[o] = xmin + a;
    hi[o] = xmin + b + 1;
    if (b + 1 - a > K) K = b + 1 - a;
  }
  const first = new Int32Array(outSize);
  const weights = new Int32Array(outSize * K);
  for (let o = 0; o < outSize; o++) {
    const start = lo[o] + K <= inSize ? lo[o] : inSize - K;
    first[o] = start;
    const xmin = Math.max(0, Math.trunc((o + 0.5) * scale - support + 0.5));
    for (let x = lo[o]; x < hi[o]; x++)
      weights[o * K + (x - start)] = fixed[o * maxTaps + (x - xmin)];
  }
  const c: Coefficients = { first, weights, taps: K };
  if (coefficientCache.size >= CACHE_LIMIT) coefficientCache.clear();
  coefficientCache.set(key, c);
  return c;
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
    !(
      Number.isInteger(top) &&
      Number.isInteger(left) &&
      Number.isInteger(h) &&
      Number.isInteger(w)
    ) ||
    top < 0 ||
    left < 0 ||
    h <= 0 ||
    w <= 0 ||
    top + h > img.height ||
    left + w > img.width
  ) {
    throw new Error(
      `Crop (top ${top}, left ${left}, ${h}×${w}) does not fit inside the ${img.height}×${img.width} image; ` +
        'crop boxes must be integer and lie within the image.',
    );
  }
  const C = img.channels;
  if (dst.length < outHeight * outWidth * C) {
    throw new Error(
      `resample: output buffer holds ${dst.length} bytes, ${outHeight * outWidth * C} needed.`,
    );
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
    rowEnd = cv.first[outHeight - 1] + cv.taps;
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
    horizontalPass(
      src,
      (top + rowFirst) * srcStride + left * C,
      srcStride,
      rowEnd - rowFirst,
      C,
      coefficients(w, outWidth),
      mid,
    );
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

/*
 * Both passes skip Pillow's clip: the weights are non-negative and sum to at most
 * 2^22 + K/2, so HALF + Σ v·k lies in [2^21, 2^30) and `acc >> 22` is already in 0..255
 * (what the clip would give), with int32 arithmetic exact throughout.
 */

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
  const { first, weights: k, taps: K } = coeffs;
  const outWidth = first.length;
  if (C === 3) {
    if (K === 2) return horizontal3x2(src, base, srcStride, rows, first, k, out);
    if (K === 3) return horizontal3x3(src, base, srcStride, rows, first, k, out);
    if (K === 4) return horizontal3x4(src, base, srcStride, rows, first, k, out);
  }
  let o = 0;
  for (let y = 0; y < rows; y++) {
    const srcRow = base + y * srcStride;
    for (let x = 0; x < outWidth; x++) {
      const kb = x * K;
      const sb = srcRow + first[x] * C;
      for (let c = 0; c < C; c++) {
        let acc = HALF;
        for (let t = 0, s = sb + c; t < K; t++, s += C)
          acc = (acc + Math.imul(src[s], k[kb + t])) | 0;
        out[o++] = acc >> PRECISION_BITS;
      }
    }
  }
}

function horizontal3x2(
  src: Uint8Array,
  base: number,
  stride: number,
  rows: number,
  first: Int32Array,
  k: Int32Array,
  out: Uint8Array,
): void {
  const outWidth = first.length;
  let o = 0;
  for (let y = 0; y < rows; y++) {
    const row = base + y * stride;
    for (let x = 0, kb = 0; x < outWidth; x++, kb += 2, o += 3) {
      const s = row + first[x] * 3;
      const k0 = k[kb];
      const k1 = k[kb + 1];
      out[o] = (HALF + Math.imul(src[s], k0) + Math.imul(src[s + 3], k1)) >> PRECISION_BITS;
      out[o + 1] = (HALF + Math.imul(src[s + 1], k0) + Math.imul(src[s + 4], k1)) >> PRECISION_BITS;
      out[o + 2] = (HALF + Math.imul(src[s + 2], k0) + Math.imul(src[s + 5], k1)) >> PRECISION_BITS;
    }
  }
}

function horizontal3x3(
  src: Uint8Array,
  base: number,
  stride: number,
  rows: number,
  first: Int32Array,
  k: Int32Array,
  out: Uint8Array,
): void {
  const outWidth = first.length;
  let o = 0;
  for (let y = 0; y < rows; y++) {
    const row = base + y * stride;
    for (let x = 0, kb = 0; x < outWidth; x++, kb += 3, o += 3) {
      const s = row + first[x] * 3;
      const k0 = k[kb];
      const k1 = k[kb + 1];
      const k2 = k[kb + 2];
      out[o] =
        (HALF + Math.imul(src[s], k0) + Math.imul(src[s + 3], k1) + Math.imul(src[s + 6], k2)) >>
        PRECISION_BITS;
      out[o + 1] =
        (HALF +
          Math.imul(src[s + 1], k0) +
          Math.imul(src[s + 4], k1) +
          Math.imul(src[s + 7], k2)) >>
        PRECISION_BITS;
      out[o + 2] =
        (HALF +
          Math.imul(src[s + 2], k0) +
          Math.imul(src[s + 5], k1) +
          Math.imul(src[s + 8], k2)) >>
        PRECISION_BITS;
    }
  }
}

function horizontal3x4(
  src: Uint8Array,
  base: number,
  stride: number,
  rows: number,
  first: Int32Array,
  k: Int32Array,
  out: Uint8Array,
): void {
  const outWidth = first.length;
  let o = 0;
  for (let y = 0; y < rows; y++) {
    const row = base + y * stride;
    for (let x = 0, kb = 0; x < outWidth; x++, kb += 4, o += 3) {
      const s = row + first[x] * 3;
      const k0 = k[kb];
      const k1 = k[kb + 1];
      const k2 = k[kb + 2];
      const k3 = k[kb + 3];
      out[o] =
        (HALF +
          Math.imul(src[s], k0) +
          Math.imul(src[s + 3], k1) +
          Math.imul(src[s + 6], k2) +
          Math.imul(src[s + 9], k3)) >>
        PRECISION_BITS;
      out[o + 1] =
        (HALF +
          Math.imul(src[s + 1], k0) +
          Math.imul(src[s + 4], k1) +
          Math.imul(src[s + 7], k2) +
          Math.imul(src[s + 10], k3)) >>
        PRECISION_BITS;
      out[o + 2] =
        (HALF +
          Math.imul(src[s + 2], k0) +
          Math.imul(src[s + 5], k1) +
          Math.imul(src[s + 8], k2) +
          Math.imul(src[s + 11], k3)) >>
        PRECISION_BITS;
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
  const { first, weights, taps: K } = coeffs;
  const outHeight = first.length;
  if (
    (K === 2 || K === 3) &&
    LITTLE_ENDIAN &&
    rowLen % 4 === 0 &&
    midStride % 4 === 0 &&
    mid.byteOffset % 4 === 0 &&
    midBase % 4 === 0 &&
    out.byteOffset % 4 === 0
  ) {
    verticalPassWords(mid, midBase, midStride, rowLen, coeffs, out);
    return;
  }
  for (let y = 0; y < outHeight; y++) {
    const kb = y * K;
    const r0 = midBase + first[y] * midStride;
    const o = y * rowLen;
    if (K === 1) {
      const k0 = weights[kb];
      for (let i = 0; i < rowLen; i++)
        out[o + i] = (HALF + Math.imul(mid[r0 + i], k0)) >> PRECISION_BITS;
    } else if (K === 2) {
      const k0 = weights[kb];
      const k1 = weights[kb + 1];
      const r1 = r0 + midStride;
      for (let i = 0; i < rowLen; i++) {
        out[o + i] =
          (HALF + Math.imul(mid[r0 + i], k0) + Math.imul(mid[r1 + i], k1)) >> PRECISION_BITS;
      }
    } else if (K === 3) {
      const k0 = weights[kb];
      const k1 = weights[kb + 1];
      const k2 = weights[kb + 2];
      const r1 = r0 + midStride;
      const r2 = r1 + midStride;
      for (let i = 0; i < rowLen; i++) {
        out[o + i] =
          (HALF +
            Math.imul(mid[r0 + i], k0) +
            Math.imul(mid[r1 + i], k1) +
            Math.imul(mid[r2 + i], k2)) >>
          PRECISION_BITS;
      }
    } else if (K === 4) {
      const k0 = weights[kb];
      const k1 = weights[kb + 1];
      const k2 = weights[kb + 2];
      const k3 = weights[kb + 3];
      const r1 = r0 + midStride;
      const r2 = r1 + midStride;
      const r3 = r2 + midStride;
      for (let i = 0; i < rowLen; i++) {
        out[o + i] =
          (HALF +
            Math.imul(mid[r0 + i], k0) +
            Math.imul(mid[r1 + i], k1) +
            Math.imul(mid[r2 + i], k2) +
            Math.imul(mid[r3 + i], k3)) >>
          PRECISION_BITS;
      }
    } else {
      for (let i = 0; i < rowLen; i++) {
        let acc = HALF;
        for (let t = 0, s = r0 + i; t < K; t++, s += midStride)
          acc = (acc + Math.imul(mid[s], weights[kb + t])) | 0;
        out[o + i] = acc >> PRECISION_BITS;
      }
    }
  }
}

/** Reading bytes out of Uint32Array words assumes little-endian order. */
const LITTLE_ENDIAN = new Uint8Array(new Uint32Array([1]).buffer)[0] === 1;

/**
 * `verticalPass` for 2 or 3 taps on word-aligned rows: each row's values are read and
 * written four at a time as uint32 words (fewer loads and stores); the arithmetic per value
 * is the scalar pass's.
 */
function verticalPassWords(
  mid: Uint8Array,
  midBase: number,
  midStride: number,
  rowLen: number,
  coeffs: Coefficients,
  out: Uint8Array,
): void {
  const { first, weights, taps: K } = coeffs;
  const outHeight = first.length;
  const m32 = new Uint32Array(mid.buffer, mid.byteOffset, mid.length >> 2);
  const o32 = new Uint32Array(out.buffer, out.byteOffset, out.length >> 2);
  const q = rowLen >> 2;
  const strideW = midStride >> 2;
  const baseW = midBase >> 2; // may be negative: rows before the first one read are virtual
  for (let y = 0; y < outHeight; y++) {
    const kb = y * K;
    const k0 = weights[kb];
    const k1 = weights[kb + 1];
    const r0 = baseW + first[y] * strideW;
    const r1 = r0 + strideW;
    const o = y * q;
    if (K === 2) {
      for (let i = 0; i < q; i++) {
        const a = m32[r0 + i];
        const b = m32[r1 + i];
        const v0 = (HALF + Math.imul(a & 255, k0) + Math.imul(b & 255, k1)) >> PRECISION_BITS;
        const v1 =
          (HALF + Math.imul((a >>> 8) & 255, k0) + Math.imul((b >>> 8) & 255, k1)) >>
          PRECISION_BITS;
        const v2 =
          (HALF + Math.imul((a >>> 16) & 255, k0) + Math.imul((b >>> 16) & 255, k1)) >>
          PRECISION_BITS;
        const v3 = (HALF + Math.imul(a >>> 24, k0) + Math.imul(b >>> 24, k1)) >> PRECISION_BITS;
        o32[o + i] = v0 | (v1 << 8) | (v2 << 16) | (v3 << 24);
      }
    } else {
      const k2 = weights[kb + 2];
      const r2 = r1 + strideW;
      for (let i = 0; i < q; i++) {
        const a = m32[r0 + i];
        const b = m32[r1 + i];
        const c = m32[r2 + i];
        const v0 =
          (HALF + Math.imul(a & 255, k0) + Math.imul(b & 255, k1) + Math.imul(c & 255, k2)) >>
          PRECISION_BITS;
        const v1 =
          (HALF +
            Math.imul((a >>> 8) & 255, k0) +
            Math.imul((b >>> 8) & 255, k1) +
            Math.imul((c >>> 8) & 255, k2)) >>
          PRECISION_BITS;
        const v2 =
          (HALF +
            Math.imul((a >>> 16) & 255, k0) +
            Math.imul((b >>> 16) & 255, k1) +
            Math.imul((c >>> 16) & 255, k2)) >>
          PRECISION_BITS;
        const v3 =
          (HALF + Math.imul(a >>> 24, k0) + Math.imul(b >>> 24, k1) + Math.imul(c >>> 24, k2)) >>
          PRECISION_BITS;
        o32[o + i] = v0 | (v1 << 8) | (v2 << 16) | (v3 << 24);
      }
    }
  }
}

/** Resize the whole image to outHeight × outWidth with PIL BILINEAR (`img.resize((W, H), BILINEAR)`). */
export function resizeBilinear(img: ImageU8, outHeight: number, outWidth: number): ImageU8 {
  checkImage(img, 'resizeBilinear');
  return resampleRegion(img, 0, 0, img.height, img.width, outHeight, outWidth);
}
