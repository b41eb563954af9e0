import { existsSync } from 'node:fs';
import { join } from 'node:path';
import { DatasetError } from '../errors.js';
import { readCsvRows } from '../formats/csv-rows.js';
import {
  describe,
  matField,
  matScalar,
  matString,
  readMat5File,
  type MatStruct,
  type MatValue,
} from '../formats/mat5.js';
import {
  checkShortSide,
  decodeImageFiles,
  DEFAULT_SHORT_SIDE,
  imageDecodeKey,
  type ImageFileItem,
} from '../image-files.js';
import { DatasetRoot } from '../safe-path.js';
import type { DatasetSource, ReadContext, SourceFile, SplitRecords } from '../source.js';
import type { SourceOptions } from '../source-options.js';
import type { Split } from '../types.js';
import {
  CARS196_BODY_TYPES,
  CARS196_CLASS_NAMES,
  cars196BodyTypeOf,
} from './cars196-body-types.js';

/**
 * Stanford Cars (Krause et al., 2013): 196 models, 8,144 train / 8,041 test images; coarse
 * labels are the 8 body types of `cars196-body-types.ts` (Table 2 of the MaskCon
 * supplementary). Images are used whole (the bounding boxes are not applied), as the paper's
 * torchvision loader does.
 *
 * Two published layouts are read from the dataset root:
 *
 * 1. The original devkit (MATLAB v5 files):
 *      devkit/cars_meta.mat              class_names: 1×196 cell of char
 *      devkit/cars_train_annos.mat       annotations: 1×8144 struct (bbox_x1, bbox_y1,
 *                                        bbox_x2, bbox_y2, class (1-based), fname)
 *      cars_test_annos_withlabels.mat    the same for the 8,041 test images (also looked
 *                                        for in devkit/)
 *      cars_train/<fname>, cars_test/<fname>
 * 2. The CSV re-packaging (used when devkit/cars_meta.mat is absent):
 *      names.csv                         one class name per line, class 1 first, no header
 *      anno_train.csv, anno_test.csv     fname,bbox_x1,bbox_y1,bbox_x2,bbox_y2,class — no
 *                                        header (a header row with those names is accepted);
 *                                        class is 1-based
 *      images in cars_train/<fname> and cars_test/<fname>, or in the class-folder layout
 *      car_data/car_data/{train,test}/<class name with / as ->/<fname>
 * Fine label = class − 1; coarse label = body type of the class name (an unknown name is an
 * error naming the file).
 */

export interface Cars196Options extends SourceOptions {
  /** The Stanford Cars folder (default ./stanford_cars). */
  readonly root?: string;
}

interface Annotation {
  readonly fname: string;
  readonly classId: number; // 1-based
  readonly where: string;
}

interface Layout {
  readonly kind: 'devkit' | 'csv';
  readonly names: string;
  readonly annos: Record<Split, string>;
}

function chooseLayout(root: string): Layout {
  if (existsSync(join(root, 'devkit', 'cars_meta.mat')) || !existsSync(join(root, 'names.csv'))) {
    const testInRoot = 'cars_test_annos_withlabels.mat';
    const testInDevkit = join('devkit', testInRoot);
    return {
      kind: 'devkit',
      names: join('devkit', 'cars_meta.mat'),
      annos: {
        train: join('devkit', 'cars_train_annos.mat'),
        test:
          !existsSync(join(root, testInRoot)) && existsSync(join(root, testInDevkit))
            ? testInDevkit
            : testInRoot,
      },
    };
  }
  return {
    kind: 'csv',
    names: 'names.csv',
    annos: { train: 'anno_train.csv', test: 'anno_test.csv' },
  };
}

export function cars196Source(options: Cars196Options = {}): DatasetSource {
  const rootPath = options.root ?? 'stanford_cars';
  const shortSide = checkShortSide(options.shortSide ?? DEFAULT_SHORT_SIDE);
  const layout = chooseLayout(rootPath);
  const sourceFiles: SourceFile[] = [layout.names, layout.annos.train, layout.annos.test].map(
    (name) => ({
      name,
      path: join(rootPath, name),
    }),
  );

  const datasetRoot = new DatasetRoot(rootPath, { allowSymlinks: options.allowSymlinks });
  const planned: Partial<Record<Split, ImageFileItem[]>> = {};
  const itemsOf = (split: Split): ImageFileItem[] => (planned[split] ??= planSplit(split));
  let classNames: string[] | undefined;
  const fineClassNames = (): string[] => {
    classNames ??= readClassNames(rootPath, layout);
    return classNames;
  };

  return {
    name: 'cars196',
    builderVersion: '1',
    get fineClassNames() {
      return fineClassNames();
    },
    coarseClassNames: CARS196_BODY_TYPES,
    sourceFiles,
    // The root is part of the inputs: identical metadata under another root is another dataset.
    config: {
      layout: layout.kind,
      root: datasetRoot.real,
      shortSide,
      skipBad: options.skipBad ?? false,
    },
    imageFiles: {
      paths: () => [...itemsOf('train'), ...itemsOf('test')].map((item) => item.path),
      decodeKey: imageDecodeKey(shortSide),
    },
    missingFileHint:
      'Pass --root DIR pointing at the Stanford Cars folder: either the devkit layout (devkit/cars_meta.mat, devkit/cars_train_annos.mat, cars_test_annos_withlabels.mat, cars_train/, cars_test/) or the CSV layout (names.csv, anno_train.csv, anno_test.csv).',
    readSplit(split: Split, context?: ReadContext): SplitRecords {
      const items = itemsOf(split);
      return {
        expectedCount: options.skipBad ? undefined : items.length,
        records: decodeImageFiles('cars196', split, items, {
          ...options,
          shortSide,
          reuse: context?.reuse,
        }),
      };
    },
  };

  function planSplit(split: Split): ImageFileItem[] {
    const names = fineClassNames();
    const coarseOf = names.map((name) => {
      const body = cars196BodyTypeOf(name);
      if (body === undefined) {
        throw new DatasetError(
          `${join(rootPath, layout.names)} names class ${JSON.stringify(name)}, which is not one of the 196 Stanford Cars models; the file is not the Stanford Cars class list.`,
        );
      }
      return body;
    });
    const annotations =
      layout.kind === 'devkit'
        ? readMatAnnotations(rootPath, layout.annos[split])
        : readCsvAnnotations(rootPath, layout.annos[split]);
    const root = datasetRoot;
    const imageDir = imageLocator(rootPath, split, names);
    const items: ImageFileItem[] = annotations.map((a) => {
      if (a.classId > names.length && a.classId <= CARS196_CLASS_NAMES.length) {
        // The annotation is plausible; the class-name file is what is short.
        throw new DatasetError(
          `${join(rootPath, layout.names)} lists only ${names.length} class names, but ${a.where} uses class ${a.classId} (Stanford Cars has ${CARS196_CLASS_NAMES.length}); the class-name file is incomplete — replace it with the original ${layout.names}.`,
        );
      }
      if (a.classId < 1 || a.classId > names.length) {
        throw new DatasetError(
          `${a.where} has class ${a.classId}; classes are 1..${names.length}.`,
        );
      }
      return {
        path: root.resolve(imageDir(a), a.where),
        fine: a.classId - 1,
        coarse: coarseOf[a.classId - 1],
        where: a.where,
      };
    });
    return items;
  }
}

