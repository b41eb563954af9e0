import Database from 'better-sqlite3';
import { copyFileSync, rmSync, utimesSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { describeImageChanges } from '../src/image-inventory.js';
import { createProgressPrinter } from '../src/progress.js';
import { openIndex } from '../src/read-index.js';
import { cars196Source } from '../src/sources/cars196.js';
import { csvSource } from '../src/sources/csv.js';
import { sopSource } from '../src/sources/sop.js';
import { writeIndex } from '../src/write-index.js';
import { tempDir } from './helpers.js';
import { jpegBytes, testDecoder, writeFile } from './image-fixtures.js';

/** A csv dataset of 8 JPEGs (4 coarse classes, split column) whose colours differ per image. */
async function writeCsvDataset(): Promise<{ root: string; csv: string; files: string[] }> {
  const root = tempDir('stale');
  const files: string[] = [];
  const rows = ['path,coarse,fine,split'];
  for (let i = 0; i < 8; i++) {
    const file = `img/${i}.jpg`;
    writeFile(join(root, file), await jpegBytes(12 + i, 10, [20 * i, 100, 30]));
    files.push(file);
    rows.push(`${file},c${i % 4},f${i},${i < 6 ? 'train' : 'test'}`);
  }
  writeFile(join(root, 'labels.csv'), `${rows.join('\n')}\n`);
  return { root, csv: join(root, 'labels.csv'), files };
}

const source = (root: string, csvFile: string, skipBad = false) =>
  csvSource({ name: 'shop', root, csvFile, decoder: testDecoder, shortSide: 8, skipBad });

/** Every image of both splits with its labels, for comparing two indexes. */
function contents(path: string) {
  return (['train', 'test'] as const).map((split) => {
    const ds = openIndex(path, split);
    try {
      return Array.from({ length: ds.size }, (_, i) => ({
        fine: ds.fineLabels()[i],
        path: ds.sourcePath?.(i),
        pixels: Buffer.from(ds.image(i).data).toString('base64'),
      }));
    } finally {
      ds.close();
    }
  });
}

describe('JPEG indexes track their image files (issue 16 item 1)', () => {
  it('rebuilds what changed, says what it found, and reuses the pixels of unchanged images', async () => {
    const { root, csv, files } = await writeCsvDataset();
    const out = join(tempDir('stale-out'), 'shop.sqlite');
    const first = await writeIndex(source(root, csv), out);
    expect(first.upToDate).toBe(false);
    expect(first.imageChanges).toBeUndefined(); // a first build has nothing to compare with
    expect((await writeIndex(source(root, csv), out)).upToDate).toBe(true);

    // Repaint three images (new bytes, same names) and delete one the metadata still lists.
    for (const i of [0, 3, 7])
      writeFile(join(root, files[i]), await jpegBytes(12 + i, 10, [250, 0, 250]));
    rmSync(join(root, files[5]));
    const second = await writeIndex(source(root, csv, true), out);
    expect(second.upToDate).toBe(false);
    expect(second.imageChanges?.changed.map((p) => p.slice(-7))).toEqual([
      'g/0.jpg',
      'g/3.jpg',
      'g/7.jpg',
    ]);
    expect(second.imageChanges?.removed).toEqual([join(root, files[5])]);
    expect(describeImageChanges(second.imageChanges!)).toMatch(
      /^3 images changed, 1 removed since the last build \(e\.g\. .*img\/0\.jpg, .*img\/3\.jpg, .*img\/7\.jpg\)$/,
    );
    expect(second.reusedImages).toBe(4); // 1, 2, 4, 6: not decoded again
    // Down to the pixels, the same as a build from scratch.
    const fresh = join(tempDir('stale-fresh'), 'shop.sqlite');
    await writeIndex(source(root, csv, true), fresh, { force: true });
    expect(contents(out)).toEqual(contents(fresh));
    expect(contents(out)[0].map((r) => r.fine)).toEqual([0, 1, 2, 3, 4]); // f5 left out
    expect((await writeIndex(source(root, csv, true), out)).upToDate).toBe(true);
  });

  it('the --skip-bad workflow: a repaired image is picked up by the next build', async () => {
    const { root, csv, files } = await writeCsvDataset();
    const good = await jpegBytes(14, 10, [40, 100, 30]);
    writeFile(join(root, files[2]), good.subarray(0, 40)); // truncated
    const out = join(tempDir('stale-out'), 'shop.sqlite');
    const skipped: string[] = [];
    const build = () =>
      writeIndex(
        csvSource({
          name: 'shop',
          root,
          csvFile: csv,
          decoder: testDecoder,
          shortSide: 8,
          skipBad: true,
          onSkip: (s) => skipped.push(s.path),
        }),
        out,
      );
    expect((await build()).counts).toEqual({ train: 5, test: 2 });
    expect(skipped).toEqual([join(root, files[2])]);
    expect((await build()).upToDate).toBe(true); // the same bad file: nothing to do
    writeFile(join(root, files[2]), good); // repaired
    const repaired = await build();
    expect(repaired.upToDate).toBe(false);
    expect(describeImageChanges(repaired.imageChanges!)).toMatch(
      /^1 image changed since the last build/,
    );
    expect(repaired.counts).toEqual({ train: 6, test: 2 });
    expect(repaired.reusedImages).toBe(7);
  });

  it('a touched file with the same bytes is not a change; the index refreshes its record once', async () => {
    const { root, csv, files } = await writeCsvDataset();
    const out = join(tempDir('stale-out'), 'shop.sqlite');
    await writeIndex(source(root, csv), out);
    utimesSync(join(root, files[1]), new Date(2020, 0, 1), new Date(2020, 0, 1));
    const lines: string[] = [];
    const touched = await writeIndex(source(root, csv), out, {
      onProgress: createProgressPrinter('shop', (line) => lines.push(line)),
    });
    expect(lines.some((l) => l.startsWith('shop image files checked: 8/8 (100%)'))).toBe(true);
    expect(touched.imageChanges).toMatchObject({ changed: [], added: [], removed: [], touched: 1 });
    expect(touched.reusedImages).toBe(8);
    expect((await writeIndex(source(root, csv), out)).upToDate).toBe(true);
  });

  it('a different --root is never up to date, even with identical metadata', async () => {
    const { root, csv } = await writeCsvDataset();
    const out = join(tempDir('stale-out'), 'shop.sqlite');
    await writeIndex(source(root, csv), out);
    const empty = tempDir('stale-empty'); // the same labels.csv, no images
    copyFileSync(csv, join(empty, 'labels.csv'));
    await expect(writeIndex(source(empty, join(empty, 'labels.csv')), out)).rejects.toThrow(
      `shop: image ${join(empty, 'img/0.jpg')} (${join(empty, 'labels.csv')} line 2) could not be decoded`,
    );
    const db = new Database(out, { readonly: true });
    const recorded = db
      .prepare(
        'SELECT path, bytes, length(sha256) AS h, split, idx FROM source_images ORDER BY path',
      )
      .all();
    db.close();
    expect(recorded).toHaveLength(8);
    expect(recorded[0]).toEqual({
      path: join(root, 'img/0.jpg'),
      bytes: expect.any(Number),
      h: 64,
      split: 'train',
      idx: 0,
    });
  });

  it('SOP and Cars196 indexes notice a replaced image too', async () => {
    const jpeg = await jpegBytes(12, 10, [200, 30, 30]);
    const sop = tempDir('stale-sop');
    const lines = ['image_id class_id super_class_id path'];
    for (let p = 1; p <= 2; p++)
      for (let k = 0; k < 12; k++) {
        const path = `mug_final/${p}_${k}.JPG`;
        writeFile(join(sop, path), jpeg);
        lines.push(`${(p - 1) * 12 + k + 1} ${p} 1 ${path}`);
      }
    writeFile(join(sop, 'Ebay_train.txt'), `${lines.join('\n')}\n`);
    writeFile(join(sop, 'Ebay_test.txt'), `${lines[0]}\n`);
    const sopOut = join(tempDir('stale-out'), 'sop_split2.sqlite');
    const sopBuild = () =>
      writeIndex(
        sopSource('sop_split2', { root: sop, decoder: testDecoder, shortSide: 8 }),
        sopOut,
      );
    await sopBuild();
    expect((await sopBuild()).upToDate).toBe(true);
    writeFile(join(sop, 'mug_final/2_5.JPG'), await jpegBytes(12, 10, [0, 0, 255]));
    const again = await sopBuild();
    expect(again.upToDate).toBe(false);
    expect(again.imageChanges?.changed).toEqual([join(sop, 'mug_final/2_5.JPG')]);

    const cars = tempDir('stale-cars');
    writeFile(join(cars, 'names.csv'), 'AM General Hummer SUV 2000\n');
    for (const split of ['train', 'test'] as const) {
      writeFile(join(cars, `anno_${split}.csv`), `${split}.jpg,1,1,5,5,1\n`);
      writeFile(join(cars, `cars_${split}`, `${split}.jpg`), jpeg);
    }
    const carsOut = join(tempDir('stale-out'), 'cars196.sqlite');
    const carsBuild = () =>
      writeIndex(cars196Source({ root: cars, decoder: testDecoder, shortSide: 8 }), carsOut);
    await carsBuild();
    expect((await carsBuild()).upToDate).toBe(true);
    rmSync(join(cars, 'cars_test', 'test.jpg'));
    await expect(carsBuild()).rejects.toThrow(
      /cars196: image .*cars_test\/test\.jpg .* could not be decoded/,
    );
  });
});
