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
function boxBlurLine(
  src: Uint8Array,
  out: Uint8Array,
  n: number,
  radius: number,
  ww: number,
  fw: number,
): void {
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
      const t = a;
      a = b;
      b = t;
    }
    for (let i = 0, s = base; i < n; i++, s += step) data[s] = a[i];
  }
}

/** `img.filter(ImageFilter.GaussianBlur(radius = sigma))`, as MoCo v2's GaussianBlur applies it. */
export function gaussianBlur(img: ImageU8, sigma: number): ImageU8 {
  checkImage(img, 'gaussianBlur');
  if (!(sigma >= 0 && Number.isFinite(sigma)))
    throw new Error(`gaussianBlur: sigma must be a finite number ≥ 0, got ${sigma}.`);
  const out = img.data.slice();
  gaussianBlurInPlace(out, img.height, img.width, img.channels, sigma);
  return { data: out, height: img.height, width: img.width, channels: img.channels };
}

// Scratch lines and planes, reused between calls (everything here is synchronous).
let lineA = new Uint8Array(0);
let lineB = new Uint8Array(0);
let lineA32 = new Uint32Array(0);
let lineB32 = new Uint32Array(0);
let planeA = new Uint8Array(0);
let planeB = new Uint8Array(0);
let planeA32 = new Uint32Array(0);
let planeB32 = new Uint32Array(0);

/** The word-at-a-time passes read bytes out of Uint32Array words, which assumes little-endian order. */
const LITTLE_ENDIAN = new Uint8Array(new Uint32Array([1]).buffer)[0] === 1;
let colAcc = new Int32Array(0);

/** `gaussianBlur` on an H×W×C buffer, in place (sigma already checked). */
export function gaussianBlurInPlace(
  data: Uint8Array,
  H: number,
  W: number,
  C: number,
  sigma: number,
): void {
  const r = boxRadiusForSigma(sigma);
  if (r === 0) return;
  const radius = Math.trunc(r);
  const ww = Math.trunc(f32(16777216 / f32(f32(r * 2) + 1)));
  const fw = Math.floor((16777216 - (radius * 2 + 1) * ww) / 2);
  // Fast paths cover lines long enough for Pillow's usual edge handling (n ≥ 2·radius + 2),
  // where the passes equal a box blur with edge-clamped indices; shorter lines take the
  // literal transcription of BoxBlur.c's other branch.
  if (W >= 2 * radius + 2) {
    horizontalBlur(data, H, W, C, radius, ww, fw);
  } else {
    for (let c = 0; c < C; c++) blurLines(data.subarray(c), H, W, W * C, C, r);
  }
  if (H >= 2 * radius + 2) {
    verticalBlur(data, H, W * C, radius, ww, fw);
  } else {
    for (let c = 0; c < C; c++) blurLines(data.subarray(c), W, H, C, W * C, r);
  }
}

/*
 * Pillow computes (acc·ww + (far values)·fw + 2^23) >> 24 in UINT32 and the true value is
 * below 2^32, so it is evaluated here in int32 with wrap-around (Math.imul, | 0) and read
 * back unsigned by >>> 24: the same result, without leaving integer arithmetic.
 */

