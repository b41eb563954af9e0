import type { ImageU8 } from '@maskcon/datasets';
import { checkImage } from './image.js';

/*
 * Pillow's `Image.transform` engines (libImaging/Geometry.c) on HWC uint8 images. Every
 * output pixel centre (x + ½, y + ½) is mapped to input coordinates by the coefficients,
 * which (as in PIL) go from OUTPUT to INPUT. Pixels mapped outside the input get `fill`.
 *  - nearest affine: 16.16 fixed point when every corner maps within ±32768 (Pillow's
 *    `affine_fixed`), otherwise doubles accumulated pixel by pixel;
 *  - bilinear and bicubic: the generic engine, computed per pixel in doubles, truncated
 *    to uint8 (bicubic clipped first).
 */

/** Six affine coefficients (a, b, c, d, e, f): input x = a·x + b·y + c, input y = d·x + e·y + f. */
export type AffineCoefficients = readonly [number, number, number, number, number, number];
/** Eight perspective coefficients: x = (a·x + b·y + c)/(g·x + h·y + 1), y = (d·x + e·y + f)/(g·x + h·y + 1). */
export type PerspectiveCoefficients = readonly [
  number,
  number,
  number,
  number,
  number,
  number,
  number,
  number,
];

function fillValues(fill: number | readonly number[], channels: number, op: string): number[] {
  const values = typeof fill === 'number' ? new Array<number>(channels).fill(fill) : [...fill];
  if (values.length === 1 && channels > 1) while (values.length < channels) values.push(values[0]);
  if (
    values.length !== channels ||
    values.some((v) => !(Number.isInteger(v) && v >= 0 && v <= 255))
  ) {
    throw new Error(
      `${op}: fill must be one integer 0..255 or one per channel (${channels}), got ${JSON.stringify(fill)}.`,
    );
  }
  return values;
}

function filled(img: ImageU8, fill: number[]): Uint8Array {
  const out = new Uint8Array(img.data.length);
  const C = img.channels;
  if (fill.every((v) => v === fill[0])) {
    if (fill[0] !== 0) out.fill(fill[0]);
  } else {
    for (let i = 0; i < out.length; i += C) for (let c = 0; c < C; c++) out[i + c] = fill[c];
  }
  return out;
}

/** C's `(int)` on a double coordinate as Pillow's COORD macro uses it: −1 for negatives. */
function coord(v: number): number {
  return v < 0 ? -1 : Math.trunc(v);
}

/** Pillow's FLOOR macro. */
function floorInt(v: number): number {
  return v < 0 ? Math.floor(v) : Math.trunc(v);
}

