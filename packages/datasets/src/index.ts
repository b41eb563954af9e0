export type { Split, ImageU8, CoarseFineDataset } from './types.js';
export { DatasetError } from './errors.js';
export type {
  DatasetSource,
  DatasetRecord,
  SplitRecords,
  SourceFile,
  BuildProgress,
  ProgressListener,
} from './source.js';
export { writeIndex, SPLITS, type WriteIndexOptions, type WriteIndexResult } from './write-index.js';
export { INDEX_FORMAT_VERSION } from './index-format.js';
export {
  openIndex,
  datasetStats,
  type OpenIndexOptions,
  type DatasetStats,
  type SplitStats,
} from './read-index.js';
export {
  DATASET_NAMES,
  type DatasetName,
  isDatasetName,
  defaultIndexPath,
  datasetSource,
  buildDataset,
  type BuildDatasetOptions,
  type BuildDatasetResult,
} from './registry.js';
export {
  fashionMnistSource,
  FASHION_MNIST_DEFAULT_ROOT,
  FASHION_MNIST_FINE_CLASSES,
  FASHION_MNIST_COARSE_CLASSES,
  FASHION_MNIST_COARSE_OF_FINE,
  type FashionMnistOptions,
} from './sources/fashion-mnist.js';
export { createProgressPrinter } from './progress.js';