/** `PASSES` horizontal passes over every row (interleaved channels), in place. */
function horizontalBlur(
  data: Uint8Array,
  H: number,
  W: number,
  C: number,
  radius: number,
  ww: number,
  fw: number,
): void {
  const rowLen = W * C;
  if (lineA.length < rowLen) {
    const n = (rowLen + 3) & ~3;
    lineA = new Uint8Array(n);
    lineB = new Uint8Array(n);
    lineA32 = new Uint32Array(lineA.buffer);
    lineB32 = new Uint32Array(lineB.buffer);
  }
  const a = lineA;
  const b = lineB;
  if (
    radius <= 1 &&
    C === 3 &&
    LITTLE_ENDIAN &&
    rowLen % 4 === 0 &&
    rowLen >= 20 &&
    data.byteOffset % 4 === 0
  ) {
    const d32 = new Uint32Array(data.buffer, data.byteOffset, (H * rowLen) >> 2);
    const a32 = lineA32;
    const b32 = lineB32;
    for (let y = 0; y < H; y++) {
      const base = y * rowLen;
      horizontalPassWords(data, d32, base, a, a32, 0, rowLen, radius, ww, fw);
      horizontalPassWords(a, a32, 0, b, b32, 0, rowLen, radius, ww, fw);
      horizontalPassWords(b, b32, 0, data, d32, base, rowLen, radius, ww, fw);
    }
    return;
  }
  if (radius <= 1) {
    for (let y = 0; y < H; y++) {
      const base = y * rowLen;
      horizontalPassSmall(data, base, a, 0, rowLen, C, radius, ww, fw);
      horizontalPassSmall(a, 0, b, 0, rowLen, C, radius, ww, fw);
      horizontalPassSmall(b, 0, data, base, rowLen, C, radius, ww, fw);
    }
    return;
  }
  for (let y = 0; y < H; y++) {
    const base = y * rowLen;
    boxPassInterleaved(data, base, a, 0, W, C, radius, ww, fw);
    boxPassInterleaved(a, 0, b, 0, W, C, radius, ww, fw);
    boxPassInterleaved(b, 0, data, base, W, C, radius, ww, fw);
  }
}

/**
 * `boxPassInterleaved` for radius 0 or 1 (as `verticalPassSmall`): each value is computed
 * from its 2·radius + 3 edge-clamped neighbours along the row, all channels in one loop
 * over the interleaved values (needs rowLen ≥ 4·C).
 */
function horizontalPassSmall(
  src: Uint8Array,
  so: number,
  out: Uint8Array,
  oo: number,
  rowLen: number,
  C: number,
  radius: number,
  ww: number,
  fw: number,
): void {
  const C2 = 2 * C;
  const end = rowLen - C2; // values [C2, end) have both neighbours at distance 2 inside the row
  if (radius === 0) {
    for (let i = C2, s = so + C2, o = oo + C2; i < end; i++, s++, o++) {
      out[o] =
        (((Math.imul(src[s], ww) + Math.imul(src[s - C] + src[s + C], fw)) | 0) + 8388608) >>> 24;
    }
  } else {
    for (let i = C2, s = so + C2, o = oo + C2; i < end; i++, s++, o++) {
      out[o] =
        (((Math.imul(src[s - C] + src[s] + src[s + C], ww) +
          Math.imul(src[s - C2] + src[s + C2], fw)) |
          0) +
          8388608) >>>
        24;
    }
  }
  // The first and last two pixels: clamp the neighbour columns.
  clampedBytes(src, so, out, oo, rowLen, C, radius, ww, fw, 0, C2);
  clampedBytes(src, so, out, oo, rowLen, C, radius, ww, fw, end, rowLen);
}

/**
 * Values [from, to) of one radius-0/1 pass along a row, with the neighbour pixels clamped
 * to the row (what the running sum of BoxBlur.c gives at the ends of a line).
 */
function clampedBytes(
  src: Uint8Array,
  so: number,
  out: Uint8Array,
  oo: number,
  rowLen: number,
  C: number,
  radius: number,
  ww: number,
  fw: number,
  from: number,
  to: number,
): void {
  const C2 = 2 * C;
  const last = rowLen - C;
  for (let i = from; i < to; i++) {
    const c = i % C;
    const p = i - c; // this pixel's first value
    const m2 = p - C2 < 0 ? 0 : p - C2;
    const m1 = p - C < 0 ? 0 : p - C;
    const p1 = p + C > last ? last : p + C;
    const p2 = p + C2 > last ? last : p + C2;
    const s = so + c;
    const v =
      radius === 0
        ? Math.imul(src[s + p], ww) + Math.imul(src[s + m1] + src[s + p1], fw)
        : Math.imul(src[s + m1] + src[s + p] + src[s + p1], ww) +
          Math.imul(src[s + m2] + src[s + p2], fw);
    out[oo + i] = ((v | 0) + 8388608) >>> 24;
  }
}

