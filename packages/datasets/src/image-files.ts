import { availableParallelism } from 'node:os';
import { DatasetError } from './errors.js';
import type { DatasetRecord } from './source.js';
import type { ImageU8, Split } from './types.js';

/**
 * Decoding JPEG datasets (SOP, Cars196, user CSVs): every image is decoded once at build time
 * and stored resized to a short side (default 256, the size the paper's `Resize` feeds its
 * crops), so training never decodes a full-size JPEG again. The record also keeps the source
 * path.
 */

/** Decode the image file at `path` to u8 RGB (HWC) with its shorter side scaled to `shortSide`. */
export type ImageFileDecoder = (path: string, shortSide: number) => Promise<ImageU8>;

export const DEFAULT_SHORT_SIDE = 256;

/**
 * Bump when the default decoder's pixels change for the same file (colour conversion,
 * resampling), so indexes stop reusing pixels decoded the old way.
 */
export const IMAGE_DECODER_VERSION = '2'; // 2: CMYK converted as PIL does

/** The `ImageFileList.decodeKey` of a JPEG source storing copies with this short side. */
export function imageDecodeKey(shortSide: number): string {
  return JSON.stringify({ decoder: IMAGE_DECODER_VERSION, shortSide });
}

/** An image a build left out under `--skip-bad`. */
export interface SkippedImage {
  readonly dataset: string;
  readonly split: Split;
  readonly path: string;
  /** The metadata entry that named it, e.g. `Ebay_train.txt line 12`. */
  readonly where: string;
  readonly reason: string;
}

export interface ImageFileOptions {
  /** Shorter side of the stored copy in pixels (default 256). */
  readonly shortSide?: number;
  /** Decoder to use; default sharp (see `loadSharpDecoder`). Tests and callers may inject one. */
  readonly decoder?: ImageFileDecoder;
  /** Decodes in flight at once (default 2 × cores, at least 2: sharp works on libuv threads). */
  readonly concurrency?: number;
  /** Leave out images that fail to decode instead of stopping the build. */
  readonly skipBad?: boolean;
  /** Told about every image left out under `skipBad`. */
  readonly onSkip?: (skipped: SkippedImage) => void;
  /** Pixels already decoded from an unchanged file by an earlier build (see `ReadContext`). */
  readonly reuse?: (path: string) => ImageU8 | undefined;
}

/** One image to decode, with its labels and where the metadata named it. */
export interface ImageFileItem {
  readonly path: string;
  readonly fine: number;
  readonly coarse: number;
  readonly where: string;
}

/** A record that also carries the source path of its image. */
export interface ImageFileRecord extends DatasetRecord {
  readonly sourcePath: string;
}

export function checkShortSide(shortSide: number): number {
  if (!Number.isInteger(shortSide) || shortSide < 8 || shortSide > 4096) {
    throw new DatasetError(
      `Short side ${shortSide} is not usable; give an integer number of pixels between 8 and 4096 (default ${DEFAULT_SHORT_SIDE}).`,
    );
  }
  return shortSide;
}

type Outcome = { ok: true; image: ImageU8 } | { ok: false; reason: string };

/**
 * Decode `items` with a small pool of concurrent decodes and yield records in item order.
 * A file that fails to decode stops the build with a sentence naming it — or, with
 * `skipBad`, is reported to `onSkip` and left out.
 */
export async function* decodeImageFiles(
  dataset: string,
  split: Split,
  items: readonly ImageFileItem[],
  options: ImageFileOptions,
): AsyncGenerator<ImageFileRecord> {
  if (items.length === 0) return;
  const shortSide = checkShortSide(options.shortSide ?? DEFAULT_SHORT_SIDE);
  const decoder = options.decoder ?? (await loadSharpDecoder());
  const window = Math.max(1, options.concurrency ?? Math.max(2, 2 * availableParallelism()));

  // Each promise resolves (never rejects) so that a failure further ahead cannot surface as
  // an unhandled rejection while an earlier image is still being awaited.
  const decodeOne = (item: ImageFileItem): Promise<Outcome> => {
    const kept = options.reuse?.(item.path);
    if (kept) return Promise.resolve({ ok: true, image: kept });
    return decoder(item.path, shortSide).then(
      (image) => checkDecoded(image, item),
      (error: unknown) => ({
        ok: false as const,
        reason: error instanceof Error ? error.message : String(error),
      }),
    );
  };

  const pending: Promise<Outcome>[] = [];
  let started = 0;
  for (let i = 0; i < items.length; i++) {
    while (started < items.length && started < i + window)
      pending.push(decodeOne(items[started++]));
    const outcome = await pending.shift()!;
    const item = items[i];
    if (outcome.ok) {
      yield { fine: item.fine, coarse: item.coarse, image: outcome.image, sourcePath: item.path };
      continue;
    }
    if (!options.skipBad) {
      await Promise.all(pending); // let in-flight decodes finish before the build unwinds
      throw new DatasetError(
        `${dataset}: image ${item.path} (${item.where}) could not be decoded: ${outcome.reason}. Replace the file, or pass --skip-bad to leave out unreadable images.`,
      );
    }
    options.onSkip?.({
      dataset,
      split,
      path: item.path,
      where: item.where,
      reason: outcome.reason,
    });
  }
}

function checkDecoded(image: ImageU8, item: ImageFileItem): Outcome {
  const { height, width, channels, data } = image;
  if (channels !== 3 || data.length !== height * width * channels) {
    return {
      ok: false,
      reason: `the decoder returned ${height}×${width}×${channels} with ${data.length} bytes for ${item.path}, not RGB`,
    };
  }
  return { ok: true, image };
}

