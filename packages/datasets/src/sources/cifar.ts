/**
 * CIFAR-100 (`cifar100`) and the CIFARtoy pair (`cifartoy_good`, `cifartoy_bad`) built from
 * CIFAR-10, read from any of the published forms: the python archive (pickled batch dicts),
 * the binary archive (fixed-size records), or either one extracted into a folder.
 *
 * Both formats store an image as 3,072 bytes: the red, green and blue 32×32 planes, rows top
 * to bottom. Records come out in published order: CIFAR-10 train = data_batch_1..5, test =
 * test_batch; CIFAR-100 train = `train`, test = `test`.
 */
import { closeSync, existsSync, openSync, readFileSync, readSync, statSync } from 'node:fs';
import { basename, join } from 'node:path';
import { DatasetError } from '../errors.js';
import { batchField, intList, isNdArray, stringList, unpickle } from '../formats/pickle.js';
import { readTar } from '../formats/tar.js';
import type { SkippedImage } from '../image-files.js';
import { planarRgbToHwc } from '../planar-rgb.js';
import type { DatasetRecord, DatasetSource, SourceFile, SplitRecords } from '../source.js';
import type { Split } from '../types.js';
import { defaultCacheDir } from '../download.js';

export const CIFAR10_CLASSES = [
  'airplane',
  'automobile',
  'bird',
  'cat',
  'deer',
  'dog',
  'frog',
  'horse',
  'ship',
  'truck',
] as const;

/** CIFAR-100 fine classes in label order (alphabetical), as listed in `meta`. */
export const CIFAR100_FINE_CLASSES = [
  'apple',
  'aquarium_fish',
  'baby',
  'bear',
  'beaver',
  'bed',
  'bee',
  'beetle',
  'bicycle',
  'bottle',
  'bowl',
  'boy',
  'bridge',
  'bus',
  'butterfly',
  'camel',
  'can',
  'castle',
  'caterpillar',
  'cattle',
  'chair',
  'chimpanzee',
  'clock',
  'cloud',
  'cockroach',
  'couch',
  'crab',
  'crocodile',
  'cup',
  'dinosaur',
  'dolphin',
  'elephant',
  'flatfish',
  'forest',
  'fox',
  'girl',
  'hamster',
  'house',
  'kangaroo',
  'keyboard',
  'lamp',
  'lawn_mower',
  'leopard',
  'lion',
  'lizard',
  'lobster',
  'man',
  'maple_tree',
  'motorcycle',
  'mountain',
  'mouse',
  'mushroom',
  'oak_tree',
  'orange',
  'orchid',
  'otter',
  'palm_tree',
  'pear',
  'pickup_truck',
  'pine_tree',
  'plain',
  'plate',
  'poppy',
  'porcupine',
  'possum',
  'rabbit',
  'raccoon',
  'ray',
  'road',
  'rocket',
  'rose',
  'sea',
  'seal',
  'shark',
  'shrew',
  'skunk',
  'skyscraper',
  'snail',
  'snake',
  'spider',
  'squirrel',
  'streetcar',
  'sunflower',
  'sweet_pepper',
  'table',
  'tank',
  'telephone',
  'television',
  'tiger',
  'tractor',
  'train',
  'trout',
  'tulip',
  'turtle',
  'wardrobe',
  'whale',
  'willow_tree',
  'wolf',
  'woman',
  'worm',
] as const;

/** The 20 CIFAR-100 superclasses in label order, as listed in `meta`. */
export const CIFAR100_COARSE_CLASSES = [
  'aquatic_mammals',
  'fish',
  'flowers',
  'food_containers',
  'fruit_and_vegetables',
  'household_electrical_devices',
  'household_furniture',
  'insects',
  'large_carnivores',
  'large_man-made_outdoor_things',
  'large_natural_outdoor_scenes',
  'large_omnivores_and_herbivores',
  'medium_mammals',
  'non-insect_invertebrates',
  'people',
  'reptiles',
  'small_mammals',
  'trees',
  'vehicles_1',
  'vehicles_2',
] as const;

/** CIFARtoy keeps 8 CIFAR-10 classes (deer 4 and frog 6 dropped); fine id = position here. */
export const CIFARTOY_CIFAR10_IDS = [0, 1, 2, 3, 5, 7, 8, 9] as const;
export const CIFARTOY_FINE_CLASSES = CIFARTOY_CIFAR10_IDS.map((id) => CIFAR10_CLASSES[id]);

