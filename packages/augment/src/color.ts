import type { ImageU8 } from '@maskcon/datasets';
import { checkImage } from './image.js';

/*
 * Pixel-value operations with Pillow's arithmetic (ImageEnhance, ImageOps, Image.blend,
 * convert('L'), the HSV round trip torchvision uses for hue). Pillow computes blends in
 * float32 and truncates, so the float32 steps are reproduced with Math.fround.
 */

const f32 = Math.fround;

function checkColourImage(img: ImageU8, op: string): void {
  checkImage(img, op);
  if (img.channels !== 1 && img.channels !== 3) {
    throw new Error(
      `${op}: needs a 1-channel (L) or 3-channel (RGB) image, got ${img.channels} channels.`,
    );
  }
}

function like(img: ImageU8, data: Uint8Array): ImageU8 {
  return { data, height: img.height, width: img.width, channels: img.channels };
}

/** PIL's RGB → L luma: (R·19595 + G·38470 + B·7471 + 2¹⁵) >> 16 (ITU-R 601-2 weights). */
export function luma(r: number, g: number, b: number): number {
  return (r * 19595 + g * 38470 + b * 7471 + 0x8000) >> 16;
}

/** `img.convert('L')` as an H×W×1 image (a copy for 1-channel input). */
export function toLuma(img: ImageU8): ImageU8 {
  checkColourImage(img, 'toLuma');
  const n = img.height * img.width;
  if (img.channels === 1) return like(img, img.data.slice());
  const src = img.data;
  const out = new Uint8Array(n);
  for (let i = 0, s = 0; i < n; i++, s += 3) out[i] = luma(src[s], src[s + 1], src[s + 2]);
  return { data: out, height: img.height, width: img.width, channels: 1 };
}

/**
 * torchvision `rgb_to_grayscale(img, num_output_channels = img.channels)` on a PIL image:
 * convert('L'), replicated to three channels for RGB input.
 */
export function grayscale(img: ImageU8): ImageU8 {
  checkColourImage(img, 'grayscale');
  if (img.channels === 1) return like(img, img.data.slice());
  const src = img.data;
  const out = new Uint8Array(src.length);
  for (let s = 0; s < src.length; s += 3) {
    const v = luma(src[s], src[s + 1], src[s + 2]);
    out[s] = v;
    out[s + 1] = v;
    out[s + 2] = v;
  }
  return like(img, out);
}

/** One value of `Image.blend(a, b, alpha)`: a + alpha·(b − a) in float32, truncated (clipped when extrapolating). */
function blendValue(a: number, b: number, alpha: number): number {
  const t = f32(a + f32(alpha * (b - a)));
  if (t <= 0) return 0;
  if (t >= 255) return 255;
  return t | 0;
}

/** `Image.blend(degenerate, img, factor)` into a new buffer; alpha is float32 as in Pillow. */
function blendArrays(degenerate: Uint8Array, img: Uint8Array, factor: number): Uint8Array {
  const alpha = f32(factor);
  const out = new Uint8Array(img.length);
  for (let i = 0; i < img.length; i++) out[i] = blendValue(degenerate[i], img[i], alpha);
  return out;
}

/** Per-value table of a blend against a constant degenerate image. */
export function constantBlendTable(constant: number, factor: number): Uint8Array {
  const alpha = f32(factor);
  const t = new Uint8Array(256);
  for (let v = 0; v < 256; v++) t[v] = blendValue(constant, v, alpha);
  return t;
}

/** Apply one 256-entry table to every channel, or `tables[c]` (length 256·C) per channel. */
export function applyTable(img: ImageU8, table: Uint8Array): ImageU8 {
  checkImage(img, 'applyTable');
  const src = img.data;
  const out = new Uint8Array(src.length);
  const C = img.channels;
  if (table.length === 256) {
    for (let i = 0; i < src.length; i++) out[i] = table[src[i]];
  } else if (table.length === 256 * C) {
    for (let i = 0; i < src.length; i += C)
      for (let c = 0; c < C; c++) out[i + c] = table[c * 256 + src[i + c]];
  } else {
    throw new Error(
      `applyTable: a table has 256 or 256×channels entries, got ${table.length} for ${C} channels.`,
    );
  }
  return like(img, out);
}