/*
 * Word-at-a-time (SWAR) radius-0/1 passes: four uint8 values are read as one little-endian
 * uint32 word and split into two words of two 16-bit lanes (bytes 0 and 2, bytes 1 and 3);
 * the neighbour sums (≤ 3·255) are added lane-wise, then each lane gets Pillow's fixed-point
 * weighting exactly as in the scalar passes, and the four bytes are packed back into a word.
 */

const LO = 0x00ff00ff;

/** Pack the four results of one word: lanes of `e` (bytes 0, 2) and `o` (bytes 1, 3). */
function weighWord(
  s3e: number,
  s2e: number,
  s3o: number,
  s2o: number,
  ww: number,
  fw: number,
): number {
  const b0 = (Math.imul(s3e & 0xffff, ww) + Math.imul(s2e & 0xffff, fw) + 8388608) >>> 24;
  const b2 = (Math.imul(s3e >>> 16, ww) + Math.imul(s2e >>> 16, fw) + 8388608) >>> 24;
  const b1 = (Math.imul(s3o & 0xffff, ww) + Math.imul(s2o & 0xffff, fw) + 8388608) >>> 24;
  const b3 = (Math.imul(s3o >>> 16, ww) + Math.imul(s2o >>> 16, fw) + 8388608) >>> 24;
  return b0 | (b1 << 8) | (b2 << 16) | (b3 << 24);
}

/**
 * One radius-0/1 pass along an RGB row of rowLen values (a multiple of 4, ≥ 20) starting at
 * byte `so` of src (word so/4 of s32) into out at `oo`: the neighbours at ±3 and ±6 bytes are
 * assembled from the aligned words around, the first 8 and last 8 values are done clamped.
 */
function horizontalPassWords(
  src: Uint8Array,
  s32: Uint32Array,
  so: number,
  out: Uint8Array,
  o32: Uint32Array,
  oo: number,
  rowLen: number,
  radius: number,
  ww: number,
  fw: number,
): void {
  const q = rowLen >> 2;
  const sw = so >> 2;
  const ow = oo >> 2;
  clampedBytes(src, so, out, oo, rowLen, 3, radius, ww, fw, 0, 8);
  clampedBytes(src, so, out, oo, rowLen, 3, radius, ww, fw, 4 * (q - 2), rowLen);
  let w0 = s32[sw];
  let w1 = s32[sw + 1];
  let w2 = s32[sw + 2];
  let w3 = s32[sw + 3];
  // Word k holds values 4k..4k+3 (k from 2 to q−3): w0..w4 are words k−2..k+2.
  for (let k = 2; k <= q - 3; k++) {
    const w4 = s32[sw + k + 2];
    const m3 = (w1 >>> 8) | (w2 << 24); // values 4k−3 .. 4k
    const p3 = (w2 >>> 24) | (w3 << 8); // values 4k+3 .. 4k+6
    if (radius === 0) {
      o32[ow + k] = weighWord(
        w2 & LO,
        (m3 & LO) + (p3 & LO),
        (w2 >>> 8) & LO,
        ((m3 >>> 8) & LO) + ((p3 >>> 8) & LO),
        ww,
        fw,
      );
    } else {
      const m6 = (w0 >>> 16) | (w1 << 16); // values 4k−6 .. 4k−3
      const p6 = (w3 >>> 16) | (w4 << 16); // values 4k+6 .. 4k+9
      o32[ow + k] = weighWord(
        (m3 & LO) + (w2 & LO) + (p3 & LO),
        (m6 & LO) + (p6 & LO),
        ((m3 >>> 8) & LO) + ((w2 >>> 8) & LO) + ((p3 >>> 8) & LO),
        ((m6 >>> 8) & LO) + ((p6 >>> 8) & LO),
        ww,
        fw,
      );
    }
    w0 = w1;
    w1 = w2;
    w2 = w3;
    w3 = w4;
  }
}