/** Coarse label of each CIFARtoy fine id (0..7). good: vehicles vs animals; bad: mixed. */
export const CIFARTOY_COARSE_OF_FINE = {
  // airplane automobile bird cat dog horse ship truck
  good: [0, 0, 1, 1, 1, 1, 0, 0],
  bad: [0, 0, 1, 0, 0, 1, 1, 1],
} as const;
export const CIFARTOY_COARSE_CLASSES = {
  good: ['vehicles', 'animals'],
  bad: ['airplane+automobile+cat+dog', 'ship+truck+bird+horse'],
} as const;

const SIDE = 32;
const PIXELS = SIDE * SIDE * 3;

type Edition = 'cifar10' | 'cifar100';
type Format = 'python' | 'binary';

/** Where the published files are: an archive, or an extracted folder. */
export interface CifarInput {
  readonly edition: Edition;
  readonly format: Format;
  /** Set for an archive. */
  readonly archive?: string;
  /** Set for a folder: batch/meta file name → path. */
  readonly folder?: string;
}

const LAYOUT = {
  cifar10: {
    python: {
      archive: 'cifar-10-python.tar.gz',
      dir: 'cifar-10-batches-py',
      train: ['data_batch_1', 'data_batch_2', 'data_batch_3', 'data_batch_4', 'data_batch_5'],
      test: ['test_batch'],
      meta: ['batches.meta'],
    },
    binary: {
      archive: 'cifar-10-binary.tar.gz',
      dir: 'cifar-10-batches-bin',
      train: [
        'data_batch_1.bin',
        'data_batch_2.bin',
        'data_batch_3.bin',
        'data_batch_4.bin',
        'data_batch_5.bin',
      ],
      test: ['test_batch.bin'],
      meta: ['batches.meta.txt'],
    },
  },
  cifar100: {
    python: {
      archive: 'cifar-100-python.tar.gz',
      dir: 'cifar-100-python',
      train: ['train'],
      test: ['test'],
      meta: ['meta'],
    },
    binary: {
      archive: 'cifar-100-binary.tar.gz',
      dir: 'cifar-100-binary',
      train: ['train.bin'],
      test: ['test.bin'],
      meta: ['coarse_label_names.txt', 'fine_label_names.txt'],
    },
  },
} as const;

/** Default root: the download cache folder of the edition. */
export function cifarDefaultRoot(edition: Edition): string {
  return join(defaultCacheDir(), edition);
}

/** Find the published files under `root` (a folder) or at `root` (an archive). */
export function resolveCifarInput(edition: Edition, root: string): CifarInput {
  const formats: Format[] = ['python', 'binary'];
  if (existsSync(root) && statSync(root).isFile()) {
    const name = basename(root);
    const format: Format = name.includes('binary') || name.includes('-bin') ? 'binary' : 'python';
    return { edition, format, archive: root };
  }
  for (const format of formats) {
    const archive = join(root, LAYOUT[edition][format].archive);
    if (existsSync(archive)) return { edition, format, archive };
  }
  for (const format of formats) {
    const layout = LAYOUT[edition][format];
    for (const dir of [join(root, layout.dir), root]) {
      if ([...layout.train, ...layout.test].every((f) => existsSync(join(dir, f))))
        return { edition, format, folder: dir };
    }
  }
  // Nothing there: point at the python archive so the error names what to provide.
  return { edition, format: 'python', archive: join(root, LAYOUT[edition].python.archive) };
}

/** One batch file in memory: planar pixels (N×3072) and its label columns. */
interface CifarBatch {
  readonly file: string;
  readonly count: number;
  readonly pixels: Uint8Array;
  /** CIFAR-10 label, or CIFAR-100 fine label. */
  readonly fine: readonly number[];
  /** CIFAR-100 only. */
  readonly coarse?: readonly number[];
}