/** `img.transform(size, AFFINE, a, NEAREST, fillcolor=fill)` (same output size as input). */
export function affineNearest(
  img: ImageU8,
  a: AffineCoefficients,
  fill: number | readonly number[] = 0,
): ImageU8 {
  checkImage(img, 'affineNearest');
  const { height: H, width: W, channels: C, data: src } = img;
  const out = filled(img, fillValues(fill, C, 'affineNearest'));
  const copyPixel = (o: number, yin: number, xin: number) => {
    const s = (yin * W + xin) * C;
    for (let c = 0; c < C; c++) out[o + c] = src[s + c];
  };
  if (a[1] === 0 && a[3] === 0) {
    // ImagingScaleAffine: a pretabulated column for each output x.
    let xo = a[2] + a[0] * 0.5;
    let yo = a[5] + a[4] * 0.5;
    const xin = new Int32Array(W);
    for (let x = 0; x < W; x++) {
      xin[x] = coord(xo);
      xo += a[0];
    }
    for (let y = 0; y < H; y++) {
      const yi = coord(yo);
      if (yi >= 0 && yi < H) {
        for (let x = 0; x < W; x++)
          if (xin[x] >= 0 && xin[x] < W) copyPixel((y * W + x) * C, yi, xin[x]);
      }
      yo += a[4];
    }
    return { data: out, height: H, width: W, channels: C };
  }
  const fits = (x: number, y: number) =>
    Math.abs(x * a[0] + y * a[1] + a[2]) < 32768.0 &&
    Math.abs(x * a[3] + y * a[4] + a[5]) < 32768.0;
  if (fits(0, 0) && fits(W, H) && fits(0, H) && fits(W, 0)) {
    const fix = (v: number) => floorInt(v * 65536.0 + 0.5) | 0;
    const a0 = fix(a[0]);
    const a1 = fix(a[1]);
    const a3 = fix(a[3]);
    const a4 = fix(a[4]);
    let a2 = fix(a[2] + a[0] * 0.5 + a[1] * 0.5);
    let a5 = fix(a[5] + a[3] * 0.5 + a[4] * 0.5);
    for (let y = 0; y < H; y++) {
      let xx = a2;
      let yy = a5;
      for (let x = 0; x < W; x++) {
        const xi = xx >> 16;
        if (xi >= 0 && xi < W) {
          const yi = yy >> 16;
          if (yi >= 0 && yi < H) copyPixel((y * W + x) * C, yi, xi);
        }
        xx = (xx + a0) | 0;
        yy = (yy + a3) | 0;
      }
      a2 = (a2 + a1) | 0;
      a5 = (a5 + a4) | 0;
    }
    return { data: out, height: H, width: W, channels: C };
  }
  let xo = a[2] + a[1] * 0.5 + a[0] * 0.5;
  let yo = a[5] + a[4] * 0.5 + a[3] * 0.5;
  for (let y = 0; y < H; y++) {
    let xx = xo;
    let yy = yo;
    for (let x = 0; x < W; x++) {
      const xi = coord(xx);
      if (xi >= 0 && xi < W) {
        const yi = coord(yy);
        if (yi >= 0 && yi < H) copyPixel((y * W + x) * C, yi, xi);
      }
      xx += a[0];
      yy += a[3];
    }
    xo += a[1];
    yo += a[4];
  }
  return { data: out, height: H, width: W, channels: C };
}

/** Pillow's bicubic (a = −1) interpolation of four samples at fraction d. */
function cubic(v1: number, v2: number, v3: number, v4: number, d: number): number {
  const p1 = v2;
  const p2 = -v1 + v3;
  const p3 = 2 * (v1 - v2) + v3 - v4;
  const p4 = -v1 + v2 - v3 + v4;
  return p1 + d * (p2 + d * (p3 + d * p4));
}

/** `img.transform(size, AFFINE, a, BICUBIC, fillcolor=fill)`. */
export function affineBicubic(
  img: ImageU8,
  a: AffineCoefficients,
  fill: number | readonly number[] = 0,
): ImageU8 {
  checkImage(img, 'affineBicubic');
  const { height: H, width: W, channels: C, data: src } = img;
  const out = filled(img, fillValues(fill, C, 'affineBicubic'));
  const [a0, a1, a2, a3, a4, a5] = a;
  const xs = [0, 0, 0, 0];
  for (let y = 0; y < H; y++) {
    const yin0 = y + 0.5;
    for (let x = 0; x < W; x++) {
      const xin0 = x + 0.5;
      let xin = a0 * xin0 + a1 * yin0 + a2;
      let yin = a3 * xin0 + a4 * yin0 + a5;
      if (xin < 0.0 || xin >= W || yin < 0.0 || yin >= H) continue;
      xin -= 0.5;
      yin -= 0.5;
      let xi = floorInt(xin);
      let yi = floorInt(yin);
      const dx = xin - xi;
      const dy = yin - yi;
      xi--;
      yi--;
      for (let k = 0; k < 4; k++) {
        const xx = xi + k;
        xs[k] = (xx < 0 ? 0 : xx < W ? xx : W - 1) * C;
      }
      const r0 = (yi < 0 ? 0 : yi < H ? yi : H - 1) * W * C;
      const o = (y * W + x) * C;
      for (let c = 0; c < C; c++) {
        const v1 = cubic(
          src[r0 + xs[0] + c],
          src[r0 + xs[1] + c],
          src[r0 + xs[2] + c],
          src[r0 + xs[3] + c],
          dx,
        );
        let v2 = v1;
        if (yi + 1 >= 0 && yi + 1 < H) {
          const r = (yi + 1) * W * C + c;
          v2 = cubic(src[r + xs[0]], src[r + xs[1]], src[r + xs[2]], src[r + xs[3]], dx);
        }
        let v3 = v2;
        if (yi + 2 >= 0 && yi + 2 < H) {
          const r = (yi + 2) * W * C + c;
          v3 = cubic(src[r + xs[0]], src[r + xs[1]], src[r + xs[2]], src[r + xs[3]], dx);
        }
        let v4 = v3;
        if (yi + 3 >= 0 && yi + 3 < H) {
          const r = (yi + 3) * W * C + c;
          v4 = cubic(src[r + xs[0]], src[r + xs[1]], src[r + xs[2]], src[r + xs[3]], dx);
        }
        const v = cubic(v1, v2, v3, v4, dy);
        out[o + c] = v <= 0.0 ? 0 : v >= 255.0 ? 255 : Math.trunc(v);
      }
    }
  }
  return { data: out, height: H, width: W, channels: C };
}

