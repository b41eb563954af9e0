import type { ImageU8 } from '@maskcon/datasets';
import { checkPositiveInt } from './image.js';
import { Normalizer } from './normalize.js';
import { resampleRegionInto } from './resample.js';
import type { Rng } from '@maskcon/random';
import { cifar10Policy } from './autoaugment.js';
import { gaussianBlurInPlace } from './blur.js';
import { constantBlendTable, contrastMean, hueInto, hueShift, saturationInto } from './color.js';
import {
  perspectiveBilinearOnto,
  perspectiveCoefficients,
  type PerspectiveCoefficients,
} from './geometry.js';
import {
  colorJitter,
  colorJitterRanges,
  randomApply,
  randomGaussianBlur,
  randomGrayscale,
  randomPerspective,
  sampleColorJitterParams,
  samplePerspectiveParams,
  type ColorJitterRanges,
} from './random-ops.js';
import {
  compose,
  hflip,
  horizontalFlip,
  randomResizedCrop,
  resizeSquare,
  sampleResizedCropParams,
  type Transform,
} from './transforms.js';

const CROP_SCALE: readonly [number, number] = [0.2, 1];
const CROP_RATIO: readonly [number, number] = [3 / 4, 4 / 3];

/** Which of the paper's three augmentation pipelines (query view, key view, evaluation). */
export type PipelineKind = 'strong' | 'weak' | 'test';

/**
 * Which dataset's listing of the pipelines (supplementary material, "Augmentation strategies"):
 *  - `cifar` (the default branch: CIFAR, ImageNet32, Fashion-MNIST)
 *      strong = RRC → flip → CIFAR10Policy;  weak = RRC → flip
 *  - `cars196`
 *      strong = RRC → flip → RandomPerspective(0.5, 0.5) → RandomApply(ColorJitter(0.4, 0.4, 0.4, 0.1), 0.8)
 *               → RandomGrayscale(0.2) → RandomApply(GaussianBlur([0.1, 2]), 0.5)
 *      weak   = RRC → RandomPerspective(0.5, 0.5) → flip
 *  - `sop` (sop_split1, sop_split2)
 *      strong = RRC → flip → RandomPerspective(0.5, 0.5);  weak as cars196
 * RRC is RandomResizedCrop(size, (0.2, 1)); test is Resize([size, size]) for all: the seed
 * prints Resize(size), but the authors' released code resizes to [size, size], and only a
 * square result can fill a batch slot (Resize(size) crashed evaluation on SOP/Cars196's
 * non-square photos). Every pipeline ends in ToTensor → Normalize.
 */
export type PipelineFamily = 'cifar' | 'cars196' | 'sop';

export interface PipelineOptions {
  /** Output side length: every pipeline gives size×size images. */
  size: number;
  /** Per-channel normalisation mean and std (one value is broadcast to all channels). */
  mean: readonly number[];
  std: readonly number[];
  /** Which dataset's pipelines; default `cifar`. */
  family?: PipelineFamily;
}

/**
 * An augmentation pipeline ending in ToTensor + Normalize: image → HWC float32.
 * With `out`, the result is written at `offset` (one slot of an NHWC batch) and must then be
 * exactly size×size; the array written to is returned.
 */
export interface Pipeline {
  (img: ImageU8, rng: Rng, out?: Float32Array, offset?: number): Float32Array;
  readonly kind: PipelineKind;
  readonly family: PipelineFamily;
  readonly size: number;
  /** The uint8 part of the pipeline, before normalisation. */
  readonly transform: Transform;
}

/**
 * A stage after the crop: the horizontal flip (which can be fused into normalisation), or a
 * transform. A transform may come with `fast`, the same operation on RGB images working in
 * the pipeline's reused buffers and drawing from the rng exactly as the transform does.
 */
type Stage = 'flip' | { transform: Transform; fast?: FastStage };

/**
 * Runs one stage on the H×W×3 image in `buf.cur`, leaving the result in `buf.cur` (in place,
 * or written to `buf.spare` and the two swapped).
 */
type FastStage = (buf: Buffers, H: number, W: number, rng: Rng) => void;

interface Buffers {
  cur: Uint8Array;
  spare: Uint8Array;
}

/** RandomPerspective(distortion, p), BILINEAR, fill 0 (as random-ops.ts randomPerspective). */
function fastPerspective(distortion: number, p: number): FastStage {
  return (buf, H, W, rng) => {
    if (!(rng.next() < p)) return;
    const { startpoints, endpoints } = samplePerspectiveParams(W, H, distortion, rng);
    let coeffs: PerspectiveCoefficients;
    try {
      coeffs = perspectiveCoefficients(startpoints, endpoints);
    } catch {
      return; // as randomPerspective: keep the image
    }
    const out = buf.spare;
    out.fill(0, 0, H * W * 3);
    perspectiveBilinearOnto(buf.cur, H, W, 3, coeffs, out);
    buf.spare = buf.cur;
    buf.cur = out;
  };
}

