import { decodeToRgb, type ImageU8 } from '@maskcon/datasets';
import sharp from 'sharp';
import { checkImage, checkPositiveInt } from './image.js';
import { resizedShape } from './transforms.js';

/**
 * Decode an encoded image (JPEG, PNG, WebP, …) to 3-channel RGB HWC uint8, like PIL's
 * `Image.open(f).convert('RGB')`: greyscale is expanded to RGB, alpha is dropped and CMYK is
 * converted with PIL's formula (the decode of `@maskcon/datasets`, one place for both).
 * EXIF orientation is not applied (PIL does not apply it either).
 */
export async function decodeImage(buf: Buffer): Promise<ImageU8> {
  try {
    return await decodeToRgb(sharp, buf);
  } catch (err) {
    throw new Error(
      `decodeImage could not decode a ${buf.length}-byte buffer (${(err as Error).message}); ` +
        'is it a complete JPEG/PNG/WebP file?',
    );
  }
}

/**
 * Resize so the shorter side is `side` (longer side `floor(side*long/short)`, as torchvision
 * `Resize(int)`), using sharp's linear kernel. Meant for shrinking large JPEG datasets once,
 * ahead of training; use `resize` for PIL-exact results. Returns the input when already that size.
 */
export async function resizeShortSide(img: ImageU8, side: number): Promise<ImageU8> {
  checkImage(img, 'resizeShortSide');
  checkPositiveInt(side, 'resizeShortSide side');
  const [height, width] = resizedShape(img.height, img.width, side);
  if (height === img.height && width === img.width) return img;
  const channels = img.channels as 1 | 2 | 3 | 4;
  const { data, info } = await sharp(img.data, {
    raw: { width: img.width, height: img.height, channels },
  })
    .resize(width, height, { fit: 'fill', kernel: 'linear' })
    .toColourspace(channels <= 2 ? 'b-w' : 'srgb') // otherwise sharp turns grey into RGB
    .raw()
    .toBuffer({ resolveWithObject: true });
  if (info.width !== width || info.height !== height || info.channels !== img.channels) {
    throw new Error(
      `resizeShortSide asked sharp for ${height}×${width}×${img.channels} but got ${info.height}×${info.width}×${info.channels}.`,
    );
  }
  return {
    data: new Uint8Array(data.buffer, data.byteOffset, data.length),
    height,
    width,
    channels: img.channels,
  };
}