/** `img.transform(size, PERSPECTIVE, coeffs, BILINEAR, fillcolor=fill)`. */
export function perspectiveBilinear(
  img: ImageU8,
  coeffs: PerspectiveCoefficients,
  fill: number | readonly number[] = 0,
): ImageU8 {
  checkImage(img, 'perspectiveBilinear');
  const { height: H, width: W, channels: C } = img;
  const out = filled(img, fillValues(fill, C, 'perspectiveBilinear'));
  perspectiveBilinearOnto(img.data, H, W, C, coeffs, out);
  return { data: out, height: H, width: W, channels: C };
}

// Per-column terms a0·x, a3·x, a6·x (x = column + ½), reused between calls.
let colX = new Float64Array(0);
let colY = new Float64Array(0);
let colD = new Float64Array(0);

/**
 * The pixel loop of `perspectiveBilinear`: writes every output pixel that maps inside the
 * H×W×C source `src` into `out` (a distinct array), leaving the others as they are (the fill).
 * The arithmetic is Pillow's, in the same order: only loop-invariant products are hoisted.
 */
export function perspectiveBilinearOnto(
  src: Uint8Array,
  H: number,
  W: number,
  C: number,
  coeffs: PerspectiveCoefficients,
  out: Uint8Array,
): void {
  const [a0, a1, a2, a3, a4, a5, a6, a7] = coeffs;
  const stride = W * C;
  if (colX.length < W) {
    colX = new Float64Array(W);
    colY = new Float64Array(W);
    colD = new Float64Array(W);
  }
  const cx = colX;
  const cy = colY;
  const cd = colD;
  for (let x = 0; x < W; x++) {
    const xin0 = x + 0.5;
    cx[x] = a0 * xin0;
    cy[x] = a3 * xin0;
    cd[x] = a6 * xin0;
  }
  const W1 = W - 1;
  const H1 = H - 1;
  const Wh = W - 0.5;
  const Hh = H - 0.5;
  for (let y = 0; y < H; y++) {
    const yin0 = y + 0.5;
    const nx = a1 * yin0;
    const ny = a4 * yin0;
    const nd = a7 * yin0;
    let o = y * stride;
    for (let x = 0; x < W; x++, o += C) {
      const den = cd[x] + nd + 1;
      let xin = (cx[x] + nx + a2) / den;
      let yin = (cy[x] + ny + a5) / den;
      if (C === 3 && xin >= 0.5 && xin < Wh && yin >= 0.5 && yin < Hh) {
        // Interior, decided before the −½ shift (exact for these magnitudes): the sample
        // cell and its right/lower neighbours are inside, floor is truncation, and the
        // interpolated values lie in [0, 255], so storing truncates exactly as Math.trunc.
        xin -= 0.5;
        yin -= 0.5;
        const xi = xin | 0;
        const yi = yin | 0;
        const dx = xin - xi;
        const dy = yin - yi;
        const p0 = yi * stride + xi * 3;
        const p1 = p0 + stride;
        let p = src[p0];
        let v1 = p + (src[p0 + 3] - p) * dx;
        p = src[p1];
        let v2 = p + (src[p1 + 3] - p) * dx;
        out[o] = v1 + (v2 - v1) * dy;
        p = src[p0 + 1];
        v1 = p + (src[p0 + 4] - p) * dx;
        p = src[p1 + 1];
        v2 = p + (src[p1 + 4] - p) * dx;
        out[o + 1] = v1 + (v2 - v1) * dy;
        p = src[p0 + 2];
        v1 = p + (src[p0 + 5] - p) * dx;
        p = src[p1 + 2];
        v2 = p + (src[p1 + 5] - p) * dx;
        out[o + 2] = v1 + (v2 - v1) * dy;
        continue;
      }
      if (xin < 0.0 || xin >= W || yin < 0.0 || yin >= H) continue;
      xin -= 0.5;
      yin -= 0.5;
      const xi = Math.floor(xin);
      const yi = Math.floor(yin);
      const dx = xin - xi;
      const dy = yin - yi;
      if (xi >= 0 && xi < W1 && yi >= 0 && yi < H1) {
        // Interior: both neighbours in both directions exist.
        const p0 = yi * stride + xi * C;
        const p1 = p0 + stride;
        if (C === 3) {
          let p = src[p0];
          let v1 = p + (src[p0 + 3] - p) * dx;
          p = src[p1];
          let v2 = p + (src[p1 + 3] - p) * dx;
          out[o] = Math.trunc(v1 + (v2 - v1) * dy);
          p = src[p0 + 1];
          v1 = p + (src[p0 + 4] - p) * dx;
          p = src[p1 + 1];
          v2 = p + (src[p1 + 4] - p) * dx;
          out[o + 1] = Math.trunc(v1 + (v2 - v1) * dy);
          p = src[p0 + 2];
          v1 = p + (src[p0 + 5] - p) * dx;
          p = src[p1 + 2];
          v2 = p + (src[p1 + 5] - p) * dx;
          out[o + 2] = Math.trunc(v1 + (v2 - v1) * dy);
        } else {
          for (let c = 0; c < C; c++) {
            const p = src[p0 + c];
            const v1 = p + (src[p0 + C + c] - p) * dx;
            const q = src[p1 + c];
            const v2 = q + (src[p1 + C + c] - q) * dx;
            out[o + c] = Math.trunc(v1 + (v2 - v1) * dy);
          }
        }
        continue;
      }
      // Border: Pillow clamps the sample columns and the first row, and drops the second
      // row when it is outside.
      const x0 = (xi < 0 ? 0 : xi < W ? xi : W1) * C;
      const x1 = (xi + 1 < 0 ? 0 : xi + 1 < W ? xi + 1 : W1) * C;
      const r0 = (yi < 0 ? 0 : yi < H ? yi : H1) * stride;
      const hasNext = yi + 1 >= 0 && yi + 1 < H;
      const r1 = (yi + 1) * stride;
      for (let c = 0; c < C; c++) {
        const p = src[r0 + x0 + c];
        const v1 = p + (src[r0 + x1 + c] - p) * dx;
        let v2 = v1;
        if (hasNext) {
          const q = src[r1 + x0 + c];
          v2 = q + (src[r1 + x1 + c] - q) * dx;
        }
        out[o + c] = Math.trunc(v1 + (v2 - v1) * dy);
      }
    }
  }
}