function applyTableInPlace(data: Uint8Array, n: number, table: Uint8Array): void {
  for (let i = 0; i < n; i++) data[i] = table[data[i]];
}

/** RandomApply(ColorJitter(ranges), p) in place (as random-ops.ts applyColorJitter). */
function fastColorJitter(ranges: ColorJitterRanges, p: number): FastStage {
  return (buf, H, W, rng) => {
    if (!(rng.next() < p)) return;
    const params = sampleColorJitterParams(ranges, rng);
    const data = buf.cur;
    const n = H * W * 3;
    const img = { data: data.subarray(0, n), height: H, width: W, channels: 3 };
    for (const id of params.order) {
      if (id === 0) applyTableInPlace(data, n, constantBlendTable(0, params.brightness));
      else if (id === 1)
        applyTableInPlace(data, n, constantBlendTable(contrastMean(img), params.contrast));
      else if (id === 2) saturationInto(img.data, img.data, params.saturation);
      else {
        if (!(params.hue >= -0.5 && params.hue <= 0.5)) {
          throw new Error(`adjustHue: hue factor must be in [-0.5, 0.5], got ${params.hue}.`);
        }
        hueInto(img.data, img.data, hueShift(params.hue));
      }
    }
  };
}

/** RandomGrayscale(p) in place (PIL L luma replicated to three channels). */
function fastGrayscale(p: number): FastStage {
  return (buf, H, W, rng) => {
    if (!(rng.next() < p)) return;
    const d = buf.cur;
    const n = H * W * 3;
    for (let s = 0; s < n; s += 3) {
      const v = (d[s] * 19595 + d[s + 1] * 38470 + d[s + 2] * 7471 + 0x8000) >> 16;
      d[s] = v;
      d[s + 1] = v;
      d[s + 2] = v;
    }
  };
}

/** RandomApply(GaussianBlur(σ ∈ sigma), p) in place. */
function fastGaussianBlur(sigma: readonly [number, number], p: number): FastStage {
  return (buf, H, W, rng) => {
    if (!(rng.next() < p)) return;
    gaussianBlurInPlace(buf.cur, H, W, 3, rng.uniform(sigma[0], sigma[1]));
  };
}

/** Mirror an H×W×3 image left–right in place. */
function hflipInPlace(d: Uint8Array, H: number, W: number): void {
  const stride = W * 3;
  for (let y = 0; y < H; y++) {
    for (let a = y * stride, b = a + stride - 3; a < b; a += 3, b -= 3) {
      const r = d[a];
      const g = d[a + 1];
      const bl = d[a + 2];
      d[a] = d[b];
      d[a + 1] = d[b + 1];
      d[a + 2] = d[b + 2];
      d[b] = r;
      d[b + 1] = g;
      d[b + 2] = bl;
    }
  }
}

/** The stages after RandomResizedCrop for each family and kind. */
function stagesOf(family: PipelineFamily, kind: 'strong' | 'weak'): Stage[] {
  const perspective = { transform: randomPerspective(0.5, 0.5), fast: fastPerspective(0.5, 0.5) };
  switch (family) {
    case 'cifar':
      return kind === 'strong' ? ['flip', { transform: cifar10Policy(128) }] : ['flip'];
    case 'sop':
      return kind === 'strong' ? ['flip', perspective] : [perspective, 'flip'];
    case 'cars196':
      return kind === 'strong'
        ? [
            'flip',
            perspective,
            {
              transform: randomApply(colorJitter(0.4, 0.4, 0.4, 0.1), 0.8),
              fast: fastColorJitter(colorJitterRanges(0.4, 0.4, 0.4, 0.1), 0.8),
            },
            { transform: randomGrayscale(0.2), fast: fastGrayscale(0.2) },
            {
              transform: randomApply(randomGaussianBlur([0.1, 2]), 0.5),
              fast: fastGaussianBlur([0.1, 2], 0.5),
            },
          ]
        : [perspective, 'flip'];
    default:
      throw new Error(
        `Unknown pipeline family '${family as string}'; use 'cifar', 'cars196' or 'sop'.`,
      );
  }
}

/**
 * The paper's pipelines (see `PipelineFamily`) for one output size and normalisation.
 * `makePipeline(kind, { size, mean, std })` gives the CIFAR-style default.
 */
export function makePipeline(kind: PipelineKind, options: PipelineOptions): Pipeline {
  const { size } = options;
  const family = options.family ?? 'cifar';
  checkPositiveInt(size, 'Pipeline size');
  const normalizer = new Normalizer(options.mean, options.std);

  let run: (img: ImageU8, rng: Rng, out?: Float32Array, offset?: number) => Float32Array;
  let transform: Transform;
  switch (kind) {
    case 'weak':
    case 'strong':
      ({ run, transform } = cropPipeline(size, stagesOf(family, kind), normalizer, kind));
      break;
    case 'test':
      transform = resizeSquare(size);
      run = (img, rng, out, offset = 0) => {
        const t = transform(img, rng);
        if (t.height !== size || t.width !== size) {
          // Unreachable with resizeSquare; kept so that no other shape can ever fill a slot.
          throw new Error(
            `The test pipeline produced a ${t.height}×${t.width} image where ${size}×${size} was expected.`,
          );
        }
        return normalizer.apply(t, out, offset);
      };
      break;
    default:
      throw new Error(`Unknown pipeline kind '${kind as string}'; use 'strong', 'weak' or 'test'.`);
  }
  return Object.assign(run, { kind, family, size, transform });
}