/** torchvision `adjust_brightness` = `ImageEnhance.Brightness(img).enhance(factor)` (blend with black). */
export function adjustBrightness(img: ImageU8, factor: number): ImageU8 {
  checkColourImage(img, 'adjustBrightness');
  return applyTable(img, constantBlendTable(0, factor));
}

/** Mean grey level of `img.convert('L')`, rounded as ImageEnhance.Contrast rounds it. */
export function contrastMean(img: ImageU8): number {
  checkColourImage(img, 'contrastMean');
  const src = img.data;
  const n = img.height * img.width;
  let sum = 0;
  if (img.channels === 1) {
    for (let i = 0; i < n; i++) sum += src[i];
  } else {
    for (let s = 0; s < 3 * n; s += 3)
      sum += (src[s] * 19595 + src[s + 1] * 38470 + src[s + 2] * 7471 + 0x8000) >> 16;
  }
  return Math.floor(sum / n + 0.5);
}

/** torchvision `adjust_contrast` = `ImageEnhance.Contrast(img).enhance(factor)` (blend with the mean grey). */
export function adjustContrast(img: ImageU8, factor: number): ImageU8 {
  checkColourImage(img, 'adjustContrast');
  return applyTable(img, constantBlendTable(contrastMean(img), factor));
}

/** torchvision `adjust_saturation` = `ImageEnhance.Color(img).enhance(factor)` (blend with its greyscale). */
export function adjustSaturation(img: ImageU8, factor: number): ImageU8 {
  checkColourImage(img, 'adjustSaturation');
  if (img.channels === 1) return like(img, img.data.slice()); // blending L with itself is the identity
  const out = new Uint8Array(img.data.length);
  saturationInto(img.data, out, factor);
  return like(img, out);
}

// f32(alpha · d) for d = −255…255 at index d + 255, reused between calls.
const blendDelta = new Float64Array(511);

/** adjustSaturation's pixel loop on RGB buffers (src → out, may be the same array). */
export function saturationInto(src: Uint8Array, out: Uint8Array, factor: number): void {
  const alpha = f32(factor);
  const delta = blendDelta;
  for (let d = -255; d <= 255; d++) delta[d + 255] = f32(alpha * d);
  const n = src.length - (src.length % 3);
  for (let s = 0; s < n; s += 3) {
    const r = src[s];
    const gr = src[s + 1];
    const b = src[s + 2];
    const g = (r * 19595 + gr * 38470 + b * 7471 + 0x8000) >> 16;
    // blendValue(g, v, alpha) = f32(g + f32(alpha·(v − g))), truncated and clipped
    const t0 = f32(g + delta[r - g + 255]);
    const t1 = f32(g + delta[gr - g + 255]);
    const t2 = f32(g + delta[b - g + 255]);
    out[s] = t0 <= 0 ? 0 : t0 >= 255 ? 255 : t0 | 0;
    out[s + 1] = t1 <= 0 ? 0 : t1 >= 255 ? 255 : t1 | 0;
    out[s + 2] = t2 <= 0 ? 0 : t2 >= 255 ? 255 : t2 | 0;
  }
}

const SMOOTH_EDGE = f32(f32(1) / f32(13));
const SMOOTH_CENTRE = f32(f32(5) / f32(13));

/**
 * `img.filter(ImageFilter.SMOOTH)`: the 3×3 kernel [1 1 1; 1 5 1; 1 1 1]/13 in float32 with
 * +0.5 rounding, border rows and columns copied unchanged (as Pillow's 3×3 filter does).
 */
