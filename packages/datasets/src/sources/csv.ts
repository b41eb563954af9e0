import { dirname, join } from 'node:path';
import { DatasetError } from '../errors.js';
import { readCsvRows, type CsvRow } from '../formats/csv-rows.js';
import {
  checkShortSide,
  decodeImageFiles,
  DEFAULT_SHORT_SIDE,
  imageDecodeKey,
  type ImageFileItem,
} from '../image-files.js';
import { DatasetRoot } from '../safe-path.js';
import { checkSeed, seededRandom, seededShuffle } from '../seeded-split.js';
import type { DatasetSource, ReadContext, SplitRecords } from '../source.js';
import type { SourceOptions } from '../source-options.js';
import type { Split } from '../types.js';

/**
 * Any image dataset described by a CSV or TSV file (`csv`): the practical entry point for a
 * user's own catalogue.
 *
 * The first row is a header. Columns are found by name (case-insensitive):
 *   image path   `path`, `image`, `image_path`, `file`, `filename`   (required)
 *   coarse label `coarse`, `coarse_label`, `coarse_class`            (required)
 *   fine label   `fine`, `fine_label`, `fine_class`, `label`         (optional)
 *   split        `split`, `subset`                                   (optional)
 * Paths are relative to `--root` (default: the CSV's folder) and must stay inside it.
 * A label column holding only non-negative integers is read as ids (class k is named "k");
 * otherwise as names, numbered in sorted order. Without a fine column each image's fine
 * label is its coarse label. Split values are `train` or `test`. Other columns are ignored.
 *
 * Without a split column the split is stratified by fine class, so that fine-label retrieval
 * can be measured on test: every fine class with ≥ 2 images puts max(2, round(20% of its
 * images)) in test (all of them when it has 2), chosen with the seed (default 0); a class
 * with one image stays in train (alone in test it could never be retrieved). The build says
 * what it did (`notes`).
 *
 * `imageSize` (`--image-size`, default 224 as for the paper's photographs) is the side of the
 * square crops training uses; it is recorded in the index (`meta.image_size`) for the recipe.
 */

export const CSV_DEFAULT_TEST_FRACTION = 0.2;
export const CSV_DEFAULT_SEED = 0;
/** Training input size of a csv dataset unless `--image-size` says otherwise (photographs). */
export const CSV_DEFAULT_IMAGE_SIZE = 224;
/** Test images of a fine class when the split is derived: enough for one to retrieve another. */
export const CSV_MIN_TEST_PER_CLASS = 2;

const COLUMN_NAMES = {
  path: ['path', 'image', 'image_path', 'file', 'filename'],
  coarse: ['coarse', 'coarse_label', 'coarse_class'],
  fine: ['fine', 'fine_label', 'fine_class', 'label'],
  split: ['split', 'subset'],
} as const;

export interface CsvSourceOptions extends SourceOptions {
  /** The folder image paths are relative to (default: the CSV file's folder). */
  readonly root?: string;
}

interface CsvPlan {
  readonly fineClassNames: string[];
  readonly coarseClassNames: string[];
  readonly items: Record<Split, ImageFileItem[]>;
  /** What the split did, for the build output. */
  readonly notes: string[];
}

/** A training input size: an integer between 8 and 4096 pixels. */
export function checkImageSize(size: number): number {
  if (!Number.isInteger(size) || size < 8 || size > 4096) {
    throw new DatasetError(
      `--image-size ${size} is not usable; give the side of the training crops in pixels, an integer between 8 and 4096 (default ${CSV_DEFAULT_IMAGE_SIZE}).`,
    );
  }
  return size;
}

/** A valid index name: letters, digits, `_`, `-`, `.`, not starting with a dot. */
export function checkIndexName(name: string): string {
  if (!/^[A-Za-z0-9_][A-Za-z0-9_.-]{0,99}$/.test(name)) {
    throw new DatasetError(
      `Index name ${JSON.stringify(name)} is not usable; use letters, digits, _, - and . (e.g. --name my_shoes).`,
    );
  }
  return name;
}

