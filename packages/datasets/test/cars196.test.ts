import { realpathSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { datasetStats, openIndex } from '../src/read-index.js';
import { cars196Source } from '../src/sources/cars196.js';
import {
  CARS196_BODY_TYPES,
  CARS196_CLASSES,
  CARS196_CLASS_NAMES,
  CARS196_TABLE2_FINE_PER_COARSE,
  cars196BodyTypeOf,
} from '../src/sources/cars196-body-types.js';
import { writeIndex } from '../src/write-index.js';
import { tempDir } from './helpers.js';
import { jpegBytes, testDecoder, writeFile } from './image-fixtures.js';
import { MatWriter, type MatIn } from './mat5-writer.js';
import { annotationsMat, writeCarsDevkit } from './source-fixtures.js';

const TABLE2 = [18, 50, 36, 30, 29, 14, 7, 12];

/** The devkit layout with every class once in train and once in test (196 + 196 tiny JPEGs). */
async function writeDevkit(
  compress: boolean,
  names: readonly string[] = CARS196_CLASS_NAMES,
): Promise<string> {
  const root = tempDir('cars');
  const jpeg = await jpegBytes(10, 9, [20, 120, 220]);
  const rows = (split: 'train' | 'test') =>
    names.map((_, i) => ({
      fname: `${String(i + 1).padStart(5, '0')}.jpg`,
      classId: split === 'train' ? i + 1 : names.length - i,
    }));
  await writeCarsDevkit(
    root,
    names,
    { train: rows('train'), test: rows('test') },
    async () => jpeg,
    compress,
  );
  return root;
}

describe('Cars196 body-type table', () => {
  it('gives every one of the 196 classes a body type, with the counts of Table 2', () => {
    expect(CARS196_CLASSES).toHaveLength(196);
    expect(new Set(CARS196_CLASS_NAMES).size).toBe(196);
    expect(CARS196_TABLE2_FINE_PER_COARSE).toEqual(TABLE2);
    const counts = new Array(8).fill(0);
    for (const [, body] of CARS196_CLASSES) counts[body] += 1;
    expect(counts).toEqual(TABLE2);
    expect(CARS196_BODY_TYPES).toEqual([
      'Cab',
      'Sedan',
      'SUV',
      'Convertible',
      'Coupe',
      'Hatchback',
      'Wagon',
      'Van',
    ]);
  });

  it('follows the body word of the name, except the documented Ford E-Series Wagon Van', () => {
    const word: Record<string, number> = {
      Cab: 0,
      SuperCab: 0,
      Sedan: 1,
      SUV: 2,
      Convertible: 3,
      Coupe: 4,
      Hatchback: 5,
      Wagon: 6,
      Van: 7,
      Minivan: 7,
    };
    let unnamed = 0;
    for (const [name, body] of CARS196_CLASSES) {
      const last = name
        .split(' ')
        .slice(0, -1)
        .reverse()
        .find((t) => t in word);
      if (last === undefined) unnamed += 1;
      else if (name === 'Ford E-Series Wagon Van 2012')
        expect(CARS196_BODY_TYPES[body]).toBe('Wagon');
      else expect([name, CARS196_BODY_TYPES[body]]).toEqual([name, CARS196_BODY_TYPES[word[last]]]);
    }
    expect(unnamed).toBe(14);
    expect(CARS196_BODY_TYPES[cars196BodyTypeOf('Chevrolet Corvette ZR1 2012')!]).toBe(
      'Convertible',
    );
    expect(CARS196_BODY_TYPES[cars196BodyTypeOf('  Dodge Challenger   SRT8 2011 ')!]).toBe('Coupe');
    expect(cars196BodyTypeOf('Tesla Model T 1915')).toBeUndefined();
  });
});

describe('cars196 source', () => {
  it('builds from the MATLAB devkit (compressed) and stats reproduce Table 2', async () => {
    const root = await writeDevkit(true);
    const out = join(tempDir('cars-out'), 'cars196.sqlite');
    const result = await writeIndex(
      cars196Source({ root, decoder: testDecoder, shortSide: 8 }),
      out,
    );
    expect(result.counts).toEqual({ train: 196, test: 196 });
    const stats = datasetStats(out);
    expect(stats.fineClassesPerCoarseClass).toEqual(TABLE2);
    expect(stats.coarseClassNames).toEqual([...CARS196_BODY_TYPES]);
    expect(stats.fineClassNames[55]).toBe('Chevrolet Corvette ZR1 2012');
    const test = openIndex(out, 'test');
    // Test annotations list classes 196, 195, …: fine = class − 1, coarse from the table.
    expect(test.fineLabels()[0]).toBe(195);
    expect(test.coarseLabels()[0]).toBe(CARS196_CLASSES[195][1]);
    expect(test.image(0)).toMatchObject({ height: 8, width: 9, channels: 3 });
    test.close();
  });

  it('builds from uncompressed MAT files and from the CSV re-packaging with the same labels', async () => {
    const names = CARS196_CLASS_NAMES.slice(0, 5);
    const matRoot = await writeDevkit(false, names);
    const matOut = join(tempDir('cars-out'), 'a.sqlite');
    await writeIndex(cars196Source({ root: matRoot, decoder: testDecoder, shortSide: 8 }), matOut);

    const csvRoot = tempDir('cars-csv');
    const jpeg = await jpegBytes(10, 9, [20, 120, 220]);
    writeFile(join(csvRoot, 'names.csv'), names.join('\n') + '\n');
    const rows = (split: 'train' | 'test') =>
      names.map((_, i) => {
        const fname = `${String(i + 1).padStart(5, '0')}.jpg`;
        writeFile(join(csvRoot, `cars_${split}`, fname), jpeg);
        return `${fname},1,2,10,8,${split === 'train' ? i + 1 : names.length - i}`;
      });
    writeFile(
      join(csvRoot, 'anno_train.csv'),
      ['fname,bbox_x1,bbox_y1,bbox_x2,bbox_y2,class', ...rows('train')].join('\n'),
    );
    writeFile(join(csvRoot, 'anno_test.csv'), rows('test').join('\r\n'));
    const csvOut = join(tempDir('cars-out'), 'b.sqlite');
    const csvSourceObj = cars196Source({ root: csvRoot, decoder: testDecoder, shortSide: 8 });
    expect(csvSourceObj.config).toMatchObject({ layout: 'csv' });
    await writeIndex(csvSourceObj, csvOut);

    for (const split of ['train', 'test'] as const) {
      const a = openIndex(matOut, split);
      const b = openIndex(csvOut, split);
      expect(Array.from(b.fineLabels())).toEqual(Array.from(a.fineLabels()));
      expect(Array.from(b.coarseLabels())).toEqual(Array.from(a.coarseLabels()));
      // Each row keeps the JPEG it was decoded from (root symlinks resolved).
      expect(b.sourcePath?.(1)).toBe(join(realpathSync(csvRoot), `cars_${split}`, '00002.jpg'));
      a.close();
      b.close();
    }
    // AM General Hummer SUV, Acura RL/TL Sedan, Acura TL Type-S (Sedan), Acura TSX Sedan.
    expect(datasetStats(csvOut).fineClassesPerCoarseClass).toEqual([0, 4, 1, 0, 0, 0, 0, 0]);
  });

  it('refuses unknown class names, a short cars_meta.mat (blaming it), out-of-range classes and test annotations without labels', async () => {
    const root = await writeDevkit(false, ['AM General Hummer SUV 2000', 'Flying Car 2050']);
    await expect(
      writeIndex(cars196Source({ root, decoder: testDecoder }), join(root, 'x.sqlite')),
    ).rejects.toThrow(
      /cars_meta\.mat names class "Flying Car 2050", which is not one of the 196 Stanford Cars models/,
    );
    const root2 = await writeDevkit(false, ['AM General Hummer SUV 2000']);
    const w = new MatWriter();
    writeFile(
      join(root2, 'cars_test_annos_withlabels.mat'),
      w.file({ annotations: annotationsMat([{ fname: '00001.jpg', classId: 7 }]) }),
    );
    await expect(
      writeIndex(cars196Source({ root: root2, decoder: testDecoder }), join(root2, 'x.sqlite')),
    ).rejects.toThrow(
      // A class-name file that is too short is blamed, not the (plausible) annotation.
      `${join(root2, 'devkit', 'cars_meta.mat')} lists only 1 class names, but cars_test_annos_withlabels.mat annotations(1) uses class 7 (Stanford Cars has 196); the class-name file is incomplete`,
    );
    writeFile(
      join(root2, 'cars_test_annos_withlabels.mat'),
      w.file({ annotations: annotationsMat([{ fname: '00001.jpg', classId: 300 }]) }),
    );
    await expect(
      writeIndex(cars196Source({ root: root2, decoder: testDecoder }), join(root2, 'x.sqlite')),
    ).rejects.toThrow(
      /cars_test_annos_withlabels\.mat annotations\(1\) has class 300; classes are 1\.\.1/,
    );
    const noLabels: MatIn = {
      kind: 'struct',
      dims: [1, 1],
      fields: ['fname'],
      elements: [{ fname: { kind: 'char', text: '00001.jpg' } }],
    };
    writeFile(join(root2, 'cars_test_annos_withlabels.mat'), w.file({ annotations: noLabels }));
    await expect(
      writeIndex(cars196Source({ root: root2, decoder: testDecoder }), join(root2, 'x.sqlite')),
    ).rejects.toThrow(/without a class field .* use cars_test_annos_withlabels\.mat/);
  });
});