export function smooth(img: ImageU8): ImageU8 {
  checkColourImage(img, 'smooth');
  const { height: H, width: W, channels: C, data: src } = img;
  const out = src.slice();
  if (H < 3 || W < 3) return like(img, out);
  const stride = W * C;
  const k = SMOOTH_EDGE;
  const k5 = SMOOTH_CENTRE;
  for (let y = 1; y < H - 1; y++) {
    const r0 = (y - 1) * stride; // Pillow's kernel rows are applied bottom row first
    const r1 = y * stride;
    const r2 = (y + 1) * stride;
    for (let x = 1; x < W - 1; x++) {
      for (let c = 0; c < C; c++) {
        const i = x * C + c;
        let ss = 0.5;
        ss = f32(
          ss + f32(f32(f32(src[r2 + i - C] * k) + f32(src[r2 + i] * k)) + f32(src[r2 + i + C] * k)),
        );
        ss = f32(
          ss +
            f32(f32(f32(src[r1 + i - C] * k) + f32(src[r1 + i] * k5)) + f32(src[r1 + i + C] * k)),
        );
        ss = f32(
          ss + f32(f32(f32(src[r0 + i - C] * k) + f32(src[r0 + i] * k)) + f32(src[r0 + i + C] * k)),
        );
        out[r1 + i] = ss <= 0 ? 0 : ss >= 255 ? 255 : ss | 0;
      }
    }
  }
  return like(img, out);
}

/** `ImageEnhance.Sharpness(img).enhance(factor)`: blend with the SMOOTH-filtered image. */
export function adjustSharpness(img: ImageU8, factor: number): ImageU8 {
  checkColourImage(img, 'adjustSharpness');
  return like(img, blendArrays(smooth(img).data, img.data, factor));
}

/** The uint8 hue shift torchvision adds to PIL's H channel: `np.uint8(hue_factor * 255)` (wrapping). */
export function hueShift(hueFactor: number): number {
  return ((Math.trunc(hueFactor * 255) % 256) + 256) % 256;
}

/**
 * torchvision `adjust_hue` on a PIL image: convert('HSV') with Pillow's rgb2hsv (float32
 * steps, truncation to uint8), add the uint8 shift to H modulo 256, convert back with
 * Pillow's hsv2rgb (rounded). Greyscale (L) images are returned unchanged.
 */
export function adjustHue(img: ImageU8, hueFactor: number): ImageU8 {
  checkColourImage(img, 'adjustHue');
  if (!(hueFactor >= -0.5 && hueFactor <= 0.5)) {
    throw new Error(`adjustHue: hue factor must be in [-0.5, 0.5], got ${hueFactor}.`);
  }
  if (img.channels === 1) return like(img, img.data.slice());
  const shift = hueShift(hueFactor);
  const src = img.data;
  const out = new Uint8Array(src.length);
  hueInto(src, out, shift);
  return like(img, out);
}

/** Pillow's rgb2hsv hue (uint8) of one pixel with maxc ≠ minc, the float32 steps as written. */
function rgbHue(r: number, g: number, b: number): number {
  const maxc = r > g ? (r > b ? r : b) : g > b ? g : b;
  const minc = r < g ? (r < b ? r : b) : g < b ? g : b;
  const cr = maxc - minc;
  const rc = f32((maxc - r) / cr);
  const gc = f32((maxc - g) / cr);
  const bc = f32((maxc - b) / cr);
  let h: number;
  if (r === maxc) h = f32(bc - gc);
  else if (g === maxc) h = f32(2.0 + rc - bc);
  else h = f32(4.0 + gc - rc);
  h = f32((h / 6.0 + 1.0) % 1.0);
  const uh = Math.trunc(h * 255.0);
  return uh < 0 ? 0 : uh > 255 ? 255 : uh;
}

/*
 * Lookup tables for the RGB → HSV half of adjustHue, built once on first use. Pillow's hue
 * depends only on which channel is the maximum (r first on ties, then g), which is the
 * minimum, the range cr = max − min and d = max − (the remaining channel); its saturation
 * only on cr and max. The tables hold exactly what rgbHue / the float32 saturation give.
 *   HUE_LUT[(k·256 + cr)·256 + d], k = 2·(max channel) + (0 if the lower-indexed other channel is the minimum else 1)
 *   SAT_LUT[cr·256 + max]
 */
let HUE_LUT: Uint8Array | null = null;
let SAT_LUT: Uint8Array | null = null;