export function csvSource(options: CsvSourceOptions): DatasetSource {
  if (!options.name)
    throw new DatasetError(
      'The csv dataset needs a name for its index: pass --name NAME (the index becomes <out>/NAME.sqlite).',
    );
  const name = checkIndexName(options.name);
  const csvFile = options.csvFile ?? join(options.root ?? '.', 'labels.csv');
  const rootPath = options.root ?? dirname(csvFile);
  const seed = checkSeed(options.seed ?? CSV_DEFAULT_SEED);
  const imageSize = checkImageSize(options.imageSize ?? CSV_DEFAULT_IMAGE_SIZE);
  // Stored copies at least as large as the crops (256 for 224, as the paper's Resize).
  const shortSide = checkShortSide(options.shortSide ?? Math.max(DEFAULT_SHORT_SIDE, imageSize));
  const sizeNote =
    shortSide < imageSize
      ? [
          `the stored copies (short side ${shortSide}) are smaller than the ${imageSize}-pixel training crops, so training will upsample them; pass --short-side ${imageSize} or more, or a smaller --image-size`,
        ]
      : [];
  let planned: CsvPlan | undefined;
  const datasetRoot = new DatasetRoot(rootPath, { allowSymlinks: options.allowSymlinks });
  const plan = (): CsvPlan => (planned ??= planCsv(csvFile, datasetRoot, seed));
  return {
    name,
    builderVersion: '1',
    get fineClassNames() {
      return plan().fineClassNames;
    },
    get coarseClassNames() {
      return plan().coarseClassNames;
    },
    sourceFiles: [{ name: 'labels', path: csvFile }],
    imageSize,
    notes: () => [...plan().notes, ...sizeNote],
    // The root is part of the inputs: the same CSV under another root is another dataset.
    config: {
      root: datasetRoot.real,
      seed,
      imageSize,
      shortSide,
      skipBad: options.skipBad ?? false,
      testFraction: CSV_DEFAULT_TEST_FRACTION,
    },
    missingFileHint:
      'Pass --csv FILE (default <root>/labels.csv) and --root DIR (the folder its image paths are relative to).',
    imageFiles: {
      paths: () => [...plan().items.train, ...plan().items.test].map((item) => item.path),
      decodeKey: imageDecodeKey(shortSide),
    },
    readSplit(split: Split, context?: ReadContext): SplitRecords {
      const items = plan().items[split];
      return {
        expectedCount: options.skipBad ? undefined : items.length,
        records: decodeImageFiles(name, split, items, {
          ...options,
          shortSide,
          reuse: context?.reuse,
        }),
      };
    },
  };
}

function findColumn(header: readonly string[], role: keyof typeof COLUMN_NAMES): number {
  const wanted: readonly string[] = COLUMN_NAMES[role];
  return header.findIndex((h) => wanted.includes(h.toLowerCase()));
}

/** Class names and per-row ids of one label column: integer ids if every value is one, else sorted names. */
function labelColumn(values: readonly string[]): { names: string[]; ids: number[] } {
  if (values.every((v) => /^\d+$/.test(v))) {
    const ids = values.map(Number);
    const max = Math.max(...ids);
    if (max > 1_000_000)
      throw new DatasetError(
        `A label id of ${max} is too large for a class id; use ids 0..n-1 or class names.`,
      );
    return { names: Array.from({ length: max + 1 }, (_, k) => String(k)), ids };
  }
  const names = [...new Set(values)].sort();
  const idOf = new Map(names.map((n, i) => [n, i]));
  return { names, ids: values.map((v) => idOf.get(v)!) };
}

