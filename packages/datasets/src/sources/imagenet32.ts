/**
 * Downsampled ImageNet 32×32 (`imagenet32`, Chrabaszcz et al. 2017): 1,281,167 train images
 * in `train_data_batch_1..10` and 50,000 validation images (our test split) in `val_data`,
 * each a pickled dict or an `.npz` archive (`…npz`) with `data` (uint8 N×3072, planes R,G,B)
 * and `labels` (1..1000).
 *
 * Label order: label k is line k of the ILSVRC devkit's `map_clsloc.txt` (`wnid k name`),
 * not the sorted-wnid order. Our fine label is k − 1, so fine id i is line i+1 of
 * `map_clsloc.txt`, and the fine class names are that file's names. The coarse label is the
 * WordNet group of the wnid (`imagenet-groups.ts`, 12 groups, Table 3).
 *
 * Streaming: only a batch's labels are held in memory; pixels are read 2,048 rows at a time
 * straight from the pickle file (its big byte string is located, not loaded) or inflated
 * from the npz entry, so memory stays bounded for the 1.28M images.
 */
import { closeSync, existsSync, openSync, readdirSync, readFileSync, statSync } from 'node:fs';
import { join } from 'node:path';
import { DatasetError } from '../errors.js';
import { ChunkReader, ShortRead } from '../formats/chunk-reader.js';
import {
  NPY_PREAMBLE_BYTES,
  npyHeaderLength,
  npyIntegers,
  parseNpyHeader,
} from '../formats/npy.js';
import { batchField, intList, isNdArray, readLazy, unpickleFile } from '../formats/pickle.js';
import { listZip, readZipEntry, zipEntryChunks, type ZipEntry } from '../formats/zip.js';
import type { SkippedImage } from '../image-files.js';
import { planarRgbToHwc } from '../planar-rgb.js';
import type { DatasetRecord, DatasetSource, SourceFile, SplitRecords } from '../source.js';
import type { Split } from '../types.js';
import { defaultCacheDir } from '../download.js';
import { IMAGENET_GROUP_NAMES, IMAGENET_GROUP_OF_WNID } from './imagenet-groups.js';

const SIDE = 32;
const PIXELS = SIDE * SIDE * 3;
const ROWS_PER_READ = 2048;
export const IMAGENET32_TRAIN_BATCHES = 10;
const CLASSES = 1000;

export interface ImageNet32Options {
  /** Folder with the batches (or sub-folders holding them) and `map_clsloc.txt`. */
  readonly root?: string;
  /** The devkit class list (default `<root>/map_clsloc.txt`). */
  readonly classList?: string;
  /**
   * Leave out what is unreadable instead of stopping: a batch that does not parse (or whose
   * label count does not match its images), the images after the point where a batch's pixel
   * data is cut short, and images whose label is outside 1..1000. Each is reported to `onSkip`.
   */
  readonly skipBad?: boolean;
  readonly onSkip?: (skipped: SkippedImage) => void;
}

export interface ImageNetClass {
  readonly wnid: string;
  readonly name: string;
  readonly coarse: number;
}

/** Parse `map_clsloc.txt`: 1,000 lines `wnid index name`, index 1..1000 in order. */
export function parseClassList(text: string, path: string): ImageNetClass[] {
  const classes: ImageNetClass[] = [];
  const seen = new Set<string>();
  text.split('\n').forEach((raw, i) => {
    const line = raw.trim();
    if (line === '') return;
    const [wnid, index, ...rest] = line.split(/\s+/);
    const fail = (why: string): never => {
      throw new DatasetError(
        `${path} line ${i + 1} ('${line}'): ${why}. It must be the ILSVRC-2012 devkit's map_clsloc.txt.`,
      );
    };
    if (!/^n\d{8}$/.test(wnid)) fail(`'${wnid}' is not a WordNet id`);
    if (Number(index) !== classes.length + 1)
      fail(`index ${index} should be ${classes.length + 1}`);
    if (seen.has(wnid)) fail(`${wnid} is listed twice`);
    const coarse = IMAGENET_GROUP_OF_WNID[wnid];
    if (coarse === undefined) fail(`${wnid} is not one of the 1,000 ILSVRC-2012 classes`);
    seen.add(wnid);
    classes.push({ wnid, name: rest.join(' ') || wnid, coarse });
  });
  if (classes.length !== CLASSES) {
    throw new DatasetError(
      `${path} lists ${classes.length} classes; map_clsloc.txt lists ${CLASSES}.`,
    );
  }
  return classes;
}

