import sharp from 'sharp';
import { DEFAULT_SHORT_SIDE, type ImageU8 } from '@maskcon/datasets';

/**
 * Image files into the network's input: JPEG, PNG or WebP of any size and aspect, EXIF
 * orientation applied, decoded by sharp (libvips) with a pixel limit so a decompression bomb is
 * refused before it is decoded.
 */

export const IMAGE_EXTENSIONS = ['.jpg', '.jpeg', '.png', '.webp'] as const;
/** Largest image (width × height) decoded: 64 megapixels. */
export const DEFAULT_MAX_PIXELS = 64 * 1024 * 1024;

export class ImageDecodeError extends Error {
  override name = 'ImageDecodeError';
}

const FORMATS = new Set(['jpeg', 'png', 'webp']);

/**
 * Decodes `input` (bytes or a file path) to 8-bit HWC with `channels` channels (1: luma, 3:
 * sRGB), sized for a `size`×`size` network input:
 *  - a square image keeps its pixels (shrunk with libvips to a side of max(size, 256) when
 *    larger, as datasets store their decoded copies), and the test pipeline then resizes it
 *    with torchvision's semantics, exactly as an index image;
 *  - a non-square image is resized to size×size, aspect not kept — the authors' test
 *    transform (docs/method.md), which also batches non-square catalogues.
 */
export async function decodeForModel(
  input: Buffer | string,
  size: number,
  channels: number,
  opts: { maxPixels?: number; what?: string } = {},
): Promise<ImageU8> {
  const what = opts.what ?? (typeof input === 'string' ? input : 'the upload');
  const limit = opts.maxPixels ?? DEFAULT_MAX_PIXELS;
  try {
    const base = sharp(input, { limitInputPixels: limit, failOn: 'error' });
    const meta = await base.metadata();
    if (!meta.format || !FORMATS.has(meta.format))
      throw new ImageDecodeError(
        `${what} is ${meta.format ? `a ${meta.format} image` : 'not an image'}; JPEG, PNG and WebP are supported.`,
      );
    // Orientation 5–8 swap width and height.
    const swap = (meta.orientation ?? 1) >= 5;
    const width = swap ? meta.height : meta.width;
    const height = swap ? meta.width : meta.height;
    if (!width || !height) throw new ImageDecodeError(`${what} has no image size.`);
    let img = base.rotate();
    if (width !== height) img = img.resize({ width: size, height: size, fit: 'fill' });
    else {
      const side = Math.max(size, DEFAULT_SHORT_SIDE);
      if (width > side) img = img.resize({ width: side, height: side, fit: 'fill' });
    }
    img = channels === 1 ? img.grayscale() : img.removeAlpha().toColourspace('srgb');
    const { data, info } = await img.raw().toBuffer({ resolveWithObject: true });
    let pixels = new Uint8Array(data.buffer, data.byteOffset, data.byteLength);
    if (info.channels !== channels) {
      if (info.channels === 1 && channels === 3) {
        const rgb = new Uint8Array(pixels.length * 3);
        for (let i = 0; i < pixels.length; i++)
          rgb[3 * i] = rgb[3 * i + 1] = rgb[3 * i + 2] = pixels[i];
        pixels = rgb;
      } else
        throw new ImageDecodeError(
          `${what} decoded to ${info.channels} channels; the model needs ${channels}.`,
        );
    }
    return { data: pixels, height: info.height, width: info.width, channels };
  } catch (err) {
    if (err instanceof ImageDecodeError) throw err;
    const msg = (err as Error).message;
    if (/pixel limit/i.test(msg))
      throw new ImageDecodeError(
        `${what} is larger than ${Math.round(limit / 2 ** 20)} megapixels; shrink it first.`,
      );
    if (/unsupported image format|Input buffer contains unsupported/i.test(msg))
      throw new ImageDecodeError(`${what} is not an image; JPEG, PNG and WebP are supported.`);
    throw new ImageDecodeError(`${what} could not be decoded (${msg}).`);
  }
}

/** PNG bytes of an 8-bit HWC image (for serving index images). */
export async function encodePng(img: ImageU8): Promise<Buffer> {
  return sharp(Buffer.from(img.data.buffer, img.data.byteOffset, img.data.byteLength), {
    raw: { width: img.width, height: img.height, channels: img.channels as 1 | 3 },
  })
    .png()
    .toBuffer();
}