function parsePythonBatch(bytes: Uint8Array, file: string, edition: Edition): CifarBatch {
  const dict = unpickle(bytes, file);
  const data = batchField(dict, 'data', file);
  if (
    !isNdArray(data) ||
    data.dtype.kind !== 'u' ||
    data.dtype.itemSize !== 1 ||
    data.shape.length !== 2 ||
    data.shape[1] !== PIXELS
  ) {
    throw new DatasetError(
      `Pickle ${file}: 'data' is not a uint8 array of shape (N, ${PIXELS}); it is not a CIFAR batch.`,
    );
  }
  const count = data.shape[0];
  const fineKey = edition === 'cifar10' ? 'labels' : 'fine_labels';
  const fine = intList(batchField(dict, fineKey, file), `'${fineKey}'`, file);
  const coarse =
    edition === 'cifar100'
      ? intList(batchField(dict, 'coarse_labels', file), "'coarse_labels'", file)
      : undefined;
  for (const [key, list] of [
    [fineKey, fine],
    ['coarse_labels', coarse],
  ] as const) {
    if (list && list.length !== count) {
      throw new DatasetError(
        `Pickle ${file} has ${count} images but ${list.length} entries in '${key}'; the batch is corrupt — replace it with the original download.`,
      );
    }
  }
  return { file, count, pixels: data.data as Uint8Array, fine, coarse };
}

/** Under --skip-bad: told about each record or batch left out (file, which part, why). */
type SkipReporter = (file: string, where: string, reason: string) => void;

function parseBinaryBatch(
  bytes: Uint8Array,
  file: string,
  edition: Edition,
  skip?: SkipReporter,
): CifarBatch {
  const labelBytes = edition === 'cifar10' ? 1 : 2;
  const recordBytes = labelBytes + PIXELS;
  const count = Math.floor(bytes.length / recordBytes);
  if (bytes.length % recordBytes !== 0) {
    const reason = `the file is ${bytes.length} bytes, not a whole number of ${recordBytes}-byte records: record ${count} is cut short after ${bytes.length - count * recordBytes} bytes`;
    if (!skip) {
      throw new DatasetError(
        `Batch ${file} is ${bytes.length} bytes, not a whole number of ${recordBytes}-byte records: record ${count} is cut short after ${bytes.length - count * recordBytes} bytes. The file is truncated — replace it with the original download, or pass --skip-bad to keep its whole records.`,
      );
    }
    skip(file, `record ${count}`, reason); // the whole records before it are kept
  }
  const pixels = new Uint8Array(count * PIXELS);
  const fine: number[] = [];
  const coarse: number[] = [];
  for (let i = 0; i < count; i++) {
    const at = i * recordBytes;
    if (edition === 'cifar10') fine.push(bytes[at]);
    else {
      coarse.push(bytes[at]);
      fine.push(bytes[at + 1]);
    }
    pixels.set(bytes.subarray(at + labelBytes, at + recordBytes), i * PIXELS);
  }
  return { file, count, pixels, fine, coarse: edition === 'cifar100' ? coarse : undefined };
}

/** Check the class names a meta file lists against the official lists. */
function checkMeta(name: string, bytes: Uint8Array, file: string, edition: Edition): void {
  const lists: [string, readonly string[], string[]][] = [];
  if (name === 'meta' || name === 'batches.meta') {
    const dict = unpickle(bytes, file);
    if (edition === 'cifar10')
      lists.push([
        'label_names',
        CIFAR10_CLASSES,
        stringList(batchField(dict, 'label_names', file), "'label_names'", file),
      ]);
    else {
      lists.push([
        'fine_label_names',
        CIFAR100_FINE_CLASSES,
        stringList(batchField(dict, 'fine_label_names', file), "'fine_label_names'", file),
      ]);
      lists.push([
        'coarse_label_names',
        CIFAR100_COARSE_CLASSES,
        stringList(batchField(dict, 'coarse_label_names', file), "'coarse_label_names'", file),
      ]);
    }
  } else {
    const names = Buffer.from(bytes)
      .toString('utf8')
      .split(/\r?\n/)
      .map((s) => s.trim())
      .filter((s) => s !== '');
    const official =
      name === 'batches.meta.txt'
        ? CIFAR10_CLASSES
        : name.startsWith('coarse')
          ? CIFAR100_COARSE_CLASSES
          : CIFAR100_FINE_CLASSES;
    lists.push([name, official, names]);
  }
  for (const [what, official, found] of lists) {
    const differs = found.length !== official.length || found.some((n, i) => n !== official[i]);
    if (differs) {
      const i = found.findIndex((n, k) => n !== official[k]);
      throw new DatasetError(
        `${file} lists ${found.length} ${what} (${i >= 0 ? `entry ${i} is '${found[i]}', expected '${official[i]}'` : 'a different count'}) but ${edition} has ${official.length} fixed classes; this is not the published ${edition}.`,
      );
    }
  }
}

