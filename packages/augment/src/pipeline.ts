import type { ImageU8 } from '@maskcon/datasets';
import { checkPositiveInt } from './image.js';
import { Normalizer } from './normalize.js';
import { resampleRegionInto } from './resample.js';
import type { Rng } from './rng.js';
import {
  compose,
  hflip,
  horizontalFlip,
  randomResizedCrop,
  resize,
  sampleResizedCropParams,
  type Transform,
} from './transforms.js';

const CROP_SCALE: readonly [number, number] = [0.2, 1];
const CROP_RATIO: readonly [number, number] = [3 / 4, 4 / 3];

/** Which of the paper's three augmentation pipelines (query view, key view, evaluation). */
export type PipelineKind = 'strong' | 'weak' | 'test';

export interface PipelineOptions {
  /** Output side length (RandomResizedCrop size; shorter side for the test Resize). */
  size: number;
  /** Per-channel normalisation mean and std (one value is broadcast to all channels). */
  mean: readonly number[];
  std: readonly number[];
}

/**
 * An augmentation pipeline ending in ToTensor + Normalize: image → HWC float32.
 * With `out`, the result is written at `offset` (one slot of an NHWC batch) and must then be
 * exactly size×size; the array written to is returned.
 */
export interface Pipeline {
  (img: ImageU8, rng: Rng, out?: Float32Array, offset?: number): Float32Array;
  readonly kind: PipelineKind;
  readonly size: number;
  /** The uint8 part of the pipeline, before normalisation. */
  readonly transform: Transform;
}

/**
 * The paper's pipelines for small images (CIFAR, Fashion-MNIST, downsampled ImageNet):
 *   weak   = RandomResizedCrop(size, (0.2, 1)) → RandomHorizontalFlip → ToTensor → Normalize
 *   strong = RandomResizedCrop → RandomHorizontalFlip → CIFAR10Policy → ToTensor → Normalize
 *   test   = Resize(size) → ToTensor → Normalize
 * CIFAR10Policy (AutoAugment) is not implemented yet, so `strong` currently equals `weak`
 * (same draws, same output). The large-image pipelines (RandomPerspective, ColorJitter, …)
 * are not here either.
 */
export function makePipeline(kind: PipelineKind, options: PipelineOptions): Pipeline {
  const { size } = options;
  checkPositiveInt(size, 'Pipeline size');
  const normalizer = new Normalizer(options.mean, options.std);

  const checkSlot = (height: number, width: number, out: Float32Array | undefined) => {
    if (out && (height !== size || width !== size)) {
      throw new Error(
        `The ${kind} pipeline produced a ${height}×${width} image but a batch slot holds ${size}×${size}; ` +
          'the test pipeline only gives size×size for square inputs, so centre-crop non-square images first.',
      );
    }
  };

  let run: (img: ImageU8, rng: Rng, out?: Float32Array, offset?: number) => Float32Array;
  let transform: Transform;
  switch (kind) {
    case 'weak':
      ({ run, transform } = cropFlipPipeline(size, [], normalizer));
      break;
    case 'strong':
      ({ run, transform } = cropFlipPipeline(
        size,
        [
          // CIFAR10Policy (AutoAugment) goes here, after the flip. It is not implemented yet,
          // so for now the strong pipeline equals the weak one.
        ],
        normalizer,
      ));
      break;
    case 'test':
      transform = resize(size);
      run = (img, rng, out, offset = 0) => {
        const t = transform(img, rng);
        checkSlot(t.height, t.width, out);
        return normalizer.apply(t, out, offset);
      };
      break;
    default:
      throw new Error(`Unknown pipeline kind '${kind as string}'; use 'strong', 'weak' or 'test'.`);
  }
  return Object.assign(run, { kind, size, transform });
}

/**
 * RandomResizedCrop(size, (0.2, 1)) → RandomHorizontalFlip → `extra` → normalise.
 * `run` draws from the rng exactly as `transform` does, but crops into a reused buffer and,
 * when there are no extra stages, folds the flip into the normalising copy.
 */
function cropFlipPipeline(
  size: number,
  extra: Transform[],
  normalizer: Normalizer,
): { run: (img: ImageU8, rng: Rng, out?: Float32Array, offset?: number) => Float32Array; transform: Transform } {
  const transform = compose(randomResizedCrop(size, CROP_SCALE, CROP_RATIO), horizontalFlip(0.5), ...extra);
  let buffer = new Uint8Array(size * size * 3);
  const run = (img: ImageU8, rng: Rng, out?: Float32Array, offset = 0): Float32Array => {
    const box = sampleResizedCropParams(img.height, img.width, CROP_SCALE, CROP_RATIO, rng);
    const flip = rng.next() < 0.5;
    const n = size * size * img.channels;
    if (buffer.length < n) buffer = new Uint8Array(n);
    resampleRegionInto(img, box.top, box.left, box.height, box.width, size, size, buffer);
    const cropped: ImageU8 = { data: buffer.subarray(0, n), height: size, width: size, channels: img.channels };
    if (extra.length === 0) return normalizer.apply(cropped, out, offset, flip);
    let t = flip ? hflip(cropped) : { ...cropped, data: cropped.data.slice() };
    for (const stage of extra) t = stage(t, rng);
    if (out && (t.height !== size || t.width !== size)) {
      throw new Error(`An augmentation stage changed the image to ${t.height}×${t.width}; a batch slot holds ${size}×${size}.`);
    }
    return normalizer.apply(t, out, offset);
  };
  return { run, transform };
}

/**
 * Run `pipeline` on every image into one NHWC float32 batch (length N*size*size*C).
 * Image i uses `rng.fork(i)`, all forked in index order before any image is processed, so an
 * image's augmentation depends only on the seed and its index — not on processing order.
 */
export function augmentBatch(images: readonly ImageU8[], pipeline: Pipeline, rng: Rng): Float32Array {
  const n = images.length;
  if (n === 0) return new Float32Array(0);
  const channels = images[0].channels;
  for (let i = 1; i < n; i++) {
    if (images[i].channels !== channels) {
      throw new Error(
        `augmentBatch: image ${i} has ${images[i].channels} channels but image 0 has ${channels}; a batch needs one channel count.`,
      );
    }
  }
  const rngs: Rng[] = new Array(n);
  for (let i = 0; i < n; i++) rngs[i] = rng.fork(i);
  const per = pipeline.size * pipeline.size * channels;
  const out = new Float32Array(n * per);
  for (let i = 0; i < n; i++) pipeline(images[i], rngs[i], out, i * per);
  return out;
}