/**
 * RandomResizedCrop(size, (0.2, 1)) → `stages` → normalise. `run` draws from the rng exactly
 * as `transform` does, but crops into a reused buffer and, when the flip is the last stage,
 * folds it into the normalising copy.
 */
function cropPipeline(
  size: number,
  stages: Stage[],
  normalizer: Normalizer,
  kind: PipelineKind,
): {
  run: (img: ImageU8, rng: Rng, out?: Float32Array, offset?: number) => Float32Array;
  transform: Transform;
} {
  const transform = compose(
    randomResizedCrop(size, CROP_SCALE, CROP_RATIO),
    ...stages.map((s) => (s === 'flip' ? horizontalFlip(0.5) : s.transform)),
  );
  // RGB images go through the fast stages (when every stage has one) in two reused buffers.
  const allFast = stages.every((s) => s === 'flip' || s.fast !== undefined);
  let buffer = new Uint8Array(size * size * 3);
  const bufs: Buffers = { cur: buffer, spare: new Uint8Array(size * size * 3) };
  const run = (img: ImageU8, rng: Rng, out?: Float32Array, offset = 0): Float32Array => {
    const box = sampleResizedCropParams(img.height, img.width, CROP_SCALE, CROP_RATIO, rng);
    const n = size * size * img.channels;
    let mirror = false;
    if (allFast && img.channels === 3) {
      resampleRegionInto(img, box.top, box.left, box.height, box.width, size, size, bufs.cur);
      for (let i = 0; i < stages.length; i++) {
        const stage = stages[i];
        if (stage === 'flip') {
          const flip = rng.next() < 0.5;
          if (i === stages.length - 1) mirror = flip;
          else if (flip) hflipInPlace(bufs.cur, size, size);
        } else {
          stage.fast!(bufs, size, size, rng);
        }
      }
      const t: ImageU8 = { data: bufs.cur.subarray(0, n), height: size, width: size, channels: 3 };
      return normalizer.apply(t, out, offset, mirror);
    }
    if (buffer.length < n) buffer = new Uint8Array(n);
    resampleRegionInto(img, box.top, box.left, box.height, box.width, size, size, buffer);
    let t: ImageU8 = {
      data: buffer.subarray(0, n),
      height: size,
      width: size,
      channels: img.channels,
    };
    for (let i = 0; i < stages.length; i++) {
      const stage = stages[i];
      if (stage === 'flip') {
        const flip = rng.next() < 0.5;
        if (i === stages.length - 1) mirror = flip;
        else if (flip) t = hflip(t);
      } else {
        t = stage.transform(t, rng);
      }
    }
    if (t.height !== size || t.width !== size) {
      throw new Error(
        `A stage of the ${kind} pipeline changed the image to ${t.height}×${t.width}; it should stay ${size}×${size}.`,
      );
    }
    return normalizer.apply(t, out, offset, mirror);
  };
  return { run, transform };
}

/**
 * Run `pipeline` on every image into one NHWC float32 batch (length N*size*size*C).
 * Image i uses `rng.fork(i)`, all forked in index order before any image is processed, so an
 * image's augmentation depends only on the seed and its index — not on processing order.
 *
 * With `out` (length ≥ N*size*size*C, e.g. the previous batch's array once it has been
 * consumed), the batch is written into it from index 0 and `out` itself is returned: every
 * value of the batch is overwritten, so its previous content does not matter. Reusing one
 * array avoids allocating (and zeroing) N*size*size*C floats per batch — 9.6 MB for 16
 * images at 224×224.
 */
export function augmentBatch(
  images: readonly ImageU8[],
  pipeline: Pipeline,
  rng: Rng,
  out?: Float32Array,
): Float32Array {
  const n = images.length;
  const channels = n === 0 ? 0 : images[0].channels;
  for (let i = 1; i < n; i++) {
    if (images[i].channels !== channels) {
      throw new Error(
        `augmentBatch: image ${i} has ${images[i].channels} channels but image 0 has ${channels}; a batch needs one channel count.`,
      );
    }
  }
  const per = pipeline.size * pipeline.size * channels;
  if (out && out.length < n * per) {
    throw new Error(
      `augmentBatch: the output array holds ${out.length} floats but ${n} images of ${pipeline.size}×${pipeline.size}×${channels} need ${n * per}.`,
    );
  }
  if (n === 0) return out ?? new Float32Array(0);
  const rngs: Rng[] = new Array(n);
  for (let i = 0; i < n; i++) rngs[i] = rng.fork(i);
  const dst = out ?? new Float32Array(n * per);
  for (let i = 0; i < n; i++) pipeline(images[i], rngs[i], dst, i * per);
  return dst;
}