/** `verticalPassSmall` on words: rows of q words, every word lane an independent column. */
function verticalPassWords(
  src: Uint32Array,
  out: Uint32Array,
  H: number,
  q: number,
  radius: number,
  ww: number,
  fw: number,
): void {
  const last = H - 1;
  for (let y = 0; y < H; y++) {
    const o = y * q;
    const u = (y < 1 ? 0 : y - 1) * q;
    const d = (y + 1 > last ? last : y + 1) * q;
    if (radius === 0) {
      for (let i = 0; i < q; i++) {
        const a = src[u + i];
        const b = src[o + i];
        const c = src[d + i];
        out[o + i] = weighWord(
          b & LO,
          (a & LO) + (c & LO),
          (b >>> 8) & LO,
          ((a >>> 8) & LO) + ((c >>> 8) & LO),
          ww,
          fw,
        );
      }
    } else {
      const uu = (y < 2 ? 0 : y - 2) * q;
      const dd = (y + 2 > last ? last : y + 2) * q;
      for (let i = 0; i < q; i++) {
        const a = src[u + i];
        const b = src[o + i];
        const c = src[d + i];
        const e = src[uu + i];
        const f = src[dd + i];
        out[o + i] = weighWord(
          (a & LO) + (b & LO) + (c & LO),
          (e & LO) + (f & LO),
          ((a >>> 8) & LO) + ((b >>> 8) & LO) + ((c >>> 8) & LO),
          ((e >>> 8) & LO) + ((f >>> 8) & LO),
          ww,
          fw,
        );
      }
    }
  }
}

/**
 * One extended-box pass along a line of n pixels with C interleaved channels, from
 * src[so…] to out[oo…] (distinct arrays); needs n ≥ 2·radius + 2.
 */
function boxPassInterleaved(
  src: Uint8Array,
  so: number,
  out: Uint8Array,
  oo: number,
  n: number,
  C: number,
  radius: number,
  ww: number,
  fw: number,
): void {
  const lastx = n - 1;
  const edgeA = radius + 1;
  const edgeB = n - radius - 1;
  const R = radius * C;
  const R1 = R + C;
  for (let c = 0; c < C; c++) {
    const s0 = so + c;
    const sl = s0 + lastx * C;
    const first = src[s0];
    const last = src[sl];
    let acc = first * (radius + 1);
    for (let x = 0, s = s0; x < edgeA - 1; x++, s += C) acc += src[s];
    let s = s0;
    let o = oo + c;
    let x = 0;
    for (; x < edgeA; x++, s += C, o += C) {
      acc += src[s + R] - first;
      out[o] = (((Math.imul(acc, ww) + Math.imul(first + src[s + R1], fw)) | 0) + 8388608) >>> 24;
    }
    for (; x < edgeB; x++, s += C, o += C) {
      const left = src[s - R1];
      acc += src[s + R] - left;
      out[o] = (((Math.imul(acc, ww) + Math.imul(left + src[s + R1], fw)) | 0) + 8388608) >>> 24;
    }
    for (; x <= lastx; x++, s += C, o += C) {
      const left = src[s - R1];
      acc += last - left;
      out[o] = (((Math.imul(acc, ww) + Math.imul(left + last, fw)) | 0) + 8388608) >>> 24;
    }
  }
}

/**
 * `PASSES` vertical passes, in place: every one of the rowLen columns is an independent
 * line, all advanced together row by row (needs H ≥ 2·radius + 2).
 */
