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
    throw new Error(`${op}: needs a 1-channel (L) or 3-channel (RGB) image, got ${img.channels} channels.`);
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
function constantBlendTable(constant: number, factor: number): Uint8Array {
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
    for (let i = 0; i < src.length; i += C) for (let c = 0; c < C; c++) out[i + c] = table[c * 256 + src[i + c]];
  } else {
    throw new Error(`applyTable: a table has 256 or 256×channels entries, got ${table.length} for ${C} channels.`);
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
  const grey = toLuma(img).data;
  let sum = 0;
  for (let i = 0; i < grey.length; i++) sum += grey[i];
  return Math.floor(sum / grey.length + 0.5);
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
  const src = img.data;
  const out = new Uint8Array(src.length);
  const alpha = f32(factor);
  for (let s = 0; s < src.length; s += 3) {
    const g = luma(src[s], src[s + 1], src[s + 2]);
    out[s] = blendValue(g, src[s], alpha);
    out[s + 1] = blendValue(g, src[s + 1], alpha);
    out[s + 2] = blendValue(g, src[s + 2], alpha);
  }
  return like(img, out);
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
        ss = f32(ss + f32(f32(f32(src[r2 + i - C] * k) + f32(src[r2 + i] * k)) + f32(src[r2 + i + C] * k)));
        ss = f32(ss + f32(f32(f32(src[r1 + i - C] * k) + f32(src[r1 + i] * k5)) + f32(src[r1 + i + C] * k)));
        ss = f32(ss + f32(f32(f32(src[r0 + i - C] * k) + f32(src[r0 + i] * k)) + f32(src[r0 + i + C] * k)));
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
  for (let s = 0; s < src.length; s += 3) {
    const r = src[s];
    const g = src[s + 1];
    const b = src[s + 2];
    const maxc = r > g ? (r > b ? r : b) : g > b ? g : b;
    const minc = r < g ? (r < b ? r : b) : g < b ? g : b;
    if (maxc === minc) {
      // s = 0 in HSV: the way back gives grey v, whatever the hue.
      out[s] = maxc;
      out[s + 1] = maxc;
      out[s + 2] = maxc;
      continue;
    }
    const cr = maxc - minc;
    const sat = f32(cr / maxc);
    const rc = f32((maxc - r) / cr);
    const gc = f32((maxc - g) / cr);
    const bc = f32((maxc - b) / cr);
    let h: number;
    if (r === maxc) h = f32(bc - gc);
    else if (g === maxc) h = f32(2.0 + rc - bc);
    else h = f32(4.0 + gc - rc);
    h = f32((h / 6.0 + 1.0) % 1.0);
    let uh = Math.trunc(h * 255.0);
    uh = uh < 0 ? 0 : uh > 255 ? 255 : uh;
    let us = Math.trunc(sat * 255.0);
    us = us < 0 ? 0 : us > 255 ? 255 : us;
    hsvToRgb((uh + shift) & 255, us, maxc, out, s);
  }
  return like(img, out);
}

function cround(x: number): number {
  return x < 0 ? -Math.round(-x) : Math.round(x);
}

function clip8(v: number): number {
  return v < 0 ? 0 : v > 255 ? 255 : v;
}

/** Pillow's hsv2rgb for one pixel, written at out[o..o+2]. */
function hsvToRgb(h: number, s: number, v: number, out: Uint8Array, o: number): void {
  if (s === 0) {
    out[o] = v;
    out[o + 1] = v;
    out[o + 2] = v;
    return;
  }
  const i = Math.floor((h * 6.0) / 255.0);
  const f = f32((h * 6.0) / 255.0 - i);
  const fs = f32(s / 255.0);
  const p = clip8(cround(v * (1.0 - fs)));
  const q = clip8(cround(v * (1.0 - f32(fs * f))));
  const t = clip8(cround(v * (1.0 - fs * (1.0 - f))));
  let r: number;
  let g: number;
  let b: number;
  switch (i % 6) {
    case 0: r = v; g = t; b = p; break;
    case 1: r = q; g = v; b = p; break;
    case 2: r = p; g = v; b = t; break;
    case 3: r = p; g = q; b = v; break;
    case 4: r = t; g = p; b = v; break;
    default: r = v; g = p; b = q; break;
  }
  out[o] = r;
  out[o + 1] = g;
  out[o + 2] = b;
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
