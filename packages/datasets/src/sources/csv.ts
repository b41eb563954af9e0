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
 * label is its coarse label. Split values are `train` or `test`. Without a split column,
 * 20% of each coarse class (rounded down, at least one image when the class has two or more)
 * goes to test, chosen with the seed (default 0). Other columns are ignored.
 */

export const CSV_DEFAULT_TEST_FRACTION = 0.2;
export const CSV_DEFAULT_SEED = 0;

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
  const shortSide = checkShortSide(options.shortSide ?? DEFAULT_SHORT_SIDE);
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
    // The root is part of the inputs: the same CSV under another root is another dataset.
    config: {
      root: datasetRoot.real,
      seed,
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
  const paths = data.map((r) => cell(r, col.path, 'image path'));
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
  } else {
    splitOf.fill('train');
    const random = seededRandom(seed);
    for (let c = 0; c < coarse.names.length; c++) {
      const members = data.map((_, i) => i).filter((i) => coarse.ids[i] === c);
      if (members.length < 2) continue;
      const nTest = Math.max(1, Math.floor(members.length * CSV_DEFAULT_TEST_FRACTION));
      for (const i of seededShuffle(members, random).slice(0, nTest)) splitOf[i] = 'test';
    }
  }

  const items: Record<Split, ImageFileItem[]> = { train: [], test: [] };
  data.forEach((row, i) => {
    const where = `${csvFile} line ${row.line}`;
    items[splitOf[i]].push({
      path: root.resolve(paths[i], where),
      fine: fine.ids[i],
      coarse: coarse.ids[i],
      where,
    });
  });
  return { fineClassNames: fine.names, coarseClassNames: coarse.names, items };
}
