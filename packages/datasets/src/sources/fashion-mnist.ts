import { join } from 'node:path';
import { DatasetError } from '../errors.js';
import { readGzipIdxU8 } from '../formats/idx.js';
import type { DatasetRecord, DatasetSource, SplitRecords } from '../source.js';
import type { Split } from '../types.js';

/**
 * Fashion-MNIST (Xiao et al., 2017) from its published gzip IDX files:
 * `{train,t10k}-{images-idx3,labels-idx1}-ubyte.gz`, 60,000 train / 10,000 test, 28×28 grey.
 * Debian ships them as `dataset-fashion-mnist` in /usr/share/datasets/fashion-mnist.
 */
export const FASHION_MNIST_DEFAULT_ROOT = '/usr/share/datasets/fashion-mnist';

export const FASHION_MNIST_FINE_CLASSES = [
  'T-shirt/top',
  'Trouser',
  'Pullover',
  'Dress',
  'Coat',
  'Sandal',
  'Shirt',
  'Sneaker',
  'Bag',
  'Ankle boot',
] as const;

export const FASHION_MNIST_COARSE_CLASSES = ['tops', 'footwear', 'other'] as const;

/** The project's fixed grouping: tops {0,2,4,6}, footwear {5,7,9}, other {1,3,8}. */
export const FASHION_MNIST_COARSE_OF_FINE: readonly number[] = [0, 2, 0, 2, 0, 1, 0, 1, 2, 1];

const SIDE = 28;
/** The real train images file is 47,040,016 bytes decompressed; 4× that is surely not Fashion-MNIST. */
const DEFAULT_MAX_DECOMPRESSED_BYTES = 192 * 1024 * 1024;

export interface FashionMnistOptions {
  /** Directory holding the four .gz files. */
  readonly root?: string;
  /** Refuse to decompress any file beyond this many bytes (guards against gzip bombs). */
  readonly maxDecompressedBytes?: number;
}

const FILE_PREFIX: Record<Split, string> = { train: 'train', test: 't10k' };

export function fashionMnistFiles(root: string): Record<Split, { images: string; labels: string }> {
  const files = (split: Split) => ({
    images: join(root, `${FILE_PREFIX[split]}-images-idx3-ubyte.gz`),
    labels: join(root, `${FILE_PREFIX[split]}-labels-idx1-ubyte.gz`),
  });
  return { train: files('train'), test: files('test') };
}

export function fashionMnistSource(options: FashionMnistOptions = {}): DatasetSource {
  const root = options.root ?? FASHION_MNIST_DEFAULT_ROOT;
  const maxDecompressedBytes = options.maxDecompressedBytes ?? DEFAULT_MAX_DECOMPRESSED_BYTES;
  const files = fashionMnistFiles(root);
  const hint =
    `Pass --root DIR pointing at the directory with train-images-idx3-ubyte.gz, train-labels-idx1-ubyte.gz, ` +
    `t10k-images-idx3-ubyte.gz and t10k-labels-idx1-ubyte.gz (on Debian: apt install dataset-fashion-mnist, which puts them in ${FASHION_MNIST_DEFAULT_ROOT}).`;

  return {
    name: 'fashion_mnist',
    builderVersion: '1',
    fineClassNames: FASHION_MNIST_FINE_CLASSES,
    coarseClassNames: FASHION_MNIST_COARSE_CLASSES,
    sourceFiles: (['train', 'test'] as const).flatMap((split) => [
      { name: `${FILE_PREFIX[split]}-images-idx3-ubyte.gz`, path: files[split].images },
      { name: `${FILE_PREFIX[split]}-labels-idx1-ubyte.gz`, path: files[split].labels },
    ]),
    missingFileHint: hint,
    readSplit(split: Split): SplitRecords {
      const { images, labels, count } = readFashionMnistSplit(
        files[split],
        maxDecompressedBytes,
        hint,
      );
      return { expectedCount: count, records: fashionMnistRecords(images, labels, count) };
    },
  };
}

/** Parse and cross-check one split's two files; the returned arrays are fully validated. */
function readFashionMnistSplit(
  paths: { images: string; labels: string },
  maxDecompressedBytes: number,
  hint: string,
): { images: Uint8Array; labels: Uint8Array; count: number } {
  const images = readGzipIdxU8(paths.images, 3, {
    maxDecompressedBytes,
    what: 'Fashion-MNIST images',
    hint,
  });
  const labels = readGzipIdxU8(paths.labels, 1, {
    maxDecompressedBytes,
    what: 'Fashion-MNIST labels',
    hint,
  });
  const [count, rows, cols] = images.dims;
  if (rows !== SIDE || cols !== SIDE) {
    throw new DatasetError(
      `The Fashion-MNIST images file ${paths.images} holds ${rows}×${cols} images, but Fashion-MNIST images are ${SIDE}×${SIDE}; it is not the right file — replace it with the original download.`,
    );
  }
  if (labels.dims[0] !== count) {
    throw new DatasetError(
      `The Fashion-MNIST labels file ${paths.labels} holds ${labels.dims[0]} labels but the images file ${paths.images} holds ${count} images; the two files do not belong together — replace them with the original downloads.`,
    );
  }
  const fineCount = FASHION_MNIST_FINE_CLASSES.length;
  for (let i = 0; i < labels.data.length; i++) {
    if (labels.data[i] >= fineCount) {
      throw new DatasetError(
        `The Fashion-MNIST labels file ${paths.labels} has label ${labels.data[i]} at position ${i}; labels must be 0..${fineCount - 1} — the file is corrupt, replace it with the original download.`,
      );
    }
  }
  return { images: images.data, labels: labels.data, count };
}

function* fashionMnistRecords(
  images: Uint8Array,
  labels: Uint8Array,
  count: number,
): Generator<DatasetRecord> {
  const pixels = SIDE * SIDE;
  for (let i = 0; i < count; i++) {
    const fine = labels[i];
    yield {
      fine,
      coarse: FASHION_MNIST_COARSE_OF_FINE[fine],
      image: {
        data: images.subarray(i * pixels, (i + 1) * pixels),
        height: SIDE,
        width: SIDE,
        channels: 1,
      },
    };
  }
}