/** Bytes of a binary-format record: label byte(s) + 3,072 pixels. */
function binaryRecordBytes(edition: Edition): number {
  return (edition === 'cifar10' ? 1 : 2) + PIXELS;
}

/**
 * The largest a published file can be, with headroom: 10,000-image python batches are
 * ~31 MB, CIFAR-100's 50,000-image `train` ~155 MB, the meta files under 2 KB; binary batches
 * are exactly their records. Anything larger is refused before it is read into memory.
 */
export function cifarFileLimit(edition: Edition, format: Format, name: string): number {
  const layout = LAYOUT[edition][format];
  if ((layout.meta as readonly string[]).includes(name)) return 64 * 1024;
  const images =
    edition === 'cifar100' && (name === 'train' || name === 'train.bin') ? 50_000 : 10_000;
  if (format === 'binary') return images * binaryRecordBytes(edition);
  return Math.ceil((images * (PIXELS + 100) * 1.5) / 2 ** 20) * 2 ** 20; // pixels + labels, names
}

/** The whole-archive limit: both published archives unpack to under 200 MB. */
const CIFAR_ARCHIVE_LIMIT = 512 * 2 ** 20;

/** Bytes looked at before a file is read whole. */
const MAGIC_BYTES = 8;

/**
 * Why the first bytes of a file cannot be the named CIFAR file, or undefined if they can.
 * Python batches and meta are pickles: protocol 2–5 starts with PROTO (0x80) and its version,
 * protocol 0/1 with MARK `(` or EMPTY_DICT `}`. Text meta files hold no NUL bytes. Binary
 * batches have no magic; their size limit is their check.
 */
function notCifarStart(format: Format, name: string, head: Uint8Array): string | undefined {
  const shown = [...head.subarray(0, 4)].map((b) => b.toString(16).padStart(2, '0')).join(' ');
  if (format === 'python') {
    if (head.length === 0) return 'is empty, not a pickle';
    const ok =
      (head[0] === 0x80 && head.length > 1 && head[1] >= 2 && head[1] <= 5) ||
      head[0] === 0x28 ||
      head[0] === 0x7d;
    return ok
      ? undefined
      : `starts with bytes ${shown}, not a pickle header (0x80 and protocol 2–5, or '(' / '}')`;
  }
  if (name.endsWith('.txt') && head.includes(0)) return `starts with bytes ${shown}, not text`;
  return undefined;
}

