import { join } from 'node:path';
import { DatasetError } from './errors.js';
import type { DatasetSource, ProgressListener } from './source.js';
import type { SourceOptions } from './source-options.js';
import { cars196Source } from './sources/cars196.js';
import { csvSource } from './sources/csv.js';
import { fashionMnistSource } from './sources/fashion-mnist.js';
import { cifar100Source, cifarToySource } from './sources/cifar.js';
import { imagenet32Source } from './sources/imagenet32.js';
import { sopSource } from './sources/sop.js';
import { writeIndex, type WriteIndexResult } from './write-index.js';

/** The settings raw-pixel sources take from the build options. */
function skipOptions(
  options: SourceOptions | undefined,
): Pick<SourceOptions, 'skipBad' | 'onSkip'> {
  return { skipBad: options?.skipBad, onSkip: options?.onSkip };
}

/** Every dataset `buildDataset` knows, by registry name. Add a source module, then a line here. */
const SOURCES = {
  fashion_mnist: (root: string | undefined): DatasetSource => fashionMnistSource({ root }),
  cifar100: (root: string | undefined, options?: SourceOptions): DatasetSource =>
    cifar100Source({ ...skipOptions(options), root }),
  cifartoy_good: (root: string | undefined, options?: SourceOptions): DatasetSource =>
    cifarToySource('good', { ...skipOptions(options), root }),
  cifartoy_bad: (root: string | undefined, options?: SourceOptions): DatasetSource =>
    cifarToySource('bad', { ...skipOptions(options), root }),
  imagenet32: (root: string | undefined, options?: SourceOptions): DatasetSource =>
    imagenet32Source({ ...skipOptions(options), root }),
  sop_split1: (root: string | undefined, options?: SourceOptions): DatasetSource =>
    sopSource('sop_split1', { ...options, root }),
  sop_split2: (root: string | undefined, options?: SourceOptions): DatasetSource =>
    sopSource('sop_split2', { ...options, root }),
  cars196: (root: string | undefined, options?: SourceOptions): DatasetSource =>
    cars196Source({ ...options, root }),
  csv: (root: string | undefined, options?: SourceOptions): DatasetSource =>
    csvSource({ ...options, root }),
} as const satisfies Record<
  string,
  (root: string | undefined, options?: SourceOptions) => DatasetSource
>;

export type DatasetName = keyof typeof SOURCES;

export const DATASET_NAMES = Object.freeze(Object.keys(SOURCES) as DatasetName[]);

export function isDatasetName(name: string): name is DatasetName {
  return Object.hasOwn(SOURCES, name);
}

/** Throws a sentence listing the known datasets when `name` is not one of them. */
export function assertDatasetName(name: string): asserts name is DatasetName {
  if (!isDatasetName(name)) {
    throw new DatasetError(
      `Unknown dataset '${name}'. Known datasets: ${DATASET_NAMES.join(', ')}.`,
    );
  }
}

/** Where a dataset's index lives: `<dataDir>/<name>.sqlite` (dataDir defaults to $MASKCON_DATA or ./data). */
export function defaultIndexPath(
  name: string,
  dataDir: string = process.env.MASKCON_DATA ?? 'data',
): string {
  return join(dataDir, `${name}.sqlite`);
}

export interface BuildDatasetOptions {
  /** Directory with the dataset's published files (each source has its own default). */
  readonly root?: string;
  /** Directory for the index (default $MASKCON_DATA or ./data). */
  readonly outDir?: string;
  /** Rebuild even if the index is up to date. */
  readonly force?: boolean;
  readonly onProgress?: ProgressListener;
  /** Settings some sources take (`--skip-bad`, `--short-side`, `--seed`, `--name`, `--csv`). */
  readonly sourceOptions?: SourceOptions;
}

export type BuildDatasetResult = WriteIndexResult;

/** The source for a registered dataset (for callers that want `writeIndex` directly). */
export function datasetSource(name: string, root?: string, options?: SourceOptions): DatasetSource {
  assertDatasetName(name);
  return SOURCES[name](root, options);
}

/** Build (or confirm up to date) the index of a registered dataset. */
export async function buildDataset(
  name: string,
  options: BuildDatasetOptions = {},
): Promise<BuildDatasetResult> {
  const source = datasetSource(name, options.root, options.sourceOptions);
  // source.name, not name: a `csv` build is indexed under its --name.
  return writeIndex(source, defaultIndexPath(source.name, options.outDir), {
    force: options.force,
    onProgress: options.onProgress,
  });
}