function planCsv(csvFile: string, root: DatasetRoot, seed: number): CsvPlan {
  const rows = readCsvRows(csvFile);
  if (rows.length < 2)
    throw new DatasetError(
      `${csvFile} has no data rows; it needs a header row and one row per image.`,
    );
  const [headerRow, ...data] = rows;
  const header = headerRow.fields;
  const col = {
    path: findColumn(header, 'path'),
    coarse: findColumn(header, 'coarse'),
    fine: findColumn(header, 'fine'),
    split: findColumn(header, 'split'),
  };
  for (const role of ['path', 'coarse'] as const) {
    if (col[role] < 0) {
      throw new DatasetError(
        `${csvFile} line ${headerRow.line} has no ${role === 'path' ? 'image path' : 'coarse label'} column (looked for ${COLUMN_NAMES[role].join(', ')}; found ${header.join(', ')}).`,
      );
    }
  }
  const cell = (row: CsvRow, index: number, what: string): string => {
    const value = row.fields[index] ?? '';
    if (value === '')
      throw new DatasetError(
        `${csvFile} line ${row.line} has no ${what} (column ${header[index]}); every row needs one.`,
      );
    return value;
  };
  // Every path is checked first: a CSV with one path leaving the root is refused whole.
  const paths = data.map((r) =>
    root.resolve(cell(r, col.path, 'image path'), `${csvFile} line ${r.line}`),
  );
  const coarse = labelColumn(data.map((r) => cell(r, col.coarse, 'coarse label')));
  const fine =
    col.fine >= 0 ? labelColumn(data.map((r) => cell(r, col.fine, 'fine label'))) : coarse;

  // A fine class must belong to one coarse class, or the coarse labels say nothing about it.
  const coarseOfFine = new Map<number, { coarse: number; line: number }>();
  data.forEach((row, i) => {
    const seen = coarseOfFine.get(fine.ids[i]);
    if (!seen) coarseOfFine.set(fine.ids[i], { coarse: coarse.ids[i], line: row.line });
    else if (seen.coarse !== coarse.ids[i]) {
      throw new DatasetError(
        `${csvFile} line ${row.line} puts fine class ${fine.names[fine.ids[i]]} in coarse class ${coarse.names[coarse.ids[i]]}, but line ${seen.line} puts it in ${coarse.names[seen.coarse]}; each fine class must have one coarse class.`,
      );
    }
  });

  const splitOf: Split[] = new Array<Split>(data.length);
  const notes: string[] = [];
  if (col.split >= 0) {
    data.forEach((row, i) => {
      const value = cell(row, col.split, 'split').toLowerCase();
      if (value !== 'train' && value !== 'test') {
        throw new DatasetError(
          `${csvFile} line ${row.line} has split ${JSON.stringify(row.fields[col.split])}; splits are train or test.`,
        );
      }
      splitOf[i] = value;
    });
    const testCounts = new Map<number, number>();
    data.forEach((_, i) => {
      if (splitOf[i] === 'test')
        testCounts.set(fine.ids[i], (testCounts.get(fine.ids[i]) ?? 0) + 1);
    });
    const lonely = [...testCounts.values()].filter((n) => n === 1).length;
    notes.push(
      `split from the ${header[col.split]} column: ${splitOf.filter((s) => s === 'test').length} of ${data.length} images in test, ${testCounts.size} fine classes in test` +
        (lonely > 0
          ? `; ${lonely} of them with a single test image, which fine-label retrieval can never find (give them a second test image)`
          : ''),
    );
  } else {
    notes.push(deriveSplit(fine.ids, fine.names.length, seed, splitOf));
  }

  const items: Record<Split, ImageFileItem[]> = { train: [], test: [] };
  data.forEach((row, i) => {
    const where = `${csvFile} line ${row.line}`;
    items[splitOf[i]].push({
      path: paths[i],
      fine: fine.ids[i],
      coarse: coarse.ids[i],
      where,
    });
  });
  return { fineClassNames: fine.names, coarseClassNames: coarse.names, items, notes };
}

/**
 * Fill `splitOf` for a CSV without a split column, stratified by fine class: a class of n ≥ 2
 * images gets max(2, round(0.2·n)) test images (capped at n), drawn with the seed; a class of
 * one image stays in train. Returns the sentence the build prints.
 */
function deriveSplit(
  fineIds: readonly number[],
  fineCount: number,
  seed: number,
  splitOf: Split[],
): string {
  splitOf.fill('train');
  const members: number[][] = Array.from({ length: fineCount }, () => []);
  fineIds.forEach((f, i) => members[f].push(i));
  const random = seededRandom(seed);
  let classesInTest = 0;
  let singles = 0;
  let wholeInTest = 0;
  for (const list of members) {
    if (list.length === 0) continue;
    if (list.length < CSV_MIN_TEST_PER_CLASS) {
      singles += 1;
      continue;
    }
    const nTest = Math.min(
      list.length,
      Math.max(CSV_MIN_TEST_PER_CLASS, Math.round(list.length * CSV_DEFAULT_TEST_FRACTION)),
    );
    for (const i of seededShuffle(list, random).slice(0, nTest)) splitOf[i] = 'test';
    classesInTest += 1;
    if (nTest === list.length) wholeInTest += 1;
  }
  const nTest = splitOf.filter((s) => s === 'test').length;
  if (nTest === splitOf.length) {
    throw new DatasetError(
      `Every fine class has ${CSV_MIN_TEST_PER_CLASS} or fewer images, so a split that gives each ${CSV_MIN_TEST_PER_CLASS} test images leaves nothing to train on; add a split column (train/test) to the CSV.`,
    );
  }
  const pct = ((100 * nTest) / Math.max(1, splitOf.length)).toFixed(1);
  return (
    `split by fine class (no split column; seed ${seed}): ${nTest} of ${splitOf.length} images (${pct}%) in test — every one of the ${classesInTest} fine classes with ≥ ${CSV_MIN_TEST_PER_CLASS} images has max(${CSV_MIN_TEST_PER_CLASS}, ${CSV_DEFAULT_TEST_FRACTION * 100}%) of them in test` +
    (wholeInTest > 0
      ? ` (${wholeInTest} small class${wholeInTest === 1 ? '' : 'es'} entirely in test)`
      : '') +
    (singles > 0
      ? `; ${singles} fine class${singles === 1 ? '' : 'es'} with a single image stay${singles === 1 ? 's' : ''} in train`
      : '')
  );
}