function hueTables(): [Uint8Array, Uint8Array] {
  if (HUE_LUT && SAT_LUT) return [HUE_LUT, SAT_LUT];
  const hue = new Uint8Array(6 * 256 * 256);
  const sat = new Uint8Array(256 * 256);
  for (let cr = 1; cr < 256; cr++) {
    for (let maxc = cr; maxc < 256; maxc++) {
      const us = Math.trunc(f32(cr / maxc) * 255.0);
      sat[cr * 256 + maxc] = us < 0 ? 0 : us > 255 ? 255 : us;
    }
    for (let d = 0; d <= cr; d++) {
      const mid = cr - d; // with min = 0 and max = cr, the remaining channel
      const base = cr * 256 + d;
      // max r: min g (k 0) or min b (k 1); max g (r < max): min r (k 2) or b (k 3);
      // max b (r, g < max): min r (k 4) or g (k 5). Combinations impossible under the tie
      // rules (the remaining channel equal to max where that would change the max) are
      // never looked up.
      hue[0 * 65536 + base] = rgbHue(cr, 0, mid);
      hue[1 * 65536 + base] = rgbHue(cr, mid, 0);
      hue[2 * 65536 + base] = rgbHue(0, cr, mid);
      hue[3 * 65536 + base] = rgbHue(mid, cr, 0);
      hue[4 * 65536 + base] = rgbHue(0, mid, cr);
      hue[5 * 65536 + base] = rgbHue(mid, 0, cr);
    }
  }
  HUE_LUT = hue;
  SAT_LUT = sat;
  return [hue, sat];
}

// Per-hue terms of Pillow's hsv2rgb: the sector i % 6 and the float32 fraction f.
const HSV_SECTOR = new Uint8Array(256);
const HSV_FRACTION = new Float64Array(256);
for (let h = 0; h < 256; h++) {
  const i = Math.floor((h * 6.0) / 255.0);
  HSV_SECTOR[h] = i % 6;
  HSV_FRACTION[h] = f32((h * 6.0) / 255.0 - i);
}
// fs = float32(s / 255) per saturation.
const HSV_FS = new Float64Array(256);
for (let s = 0; s < 256; s++) HSV_FS[s] = f32(s / 255.0);

/** adjustHue's pixel loop on RGB buffers (src → out, may be the same array). */
export function hueInto(src: Uint8Array, out: Uint8Array, shift: number): void {
  const [hueLut, satLut] = hueTables();
  const n = src.length - (src.length % 3);
  for (let s = 0; s < n; s += 3) {
    const r = src[s];
    const g = src[s + 1];
    const b = src[s + 2];
    let maxc: number;
    let cr: number;
    let key: number;
    if (r >= g && r >= b) {
      // r is the max (ties go to r)
      maxc = r;
      if (g <= b) {
        cr = r - g;
        key = (cr << 8) + (r - b);
      } else {
        cr = r - b;
        key = 65536 + (cr << 8) + (r - g);
      }
    } else if (g >= b) {
      // g is the max (r < g)
      maxc = g;
      if (r <= b) {
        cr = g - r;
        key = 131072 + (cr << 8) + (g - b);
      } else {
        cr = g - b;
        key = 196608 + (cr << 8) + (g - r);
      }
    } else {
      maxc = b;
      if (r <= g) {
        cr = b - r;
        key = 262144 + (cr << 8) + (b - g);
      } else {
        cr = b - g;
        key = 327680 + (cr << 8) + (b - r);
      }
    }
    if (cr === 0) {
      // s = 0 in HSV: the way back gives grey v, whatever the hue.
      out[s] = maxc;
      out[s + 1] = maxc;
      out[s + 2] = maxc;
      continue;
    }
    const us = satLut[(cr << 8) + maxc];
    const hh = (hueLut[key] + shift) & 255;
    const v = maxc;
    if (us === 0) {
      out[s] = v;
      out[s + 1] = v;
      out[s + 2] = v;
      continue;
    }
    const f = HSV_FRACTION[hh];
    const fs = HSV_FS[us];
    const p = Math.round(v * (1.0 - fs));
    const q = Math.round(v * (1.0 - f32(fs * f)));
    const t = Math.round(v * (1.0 - fs * (1.0 - f)));
    switch (HSV_SECTOR[hh]) {
      case 0:
        out[s] = v;
        out[s + 1] = t;
        out[s + 2] = p;
        break;
      case 1:
        out[s] = q;
        out[s + 1] = v;
        out[s + 2] = p;
        break;
      case 2:
        out[s] = p;
        out[s + 1] = v;
        out[s + 2] = t;
        break;
      case 3:
        out[s] = p;
        out[s + 1] = q;
        out[s + 2] = v;
        break;
      case 4:
        out[s] = t;
        out[s + 1] = p;
        out[s + 2] = v;
        break;
      default:
        out[s] = v;
        out[s + 1] = p;
        out[s + 2] = q;
        break;
    }
  }
}