/** A corner list [[x, y] × 4]: top-left, top-right, bottom-right, bottom-left. */
export type Corners = readonly (readonly [number, number])[];

/**
 * torchvision `_get_perspective_coeffs(startpoints, endpoints)`: the homography taking
 * output (end) points to input (start) points, solved in float64 and rounded to float32
 * as torchvision does before handing it to PIL.
 */
export function perspectiveCoefficients(
  startpoints: Corners,
  endpoints: Corners,
): PerspectiveCoefficients {
  if (startpoints.length !== 4 || endpoints.length !== 4) {
    throw new Error(
      `perspectiveCoefficients needs 4 start and 4 end points, got ${startpoints.length} and ${endpoints.length}.`,
    );
  }
  const A: number[][] = [];
  const b: number[] = [];
  for (let i = 0; i < 4; i++) {
    const [x, y] = endpoints[i];
    const [u, v] = startpoints[i];
    A.push([x, y, 1, 0, 0, 0, -u * x, -u * y]);
    A.push([0, 0, 0, x, y, 1, -v * x, -v * y]);
    b.push(u, v);
  }
  const n = 8;
  for (let col = 0; col < n; col++) {
    let pivot = col;
    for (let r = col + 1; r < n; r++) if (Math.abs(A[r][col]) > Math.abs(A[pivot][col])) pivot = r;
    if (Math.abs(A[pivot][col]) < 1e-12) {
      throw new Error(
        'perspectiveCoefficients: no homography with h33 = 1 maps these end points to the start points (degenerate or sending a point to infinity); choose other corners.',
      );
    }
    [A[col], A[pivot]] = [A[pivot], A[col]];
    [b[col], b[pivot]] = [b[pivot], b[col]];
    for (let r = col + 1; r < n; r++) {
      const k = A[r][col] / A[col][col];
      if (k === 0) continue;
      for (let c = col; c < n; c++) A[r][c] -= k * A[col][c];
      b[r] -= k * b[col];
    }
  }
  const x = new Array<number>(n).fill(0);
  for (let r = n - 1; r >= 0; r--) {
    let s = b[r];
    for (let c = r + 1; c < n; c++) s -= A[r][c] * x[c];
    x[r] = s / A[r][r];
  }
  return x.map((v) => Math.fround(v)) as unknown as PerspectiveCoefficients;
}