interface BatchFile {
  readonly name: string;
  readonly path: string;
  readonly npz: boolean;
}

const SPLIT_FILES: Record<Split, string[]> = {
  train: Array.from({ length: IMAGENET32_TRAIN_BATCHES }, (_, i) => `train_data_batch_${i + 1}`),
  test: ['val_data'],
};

/** Find each batch (pickle or .npz) in `root` or one sub-folder down (e.g. Imagenet32_train/). */
function findBatches(root: string): Record<Split, BatchFile[]> {
  const dirs = [root];
  if (existsSync(root) && statSync(root).isDirectory()) {
    for (const entry of readdirSync(root, { withFileTypes: true }))
      if (entry.isDirectory()) dirs.push(join(root, entry.name));
  }
  const find = (name: string): BatchFile => {
    for (const dir of dirs) {
      if (existsSync(join(dir, `${name}.npz`)))
        return { name: `${name}.npz`, path: join(dir, `${name}.npz`), npz: true };
      if (existsSync(join(dir, name))) return { name, path: join(dir, name), npz: false };
    }
    return { name, path: join(root, name), npz: false }; // missing: the hash step reports it
  };
  return { train: SPLIT_FILES.train.map(find), test: SPLIT_FILES.test.map(find) };
}

/** A batch opened for streaming: its labels, and a reader of pixel rows. */
interface OpenBatch {
  readonly labels: number[];
  rows(): AsyncGenerator<Uint8Array>; // chunks of whole rows (k×3072 bytes)
}

/** Under --skip-bad: told about each image or batch left out (file, which part, why). */
type SkipReporter = (file: string, where: string, reason: string) => void;

const labelOk = (label: number): boolean =>
  Number.isInteger(label) && label >= 1 && label <= CLASSES;

/** Throws on the first out-of-range label, unless bad ones are to be skipped (then they are reported as the rows stream). */
function checkLabels(labels: number[], file: string, skip: SkipReporter | undefined): void {
  if (skip) return;
  labels.forEach((label, i) => {
    if (!labelOk(label)) {
      throw new DatasetError(
        `${file}: label ${i} is ${label}, outside 1..${CLASSES}; the batch is corrupt (pass --skip-bad to leave such images out).`,
      );
    }
  });
}

function openPickleBatch(file: string, skip: SkipReporter | undefined): OpenBatch {
  const dict = unpickleFile(file);
  const data = batchField(dict, 'data', file);
  if (
    !isNdArray(data) ||
    data.dtype.itemSize !== 1 ||
    data.dtype.kind !== 'u' ||
    data.shape.length !== 2 ||
    data.shape[1] !== PIXELS
  ) {
    throw new DatasetError(
      `Pickle ${file}: 'data' is not a uint8 array of shape (N, ${PIXELS}); it is not an ImageNet32 batch.`,
    );
  }
  const count = data.shape[0];
  const labels = intList(batchField(dict, 'labels', file), "'labels'", file);
  if (labels.length !== count) {
    throw new DatasetError(
      `Pickle ${file} has ${count} images but ${labels.length} labels; the batch is corrupt — replace it with the original download.`,
    );
  }
  checkLabels(labels, file, skip);
  const pixels = data.data;
  return {
    labels,
    async *rows() {
      if (pixels instanceof Uint8Array) {
        for (let r = 0; r < count; r += ROWS_PER_READ)
          yield pixels.subarray(r * PIXELS, Math.min(count, r + ROWS_PER_READ) * PIXELS);
        return;
      }
      const fd = openSync(file, 'r');
      try {
        for (let r = 0; r < count; r += ROWS_PER_READ) {
          const n = Math.min(ROWS_PER_READ, count - r);
          yield readLazy(pixels, r * PIXELS, n * PIXELS, fd);
        }
      } finally {
        closeSync(fd);
      }
    },
  };
}