/** `ImageOps.invert`: 255 − v. */
export function invert(img: ImageU8): ImageU8 {
  checkColourImage(img, 'invert');
  const t = new Uint8Array(256);
  for (let v = 0; v < 256; v++) t[v] = 255 - v;
  return applyTable(img, t);
}

/** `ImageOps.posterize(img, bits)`: keep the top `bits` bits of every value. */
export function posterize(img: ImageU8, bits: number): ImageU8 {
  checkColourImage(img, 'posterize');
  if (!(Number.isInteger(bits) && bits >= 1 && bits <= 8)) {
    throw new Error(`posterize: bits must be an integer in 1..8, got ${bits}.`);
  }
  const mask = ~((1 << (8 - bits)) - 1) & 255;
  const t = new Uint8Array(256);
  for (let v = 0; v < 256; v++) t[v] = v & mask;
  return applyTable(img, t);
}

/** `ImageOps.solarize(img, threshold)`: values ≥ threshold are inverted. */
export function solarize(img: ImageU8, threshold: number): ImageU8 {
  checkColourImage(img, 'solarize');
  const t = new Uint8Array(256);
  for (let v = 0; v < 256; v++) t[v] = v < threshold ? v : 255 - v;
  return applyTable(img, t);
}

function histograms(img: ImageU8): Int32Array {
  const C = img.channels;
  const h = new Int32Array(256 * C);
  const src = img.data;
  for (let i = 0; i < src.length; i += C) for (let c = 0; c < C; c++) h[c * 256 + src[i + c]]++;
  return h;
}

/** `ImageOps.autocontrast(img)` (no cutoff): stretch each channel's [min, max] to [0, 255]. */
export function autocontrast(img: ImageU8): ImageU8 {
  checkColourImage(img, 'autocontrast');
  const C = img.channels;
  const h = histograms(img);
  const table = new Uint8Array(256 * C);
  for (let c = 0; c < C; c++) {
    const b = c * 256;
    let lo = 0;
    while (lo < 256 && h[b + lo] === 0) lo++;
    let hi = 255;
    while (hi >= 0 && h[b + hi] === 0) hi--;
    if (hi <= lo) {
      for (let v = 0; v < 256; v++) table[b + v] = v;
      continue;
    }
    const scale = 255.0 / (hi - lo);
    const offset = -lo * scale;
    for (let v = 0; v < 256; v++) {
      const x = Math.trunc(v * scale + offset);
      table[b + v] = x < 0 ? 0 : x > 255 ? 255 : x;
    }
  }
  return applyTable(img, table);
}

/** `ImageOps.equalize(img)`: Pillow's per-channel cumulative-histogram table. */
export function equalize(img: ImageU8): ImageU8 {
  checkColourImage(img, 'equalize');
  const C = img.channels;
  const h = histograms(img);
  const table = new Uint8Array(256 * C);
  for (let c = 0; c < C; c++) {
    const b = c * 256;
    let nonZero = 0;
    let total = 0;
    let last = 0;
    for (let v = 0; v < 256; v++) {
      if (h[b + v]) {
        nonZero++;
        total += h[b + v];
        last = h[b + v];
      }
    }
    const step = nonZero <= 1 ? 0 : Math.floor((total - last) / 255);
    if (step === 0) {
      for (let v = 0; v < 256; v++) table[b + v] = v;
      continue;
    }
    let n = Math.floor(step / 2);
    for (let v = 0; v < 256; v++) {
      const x = Math.floor(n / step);
      table[b + v] = x > 255 ? 255 : x;
      n += h[b + v];
    }
  }
  return applyTable(img, table);
}
