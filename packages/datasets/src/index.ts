export type { Split, ImageU8, CoarseFineDataset } from './types.js';
export { DatasetError } from './errors.js';
export type {
  DatasetSource,
  ImageFileList,
  ReadContext,
  DatasetRecord,
  SplitRecords,
  SourceFile,
  BuildProgress,
  ProgressListener,
} from './source.js';
export {
  writeIndex,
  SPLITS,
  type WriteIndexOptions,
  type WriteIndexResult,
} from './write-index.js';
export { INDEX_FORMAT_VERSION } from './index-format.js';
export { describeImageChanges, type ImageFileChanges } from './image-inventory.js';
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
export { formatStats, textTable } from './format-stats.js';
export {
  decodeImageFiles,
  loadSharpDecoder,
  sharpImageDecoder,
  decodeToRgb,
  cmykToRgb,
  DEFAULT_SHORT_SIDE,
  type ImageFileDecoder,
  type ImageFileOptions,
  type ImageFileItem,
  type ImageFileRecord,
  type SkippedImage,
} from './image-files.js';
export type { SourceOptions } from './source-options.js';
export { DatasetRoot } from './safe-path.js';
export { readMat5, readMat5File, type MatValue, type Mat5Limits } from './formats/mat5.js';
export { sopSource, SOP_DEFAULT_SEED, type SopSplitName, type SopOptions } from './sources/sop.js';
export { cars196Source, type Cars196Options } from './sources/cars196.js';
export {
  CARS196_BODY_TYPES,
  CARS196_CLASSES,
  CARS196_CLASS_NAMES,
  CARS196_TABLE2_FINE_PER_COARSE,
  cars196BodyTypeOf,
} from './sources/cars196-body-types.js';
export {
  csvSource,
  CSV_DEFAULT_SEED,
  CSV_DEFAULT_TEST_FRACTION,
  CSV_DEFAULT_IMAGE_SIZE,
  CSV_MIN_TEST_PER_CLASS,
  type CsvSourceOptions,
} from './sources/csv.js';
export {
  cifar100Source,
  cifarToySource,
  CIFAR10_CLASSES,
  CIFAR100_FINE_CLASSES,
  CIFAR100_COARSE_CLASSES,
  CIFARTOY_FINE_CLASSES,
  CIFARTOY_COARSE_CLASSES,
  CIFARTOY_COARSE_OF_FINE,
  type CifarOptions,
} from './sources/cifar.js';
export { imagenet32Source, type ImageNet32Options } from './sources/imagenet32.js';
export { IMAGENET_GROUP_NAMES, IMAGENET_GROUP_OF_WNID } from './sources/imagenet-groups.js';
export {
  downloadDataset,
  downloadVerified,
  hashFile,
  defaultCacheDir,
  createDownloadPrinter,
  DOWNLOAD_SETS,
  type Checksum,
  type DownloadOptions,
  type DownloadProgress,
} from './download.js';
export {
  unpickle,
  defaultPickleBudget,
  isTorchTensorRef,
  PickleError,
  PyDict,
  TORCH_STORAGE_DTYPES,
  type PickleOptions,
  type TorchDtype,
  type TorchStorageRef,
  type TorchTensorRef,
} from './formats/pickle.js';
export { listZip, readZipEntrySync, type ZipEntry } from './formats/zip.js';
export {
  CliError,
  Command,
  Option,
  CommanderError,
  commanderMessage,
  configureCommand,
  createCommand,
  enumOption,
  exitQuietlyOnEpipe,
  intListOption,
  intOption,
  numberOption,
  pathOption,
  runCli,
  type NumberRange,
} from './cli-kit.js';