async function openNpzBatch(file: string, skip: SkipReporter | undefined): Promise<OpenBatch> {
  const entries = listZip(file);
  const entry = (name: string): ZipEntry => {
    const found = entries.find((e) => e.name === `${name}.npy`);
    if (!found) {
      throw new DatasetError(
        `${file} has no '${name}.npy' (it has ${entries.map((e) => e.name).join(', ')}); it is not an ImageNet32 npz batch.`,
      );
    }
    return found;
  };
  const labelsEntry = entry('labels');
  const labelBytes = await readZipEntry(file, labelsEntry);
  const labelHeader = parseNpyHeader(labelBytes, `${file}:labels.npy`);
  const labels = npyIntegers(
    labelHeader,
    labelBytes.subarray(labelHeader.dataOffset),
    `${file}:labels.npy`,
  );
  checkLabels(labels, file, skip);
  const dataEntry = entry('data');
  return {
    labels,
    async *rows() {
      const what = `${file}:data.npy`;
      const reader = new ChunkReader(zipEntryChunks(file, dataEntry)[Symbol.asyncIterator]());
      try {
        const preamble = await reader.read(NPY_PREAMBLE_BYTES);
        if (!preamble) throw new DatasetError(`${what} is empty.`);
        const headerLength = npyHeaderLength(preamble, what);
        const rest = await reader.read(headerLength - NPY_PREAMBLE_BYTES);
        const header = parseNpyHeader(Buffer.concat([preamble, rest ?? Buffer.alloc(0)]), what);
        const { dtype, shape } = header;
        if (
          dtype.kind !== 'u' ||
          dtype.itemSize !== 1 ||
          shape.length !== 2 ||
          shape[1] !== PIXELS
        ) {
          throw new DatasetError(
            `${what} is not a uint8 array of shape (N, ${PIXELS}) (shape ${shape.join('×')}); it is not an ImageNet32 batch.`,
          );
        }
        if (shape[0] !== labels.length) {
          throw new DatasetError(
            `${file} has ${shape[0]} images but ${labels.length} labels; the batch is corrupt — replace it with the original download.`,
          );
        }
        for (let r = 0; r < shape[0]; r += ROWS_PER_READ) {
          const n = Math.min(ROWS_PER_READ, shape[0] - r);
          const chunk = await reader.read(n * PIXELS);
          if (!chunk) throw new ShortRead(0, n * PIXELS);
          yield chunk;
        }
        // Read to the end of the entry so its CRC-32 is checked (numpy refuses a bad CRC too).
        const extra = await reader.end();
        if (extra > 0) {
          throw new DatasetError(
            `${what} holds ${extra} bytes after its ${shape[0]} images; the batch is corrupt — replace it with the original download.`,
          );
        }
      } catch (error) {
        if (error instanceof ShortRead)
          throw new DatasetError(
            `${what} ends before all its images; the batch is truncated — replace it with the original download.`,
          );
        throw error;
      } finally {
        await reader.close();
      }
    },
  };
}

export function imagenet32DefaultRoot(): string {
  return join(defaultCacheDir(), 'imagenet32');
}