/** Relative image path of an annotation: cars_{split}/<fname>, or the class-folder layout. */
function imageLocator(
  root: string,
  split: Split,
  names: readonly string[],
): (a: Annotation) => string {
  const flat = `cars_${split}`;
  const byClass = join('car_data', 'car_data', split);
  if (!existsSync(join(root, flat)) && existsSync(join(root, byClass))) {
    return (a) => join(byClass, names[a.classId - 1].replace(/\//g, '-'), a.fname);
  }
  return (a) => join(flat, a.fname);
}

function readClassNames(root: string, layout: Layout): string[] {
  const file = join(root, layout.names);
  if (layout.kind === 'csv') {
    // One name per line; a name with a comma would be quoted, or split into fields we re-join.
    return readCsvRows(file, { relaxColumnCount: true }).map((row) => row.fields.join(',').trim());
  }
  const vars = readMat5File(file);
  const value = vars.get('class_names');
  if (!value)
    throw new DatasetError(
      `MAT file ${file} has no variable class_names (it has ${[...vars.keys()].join(', ') || 'none'}); it is not devkit/cars_meta.mat.`,
    );
  if (value.kind !== 'cell')
    throw new DatasetError(
      `MAT file ${file}: class_names should be a cell array but is a ${describe(value)}.`,
    );
  return value.cells.map((cell, i) => matString(cell, `class_names{${i + 1}}`, file).trim());
}

function readMatAnnotations(root: string, name: string): Annotation[] {
  const file = join(root, name);
  const vars = readMat5File(file);
  const value: MatValue | undefined = vars.get('annotations');
  if (!value)
    throw new DatasetError(
      `MAT file ${file} has no variable annotations (it has ${[...vars.keys()].join(', ') || 'none'}); it is not a Stanford Cars annotation file.`,
    );
  if (value.kind !== 'struct')
    throw new DatasetError(
      `MAT file ${file}: annotations should be a struct array but is a ${describe(value)}.`,
    );
  const annotations = value as MatStruct;
  if (!annotations.fieldNames.includes('class')) {
    throw new DatasetError(
      `MAT file ${file} has annotations without a class field (fields: ${annotations.fieldNames.join(', ')}); for the test split use cars_test_annos_withlabels.mat, not cars_test_annos.mat.`,
    );
  }
  return annotations.elements.map((_, i) => {
    const where = `${name} annotations(${i + 1})`;
    const classId = matScalar(matField(annotations, i, 'class', file), `${where}.class`, file);
    const fname = matString(matField(annotations, i, 'fname', file), `${where}.fname`, file);
    if (!Number.isInteger(classId))
      throw new DatasetError(`${where} has class ${classId}; classes are integers 1..196.`);
    return { fname, classId, where };
  });
}

function readCsvAnnotations(root: string, name: string): Annotation[] {
  const file = join(root, name);
  const out: Annotation[] = [];
  readCsvRows(file, { relaxColumnCount: true }).forEach(({ line, fields: row }, i) => {
    const where = `${name} line ${line}`;
    if (i === 0 && row.length === 6 && !/^\d+$/.test(row[5])) return; // header row
    if (row.length !== 6) {
      throw new DatasetError(
        `${file} line ${line} has ${row.length} columns; Stanford Cars annotation CSVs have fname,bbox_x1,bbox_y1,bbox_x2,bbox_y2,class.`,
      );
    }
    const classId = /^\d+$/.test(row[5]) ? Number(row[5]) : NaN;
    if (!Number.isInteger(classId))
      throw new DatasetError(
        `${file} line ${line} has class ${JSON.stringify(row[5])}; classes are integers 1..196.`,
      );
    if (row[0] === '') throw new DatasetError(`${file} line ${line} has an empty file name.`);
    out.push({ fname: row[0], classId, where });
  });
  return out;
}
