import type { ImageU8 } from '@maskcon/datasets';
import { boxRadiusForSigma } from '../src/blur.js';

/*
 * Literal, unoptimised transcriptions of Pillow's C code (Resample.c, BoxBlur.c), kept only
 * as test oracles: the optimised src/resample.ts and src/blur.ts must give the same bytes.
 */

const PRECISION_BITS = 22;
const ONE = 2 ** PRECISION_BITS;
const HALF = 2 ** (PRECISION_BITS - 1);

/** Pillow's `precompute_coeffs` + `normalize_coeffs_8bpc` (triangle filter). */
function coeffs(inSize: number, outSize: number): { xmin: number[]; k: number[][] } {
  const scale = inSize / outSize;
  const filterScale = Math.max(1, scale);
  const support = filterScale;
  const xminAll: number[] = [];
  const kAll: number[][] = [];
  for (let o = 0; o < outSize; o++) {
    const center = (o + 0.5) * scale;
    const xmin = Math.max(0, Math.trunc(center - support + 0.5));
    const xmax = Math.min(inSize, Math.trunc(center + support + 0.5));
    const w: number[] = [];
    for (let x = xmin; x < xmax; x++)
      w.push(Math.max(0, 1 - Math.abs((x - center + 0.5) / filterScale)));
    const sum = w.reduce((a, b) => a + b, 0);
    kAll.push(
      w
        .map((v) => (sum !== 0 ? v / sum : v))
        .map((k) => (k < 0 ? Math.trunc(-0.5 + k * ONE) : Math.trunc(0.5 + k * ONE))),
    );
    xminAll.push(xmin);
  }
  return { xmin: xminAll, k: kAll };
}

const clip8 = (acc: number) => (acc >= 2 ** 30 ? 255 : acc <= 0 ? 0 : Math.floor(acc / ONE));

/** `img.crop((left, top, left+w, top+h)).resize((outW, outH), BILINEAR)`, literally. */
export function literalResizedCrop(
  img: ImageU8,
  top: number,
  left: number,
  h: number,
  w: number,
  outH: number,
  outW: number,
): ImageU8 {
  const C = img.channels;
  const at = (y: number, x: number, c: number) =>
    img.data[((top + y) * img.width + left + x) * C + c];
  let cur = { h, w, get: at };
  if (outW !== w) {
    const { xmin, k } = coeffs(w, outW);
    const mid = new Uint8Array(h * outW * C);
    for (let y = 0; y < h; y++)
      for (let x = 0; x < outW; x++)
        for (let c = 0; c < C; c++) {
          let acc = HALF;
          k[x].forEach((kk, t) => (acc += cur.get(y, xmin[x] + t, c) * kk));
          mid[(y * outW + x) * C + c] = clip8(acc);
        }
    cur = { h, w: outW, get: (y, x, c) => mid[(y * outW + x) * C + c] };
  }
  const out = new Uint8Array(outH * outW * C);
  if (outH !== h) {
    const { xmin, k } = coeffs(h, outH);
    for (let y = 0; y < outH; y++)
      for (let x = 0; x < outW; x++)
        for (let c = 0; c < C; c++) {
          let acc = HALF;
          k[y].forEach((kk, t) => (acc += cur.get(xmin[y] + t, x, c) * kk));
          out[(y * outW + x) * C + c] = clip8(acc);
        }
  } else {
    for (let y = 0; y < outH; y++)
      for (let x = 0; x < outW; x++)
        for (let c = 0; c < C; c++) out[(y * outW + x) * C + c] = cur.get(y, x, c);
  }
  return { data: out, height: outH, width: outW, channels: C };
}

/** BoxBlur.c `ImagingLineBoxBlur` (one pass along one line), as written. */
function lineBoxBlur(src: number[], n: number, radius: number, ww: number, fw: number): number[] {
  const out = new Array<number>(n);
  const lastx = n - 1;
  const edgeA = Math.min(radius + 1, n);
  const edgeB = Math.max(n - radius - 1, 0);
  let acc = src[0] * (radius + 1);
  for (let x = 0; x < edgeA - 1; x++) acc += src[x];
  acc += src[lastx] * (radius - edgeA + 1);
  const save = (x: number, bulk: number) => (out[x] = Math.floor((bulk + 2 ** 23) / 2 ** 24));
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
  return out;
}

/** `img.filter(ImageFilter.GaussianBlur(sigma))`: 3 passes along every row, then along every column. */
export function literalGaussianBlur(img: ImageU8, sigma: number): ImageU8 {
  const { height: H, width: W, channels: C } = img;
  const data = img.data.slice();
  const r = boxRadiusForSigma(sigma);
  if (r === 0) return { ...img, data };
  const f32 = Math.fround;
  const radius = Math.trunc(r);
  const ww = Math.trunc(f32(16777216 / f32(f32(r * 2) + 1)));
  const fw = Math.floor((16777216 - (radius * 2 + 1) * ww) / 2);
  const blur = (count: number, n: number, index: (line: number, i: number) => number) => {
    for (let line = 0; line < count; line++) {
      let v = Array.from({ length: n }, (_, i) => data[index(line, i)]);
      for (let p = 0; p < 3; p++) v = lineBoxBlur(v, n, radius, ww, fw);
      v.forEach((x, i) => (data[index(line, i)] = x));
    }
  };
  for (let c = 0; c < C; c++) blur(H, W, (y, x) => (y * W + x) * C + c);
  for (let c = 0; c < C; c++) blur(W, H, (x, y) => (y * W + x) * C + c);
  return { ...img, data };
}