function verticalBlur(
  data: Uint8Array,
  H: number,
  rowLen: number,
  radius: number,
  ww: number,
  fw: number,
): void {
  const n = H * rowLen;
  if (planeA.length < n) {
    const m = (n + 3) & ~3;
    planeA = new Uint8Array(m);
    planeB = new Uint8Array(m);
    planeA32 = new Uint32Array(planeA.buffer);
    planeB32 = new Uint32Array(planeB.buffer);
  }
  if (radius <= 1 && LITTLE_ENDIAN && rowLen % 4 === 0 && data.byteOffset % 4 === 0) {
    const q = rowLen >> 2;
    const d32 = new Uint32Array(data.buffer, data.byteOffset, n >> 2);
    verticalPassWords(d32, planeA32, H, q, radius, ww, fw);
    verticalPassWords(planeA32, planeB32, H, q, radius, ww, fw);
    verticalPassWords(planeB32, d32, H, q, radius, ww, fw);
    return;
  }
  if (radius <= 1) {
    verticalPassSmall(data, planeA, H, rowLen, radius, ww, fw);
    verticalPassSmall(planeA, planeB, H, rowLen, radius, ww, fw);
    verticalPassSmall(planeB, data, H, rowLen, radius, ww, fw);
    return;
  }
  if (colAcc.length < rowLen) colAcc = new Int32Array(rowLen);
  verticalPass(data, planeA, H, rowLen, radius, ww, fw, colAcc);
  verticalPass(planeA, planeB, H, rowLen, radius, ww, fw, colAcc);
  verticalPass(planeB, data, H, rowLen, radius, ww, fw, colAcc);
}

/**
 * `verticalPass` for radius 0 or 1 (σ up to about 2.4): the running sum of a standard-branch
 * line is the sum of its 2·radius + 1 edge-clamped neighbours, so each value is computed
 * from its rows directly (the same integers, without the accumulator array).
 */
function verticalPassSmall(
  src: Uint8Array,
  out: Uint8Array,
  H: number,
  rowLen: number,
  radius: number,
  ww: number,
  fw: number,
): void {
  const last = H - 1;
  const row = (y: number) => (y < 0 ? 0 : y > last ? last : y) * rowLen;
  for (let y = 0; y < H; y++) {
    const o = y * rowLen;
    if (radius === 0) {
      const m = row(y);
      const u = row(y - 1);
      const d = row(y + 1);
      for (let i = 0; i < rowLen; i++) {
        out[o + i] =
          (((Math.imul(src[m + i], ww) + Math.imul(src[u + i] + src[d + i], fw)) | 0) + 8388608) >>>
          24;
      }
    } else {
      const m = row(y);
      const u = row(y - 1);
      const d = row(y + 1);
      const uu = row(y - 2);
      const dd = row(y + 2);
      for (let i = 0; i < rowLen; i++) {
        out[o + i] =
          (((Math.imul(src[u + i] + src[m + i] + src[d + i], ww) +
            Math.imul(src[uu + i] + src[dd + i], fw)) |
            0) +
            8388608) >>>
          24;
      }
    }
  }
}

function verticalPass(
  src: Uint8Array,
  out: Uint8Array,
  H: number,
  rowLen: number,
  radius: number,
  ww: number,
  fw: number,
  acc: Int32Array,
): void {
  const lastRow = (H - 1) * rowLen;
  for (let i = 0; i < rowLen; i++) acc[i] = src[i] * (radius + 1);
  for (let y = 0; y < radius; y++) {
    const r = y * rowLen;
    for (let i = 0; i < rowLen; i++) acc[i] += src[r + i];
  }
  for (let y = 0; y < H; y++) {
    const add = (y + radius < H - 1 ? y + radius : H - 1) * rowLen;
    const sub = (y - radius - 1 > 0 ? y - radius - 1 : 0) * rowLen;
    const far = y + radius + 1 < H - 1 ? (y + radius + 1) * rowLen : lastRow;
    let o = y * rowLen;
    for (let i = 0; i < rowLen; i++, o++) {
      const left = src[sub + i];
      const a = acc[i] + src[add + i] - left;
      acc[i] = a;
      out[o] = (((Math.imul(a, ww) + Math.imul(left + src[far + i], fw)) | 0) + 8388608) >>> 24;
    }
  }
}