/** Read one split's batches (and check the meta files), in published order. */
async function readCifarBatches(
  input: CifarInput,
  split: Split,
  skip?: SkipReporter,
): Promise<CifarBatch[]> {
  const layout = LAYOUT[input.edition][input.format];
  const wanted: readonly string[] = layout[split];
  const meta: readonly string[] = layout.meta;
  // A batch that cannot be parsed stops the build — or, under --skip-bad, is left out whole.
  const parse = (_name: string, bytes: Uint8Array, file: string): CifarBatch | undefined => {
    try {
      return input.format === 'python'
        ? parsePythonBatch(bytes, file, input.edition)
        : parseBinaryBatch(bytes, file, input.edition, skip);
    } catch (error) {
      if (!skip || !(error instanceof DatasetError)) throw error;
      skip(file, 'whole batch', error.message);
      return undefined;
    }
  };
  const batches = new Map<string, CifarBatch | undefined>();
  const edition = input.edition === 'cifar10' ? 'CIFAR-10' : 'CIFAR-100';
  /** Refuse a file by its size or first bytes, before it is read whole; undefined when it may be read. */
  const refuse = (name: string, size: number, head: Uint8Array, file: string) => {
    const limit = cifarFileLimit(input.edition, input.format, name);
    const why =
      size > limit
        ? `is ${size} bytes, more than the ${limit} the published ${edition} ${name} can be`
        : notCifarStart(input.format, name, head);
    if (why === undefined) return false;
    const message = `${file} ${why}; it is not the published ${edition} file — download it again.`;
    // Under --skip-bad a batch that cannot be one is left out whole; a bad meta file still stops.
    if (!skip || meta.includes(name)) throw new DatasetError(message);
    skip(file, 'whole batch', message);
    batches.set(name, undefined);
    return true;
  };
  if (input.archive) {
    const raw = new Map<string, Buffer>();
    const seen = new Set<string>();
    for await (const entry of readTar(input.archive, {
      maxEntryBytes: CIFAR_ARCHIVE_LIMIT,
      maxTotalBytes: CIFAR_ARCHIVE_LIMIT,
    })) {
      if (entry.type !== 'file') continue;
      const name = entry.name.split('/').pop() as string;
      if (wanted.includes(name) || meta.includes(name)) {
        if (seen.has(name))
          throw new DatasetError(
            `Archive ${input.archive} holds '${name}' twice; it is not the published archive.`,
          );
        seen.add(name);
        const file = `${input.archive}:${name}`;
        if (refuse(name, entry.size, await entry.head(MAGIC_BYTES), file)) continue;
        raw.set(name, await entry.read());
      }
    }
    for (const name of meta) {
      const bytes = raw.get(name);
      if (bytes) checkMeta(name, bytes, `${input.archive}:${name}`, input.edition);
    }
    for (const name of wanted) {
      if (batches.has(name)) continue; // refused under --skip-bad
      const bytes = raw.get(name);
      if (!bytes) {
        throw new DatasetError(
          `Archive ${input.archive} has no '${name}' batch; it is not the published ${layout.archive} (or it is truncated).`,
        );
      }
      batches.set(name, parse(name, bytes, `${input.archive}:${name}`));
      raw.delete(name); // free the raw bytes as soon as they are parsed
    }
  } else {
    const folder = input.folder as string;
    const readChecked = (name: string, file: string): Buffer | undefined => {
      const size = statSync(file).size;
      const fd = openSync(file, 'r');
      const head = Buffer.alloc(MAGIC_BYTES);
      try {
        readSync(fd, head, 0, MAGIC_BYTES, 0);
      } finally {
        closeSync(fd);
      }
      return refuse(name, size, head.subarray(0, Math.min(size, MAGIC_BYTES)), file)
        ? undefined
        : readFileSync(file);
    };
    for (const name of meta) {
      const file = join(folder, name);
      if (!existsSync(file)) continue;
      const bytes = readChecked(name, file);
      if (bytes) checkMeta(name, bytes, file, input.edition);
    }
    for (const name of wanted) {
      const file = join(folder, name);
      const bytes = readChecked(name, file);
      if (bytes) batches.set(name, parse(name, bytes, file));
    }
  }
  return wanted.map((name) => batches.get(name)).filter((b): b is CifarBatch => b !== undefined);
}

/** The skip reporter of a build with --skip-bad, or undefined (stop at the first problem). */
function skipReporter(
  dataset: string,
  split: Split,
  options: CifarOptions,
): SkipReporter | undefined {
  if (!options.skipBad) return undefined;
  return (file, where, reason) => options.onSkip?.({ dataset, split, path: file, where, reason });
}

function sourceFilesOf(input: CifarInput, split?: Split): SourceFile[] {
  if (input.archive) return [{ name: basename(input.archive), path: input.archive }];
  const layout = LAYOUT[input.edition][input.format];
  const names = split
    ? layout[split]
    : [
        ...layout.train,
        ...layout.test,
        ...layout.meta.filter((m) => existsSync(join(input.folder as string, m))),
      ];
  return names.map((name) => ({
    name: `${layout.dir}/${name}`,
    path: join(input.folder as string, name),
  }));
}

function hint(edition: Edition, root: string): string {
  const python = LAYOUT[edition].python;
  const binary = LAYOUT[edition].binary;
  return `Pass --root DIR with ${python.archive} or ${binary.archive} (or their extracted ${python.dir}/ or ${binary.dir}/ folder), a path to one of those archives, or use --download (looked in ${root}).`;
}

export interface CifarOptions {
  /** Folder with the archive or extracted folder, or the archive itself. */
  readonly root?: string;
  /**
   * Leave out what is unreadable instead of stopping: a batch that does not parse (or whose
   * label lists do not match its images), the cut-short last record of a truncated binary
   * batch, and records whose label is out of range. Each is reported to `onSkip`.
   */
  readonly skipBad?: boolean;
  readonly onSkip?: (skipped: SkippedImage) => void;
}

