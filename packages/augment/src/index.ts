export { Rng } from './rng.js';
export {
  compose,
  hflip,
  horizontalFlip,
  randomResizedCrop,
  resize,
  resizedCrop,
  resizedShape,
  roundHalfEven,
  sampleResizedCropParams,
  type CropBox,
  type Transform,
} from './transforms.js';
export { resampleRegion, resizeBilinear } from './resample.js';
export { Normalizer, toNormalizedFloat } from './normalize.js';
export { augmentBatch, makePipeline, type Pipeline, type PipelineKind, type PipelineOptions } from './pipeline.js';
export { decodeImage, resizeShortSide } from './decode.js';