/** torchvision `F.perspective(img, startpoints, endpoints, BILINEAR, fill)` on a PIL image. */
export function perspective(
  img: ImageU8,
  startpoints: Corners,
  endpoints: Corners,
  fill: number | readonly number[] = 0,
): ImageU8 {
  return perspectiveBilinear(img, perspectiveCoefficients(startpoints, endpoints), fill);
}

/** Python's `round(x, 15)`. */
function round15(x: number): number {
  return Number(x.toFixed(15));
}

/**
 * Pillow's `Image.rotate(degrees)` matrix (counter-clockwise about the image centre,
 * expand=False): the affine map from output to input pixel coordinates.
 */
export function rotationCoefficients(
  width: number,
  height: number,
  degrees: number,
): AffineCoefficients {
  const angle = -((((degrees % 360.0) + 360.0) % 360.0) * (Math.PI / 180.0));
  const cx = width / 2.0;
  const cy = height / 2.0;
  const a = round15(Math.cos(angle));
  const b = round15(Math.sin(angle));
  const d = round15(-Math.sin(angle));
  const e = round15(Math.cos(angle));
  const c = a * -cx + b * -cy + 0.0 + cx;
  const f = d * -cx + e * -cy + 0.0 + cy;
  return [a, b, c, d, e, f];
}

/**
 * Rotate by `degrees` counter-clockwise with NEAREST sampling, corners filled with `fill` —
 * the AutoAugment `rotate_with_fill` (RGBA rotate composited over grey), which for 8-bit
 * images equals a nearest-neighbour rotation with that fill.
 */
export function rotate(
  img: ImageU8,
  degrees: number,
  fill: number | readonly number[] = 0,
): ImageU8 {
  checkImage(img, 'rotate');
  const r = ((degrees % 360.0) + 360.0) % 360.0;
  if (r === 0) return { ...img, data: img.data.slice() };
  if (r === 180 || ((r === 90 || r === 270) && img.width === img.height)) {
    // Pillow uses an exact transpose for these angles.
    const { height: H, width: W, channels: C, data: src } = img;
    const out = new Uint8Array(src.length);
    for (let y = 0; y < H; y++) {
      for (let x = 0; x < W; x++) {
        let sy: number;
        let sx: number;
        if (r === 180) {
          sy = H - 1 - y;
          sx = W - 1 - x;
        } else if (r === 90) {
          sy = x;
          sx = W - 1 - y;
        } else {
          sy = H - 1 - x;
          sx = y;
        }
        for (let c = 0; c < C; c++) out[(y * W + x) * C + c] = src[(sy * W + sx) * C + c];
      }
    }
    return { data: out, height: H, width: W, channels: C };
  }
  return affineNearest(img, rotationCoefficients(img.width, img.height, degrees), fill);
}