export function imagenet32Source(options: ImageNet32Options = {}): DatasetSource {
  const root = options.root ?? imagenet32DefaultRoot();
  const classListPath = options.classList ?? join(root, 'map_clsloc.txt');
  const batches = findBatches(root);
  let classes: ImageNetClass[] | undefined;
  const loadClasses = (): ImageNetClass[] => {
    if (!classes) {
      let text: string;
      try {
        text = readFileSync(classListPath, 'utf8');
      } catch (error) {
        throw new DatasetError(
          `Cannot read the ImageNet class list ${classListPath} (${(error as Error).message}). ${hint}`,
        );
      }
      classes = parseClassList(text, classListPath);
    }
    return classes;
  };
  const hint = `Pass --root DIR with train_data_batch_1..10 and val_data (pickles or .npz, possibly in sub-folders) and the ILSVRC-2012 devkit's map_clsloc.txt (looked in ${root}).`;
  const sourceFiles: SourceFile[] = [
    { name: 'map_clsloc.txt', path: classListPath },
    ...[...batches.train, ...batches.test].map((b) => ({ name: b.name, path: b.path })),
  ];
  return {
    name: 'imagenet32',
    builderVersion: '1',
    get fineClassNames() {
      return loadClasses().map((c) => c.name);
    },
    coarseClassNames: IMAGENET_GROUP_NAMES,
    sourceFiles,
    config: { labelOrder: 'map_clsloc', skipBad: options.skipBad ?? false },
    missingFileHint: hint,
    async readSplit(split: Split): Promise<SplitRecords> {
      const cls = loadClasses();
      const files = batches[split];
      // Labels of every batch first (~10 MB for the train split) so progress has a total.
      let expected = 0;
      const skip: SkipReporter | undefined = options.skipBad
        ? (file, where, reason) =>
            options.onSkip?.({ dataset: 'imagenet32', split, path: file, where, reason })
        : undefined;
      const records = async function* (): AsyncGenerator<DatasetRecord> {
        for (const file of files) {
          let batch: OpenBatch;
          try {
            batch = file.npz
              ? await openNpzBatch(file.path, skip)
              : openPickleBatch(file.path, skip);
          } catch (error) {
            if (!skip || !(error instanceof DatasetError)) throw error;
            skip(file.path, 'whole batch', error.message);
            continue;
          }
          let i = 0;
          try {
            for await (const chunk of batch.rows()) {
              for (let at = 0; at < chunk.length; at += PIXELS, i++) {
                const label = batch.labels[i];
                if (!labelOk(label)) {
                  // Only reached under --skip-bad: checkLabels threw otherwise.
                  skip?.(file.path, `image ${i}`, `label ${label}, outside 1..${CLASSES}`);
                  continue;
                }
                const fine = label - 1;
                yield {
                  fine,
                  coarse: cls[fine].coarse,
                  image: {
                    data: planarRgbToHwc(chunk, at, SIDE),
                    height: SIDE,
                    width: SIDE,
                    channels: 3,
                  },
                };
              }
            }
          } catch (error) {
            if (!skip || !(error instanceof DatasetError)) throw error;
            const rest =
              i < batch.labels.length - 1
                ? `images ${i}..${batch.labels.length - 1}`
                : `image ${i}`;
            skip(file.path, rest, error.message); // the images before the damage are kept
          }
        }
      };
      // The progress total (for the ETA): label lists are cheap to count — a pickle's pixels
      // stay on disk, an npz's labels.npy is a separate small entry. Under --skip-bad the
      // count is unknown until the batches are read.
      if (!skip) {
        for (const file of files)
          expected += file.npz ? await countNpzLabels(file.path) : countPickleLabels(file.path);
      }
      return { expectedCount: skip ? undefined : expected, records: records() };
    },
  };
}

/** Number of images in an npz batch (the length of its labels.npy), for the progress total. */
async function countNpzLabels(file: string): Promise<number> {
  if (!existsSync(file)) return 0;
  const entry = listZip(file).find((e) => e.name === 'labels.npy');
  if (!entry) return 0; // openNpzBatch names what is missing
  const bytes = await readZipEntry(file, entry);
  const header = parseNpyHeader(bytes, `${file}:labels.npy`);
  return header.shape[0] ?? 0;
}

/** Number of images in a pickle batch (its labels list), for the progress total. */
function countPickleLabels(file: string): number {
  if (!existsSync(file)) return 0;
  const dict = unpickleFile(file);
  return intList(batchField(dict, 'labels', file), "'labels'", file).length;
}
