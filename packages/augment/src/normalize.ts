import type { ImageU8 } from '@maskcon/datasets';
import { checkImage } from './image.js';

/**
 * Per-channel lookup tables for ToTensor + Normalize: table[c*256 + v] = (v/255 − mean_c)/std_c,
 * each step rounded to float32 as torch does, so values are bit-identical to torchvision's.
 */
export class Normalizer {
  readonly mean: readonly number[];
  readonly std: readonly number[];
  private readonly tables = new Map<number, Float32Array>();

  constructor(mean: readonly number[], std: readonly number[]) {
    if (mean.length === 0 || mean.length !== std.length) {
      throw new Error(
        `Normalize needs one mean and one std per channel, got ${mean.length} means and ${std.length} stds.`,
      );
    }
    for (let c = 0; c < std.length; c++) {
      if (!Number.isFinite(mean[c]))
        throw new Error(`Normalize mean[${c}] must be finite, got ${mean[c]}.`);
      if (!(Number.isFinite(std[c]) && std[c] !== 0)) {
        throw new Error(`Normalize std[${c}] must be finite and non-zero, got ${std[c]}.`);
      }
    }
    this.mean = [...mean];
    this.std = [...std];
  }

  /** The table for a `channels`-channel image; a single mean/std is broadcast to all channels. */
  table(channels: number): Float32Array {
    let t = this.tables.get(channels);
    if (t) return t;
    const n = this.mean.length;
    if (n !== 1 && n !== channels) {
      throw new Error(
        `Normalize has ${n} means/stds but the image has ${channels} channels; give one value per channel (or a single value).`,
      );
    }
    const f = Math.fround;
    t = new Float32Array(256 * channels);
    for (let c = 0; c < channels; c++) {
      const m = f(this.mean[n === 1 ? 0 : c]);
      const s = f(this.std[n === 1 ? 0 : c]);
      for (let v = 0; v < 256; v++) t[c * 256 + v] = f(f(f(v / 255) - m) / s);
    }
    this.tables.set(channels, t);
    return t;
  }

  /**
   * Write `img` as HWC float32 into `out` starting at `offset` (a new array when `out` is
   * omitted). With `mirror`, columns are read right to left: a horizontal flip fused into
   * the copy. Returns the array written to.
   */
  apply(img: ImageU8, out?: Float32Array, offset = 0, mirror = false): Float32Array {
    checkImage(img, 'toNormalizedFloat');
    const { height, width, channels: C, data: src } = img;
    const n = height * width * C;
    const dst = out ?? new Float32Array(n);
    if (!(Number.isInteger(offset) && offset >= 0 && offset + n <= dst.length)) {
      throw new Error(
        `toNormalizedFloat: ${n} values at offset ${offset} do not fit in an output of length ${dst.length}; ` +
          'allocate N*H*W*C floats for a batch and pass offset i*H*W*C.',
      );
    }
    const t = this.table(C);
    const stride = width * C;
    // Source pixel step along a row: +C normally, −C when mirrored (start at the row's end).
    const step = mirror ? -C : C;
    const rowStart = mirror ? stride - C : 0;
    let o = offset;
    for (let y = 0; y < height; y++) {
      let s = y * stride + rowStart;
      if (C === 1) {
        for (let x = 0; x < width; x++, s += step) dst[o++] = t[src[s]];
      } else if (C === 3) {
        for (let x = 0; x < width; x++, s += step) {
          dst[o] = t[src[s]];
          dst[o + 1] = t[256 + src[s + 1]];
          dst[o + 2] = t[512 + src[s + 2]];
          o += 3;
        }
      } else {
        for (let x = 0; x < width; x++, s += step)
          for (let c = 0; c < C; c++) dst[o++] = t[c * 256 + src[s + c]];
      }
    }
    return dst;
  }
}

let lastNormalizer: Normalizer | null = null;

/**
 * torchvision `ToTensor()` + `Normalize(mean, std)`, but in HWC layout:
 * out[(y*W + x)*C + c] = (img[y, x, c]/255 − mean_c)/std_c as float32.
 * With `out`, writes at `offset` into that buffer (e.g. one slot of an NHWC batch) and returns it.
 */
export function toNormalizedFloat(
  img: ImageU8,
  mean: readonly number[],
  std: readonly number[],
  out?: Float32Array,
  offset = 0,
): Float32Array {
  let norm = lastNormalizer;
  if (!norm || !sameValues(norm.mean, mean) || !sameValues(norm.std, std)) {
    norm = new Normalizer(mean, std);
    lastNormalizer = norm;
  }
  return norm.apply(img, out, offset);
}

function sameValues(a: readonly number[], b: readonly number[]): boolean {
  if (a.length !== b.length) return false;
  for (let i = 0; i < a.length; i++) if (a[i] !== b[i]) return false;
  return true;
}
