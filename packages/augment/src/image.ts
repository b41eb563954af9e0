import type { ImageU8 } from '@maskcon/datasets';

/** Throws a sentence naming the operation if `img` is not a consistent HWC uint8 image. */
export function checkImage(img: ImageU8, op: string): void {
  const { height, width, channels, data } = img;
  if (!(Number.isInteger(height) && height > 0 && Number.isInteger(width) && width > 0)) {
    throw new Error(`${op}: image size must be positive integers, got ${height}×${width}.`);
  }
  if (!(Number.isInteger(channels) && channels >= 1 && channels <= 4)) {
    throw new Error(`${op}: image must have 1 to 4 channels, got ${channels}.`);
  }
  if (data.length !== height * width * channels) {
    throw new Error(
      `${op}: image data has ${data.length} bytes but ${height}×${width}×${channels} needs ` +
        `${height * width * channels}; the buffer does not match its declared shape.`,
    );
  }
}

/** Throws unless `n` is a positive integer; `what` names it in the message. */
export function checkPositiveInt(n: number, what: string): void {
  if (!(Number.isInteger(n) && n > 0))
    throw new Error(`${what} must be a positive integer, got ${n}.`);
}
