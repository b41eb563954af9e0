import { readdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import Database from 'better-sqlite3';
import { describe, expect, it } from 'vitest';
import {
  createProgressPrinter,
  datasetStats,
  INDEX_FORMAT_VERSION,
  openIndex,
  writeIndex,
  type DatasetRecord,
  type DatasetSource,
} from '../src/index.js';
import { tempDir } from './helpers.js';

/** RGB images of varying size, streamed asynchronously, as a future JPEG-based source would. */
function rgbImage(seed: number, height: number, width: number): Uint8Array {
  const data = new Uint8Array(height * width * 3);
  for (let i = 0; i < data.length; i++) data[i] = (seed * 13 + i * (1 + (i % 3) * 40)) & 0xff;
  return data;
}

const TRAIN = [
  { fine: 0, coarse: 0, h: 2, w: 3 },
  { fine: 1, coarse: 0, h: 4, w: 4 },
  { fine: 2, coarse: 1, h: 2, w: 3 },
];
const TEST = [{ fine: 2, coarse: 1, h: 5, w: 1 }];

function rgbSource(configSeed: number, badRecord = false): DatasetSource {
  async function* records(rows: typeof TRAIN, offset: number): AsyncGenerator<DatasetRecord> {
    for (const [i, r] of rows.entries()) {
      await Promise.resolve();
      yield {
        fine: badRecord && i === 1 ? 7 : r.fine,
        coarse: r.coarse,
        image: { data: rgbImage(offset + i, r.h, r.w), height: r.h, width: r.w, channels: 3 },
      };
    }
  }
  return {
    name: 'toy_rgb',
    builderVersion: '1',
    fineClassNames: ['a', 'b', 'c'],
    coarseClassNames: ['ab', 'c'],
    sourceFiles: [],
    config: { seed: configSeed },
    readSplit: async (split) =>
      split === 'train'
        ? { records: records(TRAIN, 0) }
        : { expectedCount: 1, records: records(TEST, 100) },
  };
}

describe('writeIndex with a streaming RGB source', () => {
  it('stores varying shapes and per-channel train statistics', async () => {
    const out = join(tempDir('rgb'), 'toy_rgb.sqlite');
    const result = await writeIndex(rgbSource(1), out);
    expect(result.counts).toEqual({ train: 3, test: 1 });

    const train = openIndex(out, 'train');
    const img = train.image(1);
    expect([img.height, img.width, img.channels]).toEqual([4, 4, 3]);
    expect(Array.from(img.data)).toEqual(Array.from(rgbImage(1, 4, 4)));
    expect(Array.from(train.coarseLabels())).toEqual([0, 0, 1]);

    for (let c = 0; c < 3; c++) {
      const values: number[] = [];
      TRAIN.forEach((r, i) => {
        const data = rgbImage(i, r.h, r.w);
        for (let p = c; p < data.length; p += 3) values.push(data[p] / 255);
      });
      const mean = values.reduce((a, b) => a + b, 0) / values.length;
      const std = Math.sqrt(values.reduce((a, b) => a + (b - mean) ** 2, 0) / values.length);
      expect(train.channelMean[c]).toBeCloseTo(mean, 12);
      expect(train.channelStd[c]).toBeCloseTo(std, 12);
    }
    expect(train.channelMean[0]).not.toBeCloseTo(train.channelMean[1], 3);
    train.close();

    const test = openIndex(out, 'test', { preloadMaxBytes: 0 });
    expect(Array.from(test.image(0).data)).toEqual(Array.from(rgbImage(100, 5, 1)));
    expect(test.sourcePath?.(0)).toBeNull(); // records without a source path store NULL
    test.close();

    // Batched reads from SQLite (no preload): any order, repeats, more than one query's worth.
    const rows = openIndex(out, 'train', { preloadMaxBytes: 0 });
    const wanted = Array.from({ length: 150 }, (_, k) => (k * 7 + (k >> 2)) % 3);
    const got = rows.images(Int32Array.from(wanted));
    expect(got.map((img) => [img.height, img.width])).toEqual(
      wanted.map((i) => [TRAIN[i].h, TRAIN[i].w]),
    );
    got.forEach((img, k) =>
      expect(Array.from(img.data)).toEqual(
        Array.from(rgbImage(wanted[k], TRAIN[wanted[k]].h, TRAIN[wanted[k]].w)),
      ),
    );
    expect(() => rows.images([0, 1, 2, 0, 1, 2, 0, 3])).toThrow(
      /Image index 3 is out of range for toy_rgb train \(0\.\.2\)/,
    );
    rows.close();

    const stats = datasetStats(out);
    expect(stats.imageShape).toBeNull();
    expect(stats.fineClassesPerCoarseClass).toEqual([2, 1]);
  });

  it('rebuilds when the source config changes, not otherwise', async () => {
    const out = join(tempDir('rgb'), 'toy_rgb.sqlite');
    expect((await writeIndex(rgbSource(1), out)).upToDate).toBe(false);
    expect((await writeIndex(rgbSource(1), out)).upToDate).toBe(true);
    expect((await writeIndex(rgbSource(2), out)).upToDate).toBe(false);
  });

  it('rebuilds over a file that is not an index', async () => {
    const dir = tempDir('rgb');
    const out = join(dir, 'toy_rgb.sqlite');
    writeFileSync(out, 'garbage');
    expect((await writeIndex(rgbSource(1), out)).upToDate).toBe(false);
    expect(openIndex(out, 'train').size).toBe(3);
  });

  it('rejects an out-of-range label from a source and cleans up', async () => {
    const dir = tempDir('rgb');
    await expect(writeIndex(rgbSource(1, true), join(dir, 'toy_rgb.sqlite'))).rejects.toThrow(
      'toy_rgb train image 1 has fine label 7, outside 0..2',
    );
    expect(readdirSync(dir)).toEqual([]);
  });
});

describe('index format versions', () => {
  it('refuses an index of an older format with a rebuild-with---force message, and rebuilds it', async () => {
    const out = join(tempDir('rgb'), 'toy_rgb.sqlite');
    await writeIndex(rgbSource(1), out);
    const db = new Database(out);
    // The reader's scans on open (labels, sizes) read the covering index, not the pixel pages.
    const plan = (sql: string) =>
      (db.prepare(`EXPLAIN QUERY PLAN ${sql}`).all('train') as { detail: string }[])
        .map((r) => r.detail)
        .join('; ');
    expect(plan('SELECT fine, coarse FROM images WHERE split = ? ORDER BY idx')).toMatch(
      /USING COVERING INDEX images_labels/,
    );
    expect(
      plan(
        'SELECT COUNT(*), MIN(idx), MAX(idx), SUM(height * width * channels) FROM images WHERE split = ?',
      ),
    ).toMatch(/USING COVERING INDEX images_labels/);
    db.prepare("UPDATE meta SET value = '1' WHERE key = 'format_version'").run();
    db.close();
    expect(INDEX_FORMAT_VERSION).toBe('2');
    expect(() => openIndex(out, 'train')).toThrow(
      `Dataset index ${out} was written in index format 1, but this version of @maskcon/datasets reads format 2; rebuild it with \`pnpm datasets:build toy_rgb --force\`.`,
    );
    expect(() => datasetStats(out)).toThrow(/index format 1.*--force/);
    // The writer does not count an old-format index as up to date.
    expect((await writeIndex(rgbSource(1), out)).upToDate).toBe(false);
    expect(openIndex(out, 'train').size).toBe(3);
  });
});

describe('createProgressPrinter', () => {
  it('throttles updates and prints a final line with rate', () => {
    const lines: string[] = [];
    const print = createProgressPrinter('toy', (l) => lines.push(l), 60_000);
    for (let done = 0; done < 1000; done += 10)
      print({ phase: 'write', split: 'train', done, total: 1000, unit: 'images' });
    print({ phase: 'write', split: 'train', done: 1000, total: 1000, unit: 'images' });
    print({ phase: 'write', split: 'train', done: 1000, total: 1000, unit: 'images' });
    expect(lines).toHaveLength(1);
    expect(lines[0]).toMatch(/^toy train images: 1000\/1000 \(100%\) \d+\/s done in \d+\.\ds$/);
  });

  it('prints ETA for unfinished work once the interval passes', () => {
    const lines: string[] = [];
    const print = createProgressPrinter('toy', (l) => lines.push(l), 0);
    print({ phase: 'write', split: 'test', done: 0, total: 100, unit: 'images' });
    const until = performance.now() + 5;
    while (performance.now() < until);
    print({ phase: 'write', split: 'test', done: 50, total: 100, unit: 'images' });
    expect(lines.at(-1)).toMatch(/^toy test images: 50\/100 \(50%\) \d+\/s ETA \d+\.\ds$/);
  });
});

describe('indexes checked on open (issue 16 items 12, 13)', () => {
  it('refuses labels outside the classes table, naming the first bad row', async () => {
    const out = join(tempDir('rgb'), 'toy_rgb.sqlite');
    await writeIndex(rgbSource(1), out);
    const db = new Database(out);
    db.prepare("UPDATE images SET fine = 999 WHERE split = 'test' AND idx = 0").run();
    db.prepare("UPDATE images SET coarse = -1 WHERE split = 'train' AND idx = 2").run();
    db.close();
    const message = `Dataset index ${out} is corrupt: train image 2 has coarse label -1, but the index lists 2 coarse classes (ids 0..1)`;
    expect(() => openIndex(out, 'train')).toThrow(message);
    expect(() => openIndex(out, 'test')).toThrow(message);
    expect(() => datasetStats(out)).toThrow(message);
    const db2 = new Database(out);
    db2.prepare("UPDATE images SET coarse = 1 WHERE split = 'train' AND idx = 2").run();
    db2.close();
    expect(() => openIndex(out, 'train')).toThrow(
      `Dataset index ${out} is corrupt: test image 0 has fine label 999, but the index lists 3 fine classes (ids 0..2)`,
    );
  });

  it('names the index and the missing table when `images` is gone', async () => {
    const out = join(tempDir('rgb'), 'toy_rgb.sqlite');
    await writeIndex(rgbSource(1), out);
    const db = new Database(out);
    db.exec('DROP TABLE images');
    db.close();
    const message = `Dataset index ${out} has no \`images\` table; it is incomplete or was altered — run \`pnpm datasets:build toy_rgb\` first (add --force to rebuild).`;
    expect(() => openIndex(out, 'train')).toThrow(message);
    expect(() => datasetStats(out)).toThrow(message);
  });

  it('names the --out folder that cannot be created', async () => {
    const dir = tempDir('rgb');
    writeFileSync(join(dir, 'blocker'), 'a file, not a folder');
    const folder = join(dir, 'blocker', 'indexes');
    await expect(writeIndex(rgbSource(1), join(folder, 'toy_rgb.sqlite'))).rejects.toThrow(
      `Cannot create the index folder ${folder} (a file is in the way of one of its folders); pass --out DIR naming a folder you can write to.`,
    );
  });
});
