// The generator and the named streams live in @maskcon/random; re-exported for existing callers.
export { Rng, RANDOM_STREAMS, streamRng, type RandomStreamName } from '@maskcon/random';
export {
  compose,
  hflip,
  horizontalFlip,
  randomResizedCrop,
  resize,
  resizeSquare,
  resizedCrop,
  resizedShape,
  roundHalfEven,
  sampleResizedCropParams,
  type CropBox,
  type Transform,
} from './transforms.js';
export { resampleRegion, resizeBilinear } from './resample.js';
export { Normalizer, toNormalizedFloat } from './normalize.js';
export {
  augmentBatch,
  makePipeline,
  type Pipeline,
  type PipelineFamily,
  type PipelineKind,
  type PipelineOptions,
} from './pipeline.js';
export {
  adjustBrightness,
  adjustContrast,
  adjustHue,
  adjustSaturation,
  adjustSharpness,
  autocontrast,
  equalize,
  grayscale,
  invert,
  luma,
  posterize,
  smooth,
  solarize,
  toLuma,
} from './color.js';
export {
  affineBicubic,
  affineNearest,
  perspective,
  perspectiveBilinear,
  perspectiveCoefficients,
  rotate,
  rotationCoefficients,
  type AffineCoefficients,
  type Corners,
  type PerspectiveCoefficients,
} from './geometry.js';
export { boxRadiusForSigma, gaussianBlur } from './blur.js';
export {
  applyColorJitter,
  colorJitter,
  colorJitterRanges,
  randomApply,
  randomGaussianBlur,
  randomGrayscale,
  randomPerspective,
  sampleColorJitterParams,
  samplePerspectiveParams,
  type ColorJitterParams,
  type ColorJitterRanges,
  type PerspectiveParams,
} from './random-ops.js';
export {
  CIFAR10_POLICY,
  MAGNITUDES,
  SIGNED_OPS,
  applyAutoAugmentOp,
  applyPolicy,
  cifar10Policy,
  samplePolicy,
  type AutoAugmentOp,
  type PolicyDraw,
  type PolicyStep,
} from './autoaugment.js';
export { BatchLoader, type Batch, type BatchLoaderOptions, type PipelineSpec } from './loader.js';
export { loaderViewRngs, buildPipeline, epochPermutation } from './view-rng.js';
export { decodeImage, resizeShortSide } from './decode.js';
