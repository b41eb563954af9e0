import type { ImageU8 } from '@maskcon/datasets';
import { checkPositiveInt } from './image.js';
import { Normalizer } from './normalize.js';
import type { Rng } from './rng.js';
import { compose, horizontalFlip, randomResizedCrop, resize, type Transform } from './transforms.js';

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
 *   strong = weak's crop and flip → CIFAR10Policy → ToTensor → Normalize
 *   test   = Resize(size) → ToTensor → Normalize
 */
export function makePipeline(kind: PipelineKind, options: PipelineOptions): Pipeline {
  const { size } = options;
  checkPositiveInt(size, 'Pipeline size');
  const normalizer = new Normalizer(options.mean, options.std);
  let transform: Transform;
  switch (kind) {
    case 'weak':
      transform = compose(randomResizedCrop(size, [0.2, 1]), horizontalFlip(0.5));
      break;
    case 'strong':
      transform = compose(
        randomResizedCrop(size, [0.2, 1]),
        horizontalFlip(0.5),
        // CIFAR10Policy (AutoAugment) belongs here, after the flip. It is not implemented
        // yet, so for now the strong pipeline equals the weak one.
      );
      break;
    case 'test':
      transform = resize(size);
      break;
    default:
      throw new Error(`Unknown pipeline kind '${kind as string}'; use 'strong', 'weak' or 'test'.`);
  }
  const run = (img: ImageU8, rng: Rng, out?: Float32Array, offset = 0): Float32Array => {
    const t = transform(img, rng);
    if (out && (t.height !== size || t.width !== size)) {
      throw new Error(
        `The ${kind} pipeline produced a ${t.height}×${t.width} image but a batch slot holds ${size}×${size}; ` +
          `the test pipeline only gives size×size for square inputs, so centre-crop non-square images first.`,
      );
    }
    return normalizer.apply(t, out, offset);
  };
  return Object.assign(run, { kind, size, transform });
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