export function cifar100Source(options: CifarOptions = {}): DatasetSource {
  const root = options.root ?? cifarDefaultRoot('cifar100');
  const input = resolveCifarInput('cifar100', root);
  return {
    name: 'cifar100',
    builderVersion: '1',
    fineClassNames: CIFAR100_FINE_CLASSES,
    coarseClassNames: CIFAR100_COARSE_CLASSES,
    sourceFiles: sourceFilesOf(input),
    config: { format: input.format, skipBad: options.skipBad ?? false },
    missingFileHint: hint('cifar100', root),
    async readSplit(split: Split): Promise<SplitRecords> {
      const skip = skipReporter('cifar100', split, options);
      const batches = await readCifarBatches(input, split, skip);
      // Check every label first, so a bad one fails before any image is written and the
      // progress total counts only the records that will be kept.
      const bad = batches.map(() => new Set<number>());
      batches.forEach((batch, b) => {
        const coarse = batch.coarse as readonly number[];
        for (let i = 0; i < batch.count; i++) {
          if (batch.fine[i] < 100 && coarse[i] < 20) continue;
          const reason = `fine label ${batch.fine[i]} / coarse label ${coarse[i]}, outside 0..99 / 0..19`;
          if (!skip)
            throw new DatasetError(
              `${batch.file}: image ${i} has ${reason}; the batch is corrupt (pass --skip-bad to leave such images out).`,
            );
          skip(batch.file, `image ${i}`, reason);
          bad[b].add(i);
        }
      });
      const records = function* (): Generator<DatasetRecord> {
        for (const [b, batch] of batches.entries()) {
          const coarse = batch.coarse as readonly number[];
          for (let i = 0; i < batch.count; i++) {
            if (bad[b].has(i)) continue;
            yield {
              fine: batch.fine[i],
              coarse: coarse[i],
              image: {
                data: planarRgbToHwc(batch.pixels, i * PIXELS, SIDE),
                height: SIDE,
                width: SIDE,
                channels: 3,
              },
            };
          }
        }
      };
      return {
        expectedCount: batches.reduce((n, batch, b) => n + batch.count - bad[b].size, 0),
        records: records(),
      };
    },
  };
}

export function cifarToySource(variant: 'good' | 'bad', options: CifarOptions = {}): DatasetSource {
  const root = options.root ?? cifarDefaultRoot('cifar10');
  const input = resolveCifarInput('cifar10', root);
  const fineOf = new Map<number, number>(CIFARTOY_CIFAR10_IDS.map((id, fine) => [id, fine]));
  const coarseOf = CIFARTOY_COARSE_OF_FINE[variant];
  return {
    name: `cifartoy_${variant}`,
    builderVersion: '1',
    fineClassNames: CIFARTOY_FINE_CLASSES,
    coarseClassNames: CIFARTOY_COARSE_CLASSES[variant],
    sourceFiles: sourceFilesOf(input),
    config: {
      format: input.format,
      cifar10Ids: CIFARTOY_CIFAR10_IDS,
      coarseOfFine: coarseOf,
      skipBad: options.skipBad ?? false,
    },
    missingFileHint: hint('cifar10', root),
    async readSplit(split: Split): Promise<SplitRecords> {
      const skip = skipReporter(`cifartoy_${variant}`, split, options);
      const batches = await readCifarBatches(input, split, skip);
      let expected = 0;
      for (const batch of batches) {
        batch.fine.forEach((label, i) => {
          if (label > 9) {
            const reason = `label ${label}, outside CIFAR-10's 0..9`;
            if (!skip)
              throw new DatasetError(
                `${batch.file}: image ${i} has ${reason}; the batch is corrupt (pass --skip-bad to leave such images out).`,
              );
            skip(batch.file, `image ${i}`, reason); // not in fineOf: the generator leaves it out
          }
          if (fineOf.has(label)) expected += 1;
        });
      }
      const records = function* (): Generator<DatasetRecord> {
        for (const batch of batches) {
          for (let i = 0; i < batch.count; i++) {
            const fine = fineOf.get(batch.fine[i]);
            if (fine === undefined) continue; // deer and frog are not in CIFARtoy
            yield {
              fine,
              coarse: coarseOf[fine],
              image: {
                data: planarRgbToHwc(batch.pixels, i * PIXELS, SIDE),
                height: SIDE,
                width: SIDE,
                channels: 3,
              },
            };
          }
        }
      };
      return { expectedCount: expected, records: records() };
    },
  };
}