type SharpModule = (
  input: string | Uint8Array,
  options?: {
    failOn?: 'none' | 'truncated' | 'error' | 'warning';
    raw?: { width: number; height: number; channels: number };
  },
) => SharpPipeline;
interface SharpPipeline {
  metadata(): Promise<{ space?: string }>;
  resize(options: { width: number; height: number; fit: 'outside' }): SharpPipeline;
  removeAlpha(): SharpPipeline;
  pipelineColourspace(space: 'cmyk'): SharpPipeline;
  toColourspace(space: 'srgb' | 'cmyk'): SharpPipeline;
  raw(): SharpPipeline;
  toBuffer(options: {
    resolveWithObject: true;
  }): Promise<{ data: Buffer; info: { width: number; height: number; channels: number } }>;
}

let sharpDecoder: Promise<ImageFileDecoder> | undefined;

/**
 * The default decoder: sharp (libvips), loaded on first use. Truncated JPEGs are errors, not
 * grey-filled images. Output as `decodeToRgb`: PIL-compatible RGB, CMYK included.
 */
export function loadSharpDecoder(): Promise<ImageFileDecoder> {
  sharpDecoder ??= (async () => {
    let sharp: SharpModule;
    try {
      const moduleName = 'sharp'; // a variable, so the package type-checks without sharp installed
      sharp = ((await import(moduleName)) as { default: SharpModule }).default;
    } catch (error) {
      sharpDecoder = undefined;
      throw new DatasetError(
        `Decoding JPEG datasets needs the 'sharp' package, which @maskcon/datasets could not load (${(error as Error).message}). Install it for this package: pnpm --filter @maskcon/datasets add sharp.`,
      );
    }
    return sharpImageDecoder(sharp);
  })();
  return sharpDecoder;
}

/** A decoder from a loaded sharp module (for callers that already have one). */
export function sharpImageDecoder(sharp: unknown): ImageFileDecoder {
  return (path, shortSide) => decodeToRgb(sharp, path, shortSide);
}

/**
 * Decode an image file or encoded bytes to u8 RGB (HWC) as torchvision's loader does
 * (PIL's `Image.open(f).convert('RGB')`): grey is expanded, alpha dropped, and CMYK (JPEGs
 * from print workflows) converted with PIL's plain formula, ignoring any embedded ICC profile
 * — libvips would apply a CMYK profile and give other colours. With `shortSide`, the result
 * is then scaled so its shorter side has that length. Truncated files are errors.
 * The one decode of the project: `@maskcon/augment`'s `decodeImage` calls it too.
 */
export async function decodeToRgb(
  sharp: unknown,
  input: string | Uint8Array,
  shortSide?: number,
): Promise<ImageU8> {
  const make = sharp as SharpModule;
  const resized = (pipeline: SharpPipeline) =>
    shortSide === undefined
      ? pipeline
      : pipeline.resize({ width: shortSide, height: shortSide, fit: 'outside' });
  const { space } = await make(input).metadata();
  if (space === 'cmyk') {
    // The ink values as stored (Adobe-inverted files are un-inverted by the JPEG loader).
    const { data, info } = await make(input, { failOn: 'truncated' })
      .pipelineColourspace('cmyk')
      .toColourspace('cmyk')
      .raw()
      .toBuffer({ resolveWithObject: true });
    const rgb = cmykToRgb(data, info.channels);
    const { width, height } = info;
    if (shortSide === undefined) return { data: rgb, height, width, channels: 3 };
    const out = await resized(make(rgb, { raw: { width, height, channels: 3 } }))
      .raw()
      .toBuffer({ resolveWithObject: true });
    return {
      data: new Uint8Array(out.data.buffer, out.data.byteOffset, out.data.byteLength),
      height: out.info.height,
      width: out.info.width,
      channels: 3,
    };
  }
  const { data, info } = await resized(make(input, { failOn: 'truncated' }))
    .removeAlpha()
    .toColourspace('srgb')
    .raw()
    .toBuffer({ resolveWithObject: true });
  let pixels = new Uint8Array(data.buffer, data.byteOffset, data.byteLength);
  if (info.channels === 1) pixels = greyToRgb(pixels);
  return { data: pixels, height: info.height, width: info.width, channels: 3 };
}

/**
 * PIL's CMYK → RGB (`cmyk2rgb` in libImaging/Convert.c, Pillow ≥ 8): with nk = 255 − K, each
 * of R, G, B is nk − round(ink · nk / 255), ink = C, M, Y. `stride` is the bands per pixel
 * (4, or 5 with alpha, which is dropped).
 */
export function cmykToRgb(cmyk: Uint8Array, stride = 4): Uint8Array {
  const n = Math.floor(cmyk.length / stride);
  const rgb = new Uint8Array(n * 3);
  for (let p = 0; p < n; p++) {
    const at = p * stride;
    const nk = 255 - cmyk[at + 3];
    for (let c = 0; c < 3; c++) {
      const t = cmyk[at + c] * nk + 128; // MULDIV255: exact rounding of ink·nk/255
      rgb[3 * p + c] = nk - (((t >> 8) + t) >> 8);
    }
  }
  return rgb;
}

function greyToRgb(grey: Uint8Array): Uint8Array {
  const rgb = new Uint8Array(grey.length * 3);
  for (let i = 0; i < grey.length; i++) rgb[3 * i] = rgb[3 * i + 1] = rgb[3 * i + 2] = grey[i];
  return rgb;
}
