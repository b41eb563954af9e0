import { mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import {
  buildDataset,
  datasetStats,
  IMAGENET_GROUP_NAMES,
  IMAGENET_GROUP_OF_WNID,
  openIndex,
  type SkippedImage,
} from '../src/index.js';
import { hwcOf, int64Bytes, npy, pickle, planarPixels, py, zip } from './archive-writers.js';
import { tempDir } from './helpers.js';

const TABLE_3 = [61, 123, 59, 95, 60, 130, 70, 53, 105, 71, 93, 80];

/** A class list in map_clsloc.txt's format, in an order of our own (reversed wnids). */
const WNIDS = Object.keys(IMAGENET_GROUP_OF_WNID).sort().reverse();
function writeClassList(dir: string): void {
  writeFileSync(
    join(dir, 'map_clsloc.txt'),
    WNIDS.map((w, i) => `${w} ${i + 1} class_${w.slice(1)}`).join('\n') + '\n',
  );
}

// Batch b has 3 images (val 4); label of image i in batch b is 1-based.
const label = (b: number, i: number) => ((b * 97 + i * 331) % 1000) + 1;
const count = (b: number) => (b === 0 ? 4 : 3);
function batchArrays(b: number) {
  const n = count(b);
  const data = new Uint8Array(n * 3072);
  for (let i = 0; i < n; i++) data.set(planarPixels(i, 40 + b), i * 3072);
  return { data, labels: Array.from({ length: n }, (_, i) => label(b, i)) };
}
const batchName = (b: number) => (b === 0 ? 'val_data' : `train_data_batch_${b}`);

describe('imagenet32 coarse groups', () => {
  it('the generated table has 1,000 wnids with the per-group counts of Table 3', () => {
    const groups = Object.values(IMAGENET_GROUP_OF_WNID);
    expect(groups).toHaveLength(1000);
    expect(IMAGENET_GROUP_NAMES).toHaveLength(12);
    expect(IMAGENET_GROUP_NAMES.map((_, g) => groups.filter((x) => x === g).length)).toEqual(
      TABLE_3,
    );
    // Spot checks against WordNet: tench is a fish, a Siberian husky a dog, a tabby a domestic cat.
    expect(IMAGENET_GROUP_OF_WNID.n01440764).toBe(4);
    expect(IMAGENET_GROUP_OF_WNID.n02110185).toBe(1);
    expect(IMAGENET_GROUP_OF_WNID.n02123045).toBe(1);
    expect(IMAGENET_GROUP_OF_WNID.n02119789).toBe(3); // kit fox: a wild mammal
    expect(IMAGENET_GROUP_OF_WNID.n04398044).toBe(8); // teapot: a cooking utensil first
  });
});

describe('imagenet32 build', () => {
  function expectBuilt(path: string) {
    for (const [split, batches] of [
      ['train', [1, 2, 3, 4, 5, 6, 7, 8, 9, 10]],
      ['test', [0]],
    ] as const) {
      const ds = openIndex(path, split);
      const labels = batches.flatMap((b) => batchArrays(b).labels);
      expect(ds.size).toBe(labels.length);
      expect(Array.from(ds.fineLabels())).toEqual(labels.map((l) => l - 1));
      expect(Array.from(ds.coarseLabels())).toEqual(
        labels.map((l) => IMAGENET_GROUP_OF_WNID[WNIDS[l - 1]]),
      );
      let k = 0;
      for (const b of batches) {
        for (let i = 0; i < count(b); i++, k++) {
          expect(
            Buffer.from(ds.image(k).data).equals(Buffer.from(hwcOf(planarPixels(i, 40 + b)))),
          ).toBe(true);
        }
      }
      expect(ds.fineClassNames[0]).toBe(`class_${WNIDS[0].slice(1)}`);
      expect(ds.coarseClassNames).toEqual([...IMAGENET_GROUP_NAMES]);
      ds.close();
    }
    expect(datasetStats(path).coarseClassNames).toHaveLength(12);
  }

  it('builds from pickled batches (in sub-folders) and from npz batches identically', async () => {
    const pickles = tempDir('in32pkl');
    mkdirSync(join(pickles, 'Imagenet32_train'));
    mkdirSync(join(pickles, 'Imagenet32_val'));
    writeClassList(pickles);
    const npzRoot = tempDir('in32npz');
    writeClassList(npzRoot);
    for (let b = 0; b <= 10; b++) {
      const { data, labels } = batchArrays(b);
      const dict = py.dict([
        ['data', py.u8array([count(b), 3072], data)],
        ['labels', py.ints(labels)],
        ['mean', py.u8array([3072], new Uint8Array(3072))],
      ]);
      writeFileSync(
        join(pickles, b === 0 ? 'Imagenet32_val' : 'Imagenet32_train', batchName(b)),
        pickle(dict, b % 2 ? 'py3' : 'py2'),
      );
      writeFileSync(
        join(npzRoot, `${batchName(b)}.npz`),
        zip([
          { name: 'data.npy', data: npy('|u1', [count(b), 3072], data), deflate: b % 2 === 0 },
          { name: 'labels.npy', data: npy('<i8', [count(b)], int64Bytes(labels)), deflate: true },
        ]),
      );
    }
    const a = await buildDataset('imagenet32', { root: pickles, outDir: tempDir('o') });
    expect(a.counts).toEqual({ train: 30, test: 4 });
    expectBuilt(a.path);
    const b = await buildDataset('imagenet32', { root: npzRoot, outDir: tempDir('o') });
    expect(b.counts).toEqual({ train: 30, test: 4 });
    expectBuilt(b.path);
  });

  it('checks the CRC-32 of an npz data.npy although the reader stops at its last image (issue 16 item 2)', async () => {
    const root = tempDir('in32crc');
    writeClassList(root);
    for (let b = 0; b <= 10; b++) {
      const { data, labels } = batchArrays(b);
      const body = npy('|u1', [count(b), 3072], data);
      const archive = zip([
        { name: 'data.npy', data: body }, // stored: the flipped bit reaches the pixels as is
        { name: 'labels.npy', data: npy('<i8', [count(b)], int64Bytes(labels)), deflate: true },
      ]);
      // The last pixel byte of the last image: local header (30) + 'data.npy' (8) + body.
      if (b === 3) archive[30 + 8 + body.length - 1] ^= 0x10;
      writeFileSync(join(root, `${batchName(b)}.npz`), archive);
    }
    await expect(buildDataset('imagenet32', { root, outDir: tempDir('o') })).rejects.toThrow(
      `Zip archive ${join(root, `${batchName(3)}.npz`)}, entry 'data.npy' fails its CRC-32 check; the archive is corrupt — download it again.`,
    );
  });

  it('names the file of a truncated batch, a label-count mismatch and an out-of-range label', async () => {
    const root = tempDir('in32bad');
    writeClassList(root);
    for (let b = 0; b <= 10; b++) {
      const { data, labels } = batchArrays(b);
      writeFileSync(
        join(root, batchName(b)),
        pickle(
          py.dict([
            ['data', py.u8array([count(b), 3072], data)],
            ['labels', py.ints(labels)],
          ]),
        ),
      );
    }
    const file3 = join(root, 'train_data_batch_3');
    const whole = readFileSync(file3);
    writeFileSync(file3, whole.subarray(0, 5000));
    await expect(buildDataset('imagenet32', { root, outDir: tempDir('o') })).rejects.toThrow(
      /Pickle .*train_data_batch_3 ends inside an object at byte \d+.*truncated/,
    );

    const { data } = batchArrays(3);
    writeFileSync(
      file3,
      pickle(
        py.dict([
          ['data', py.u8array([3, 3072], data)],
          ['labels', py.ints([1, 2])],
        ]),
      ),
    );
    await expect(buildDataset('imagenet32', { root, outDir: tempDir('o') })).rejects.toThrow(
      /train_data_batch_3 has 3 images but 2 labels/,
    );

    writeFileSync(
      file3,
      pickle(
        py.dict([
          ['data', py.u8array([3, 3072], data)],
          ['labels', py.ints([1, 0, 2])],
        ]),
      ),
    );
    await expect(buildDataset('imagenet32', { root, outDir: tempDir('o') })).rejects.toThrow(
      /train_data_batch_3: label 1 is 0, outside 1\.\.1000/,
    );
  });

  it('--skip-bad leaves out a truncated batch and out-of-range labels, and reports each with file and index', async () => {
    const root = tempDir('in32skip');
    writeClassList(root);
    for (let b = 0; b <= 10; b++) {
      const { data, labels } = batchArrays(b);
      if (b === 5) labels.splice(1, 2, 0, 1001);
      writeFileSync(
        join(root, batchName(b)),
        pickle(
          py.dict([
            ['data', py.u8array([count(b), 3072], data)],
            ['labels', py.ints(labels)],
          ]),
          b % 2 ? 'py3' : 'py2',
        ),
      );
    }
    const file3 = join(root, 'train_data_batch_3');
    writeFileSync(file3, readFileSync(file3).subarray(0, 5000));
    const skipped: SkippedImage[] = [];
    const result = await buildDataset('imagenet32', {
      root,
      outDir: tempDir('o'),
      sourceOptions: { skipBad: true, onSkip: (x) => skipped.push(x) },
    });
    const file5 = join(root, 'train_data_batch_5');
    expect(skipped.map((x) => [x.split, x.path, x.where])).toEqual([
      ['train', file3, 'whole batch'],
      ['train', file5, 'image 1'],
      ['train', file5, 'image 2'],
    ]);
    expect(skipped[0].reason).toMatch(/ends inside an object at byte \d+/);
    expect(skipped[1].reason).toBe('label 0, outside 1..1000');
    expect(skipped[2].reason).toBe('label 1001, outside 1..1000');
    expect(result.counts).toEqual({ train: 30 - 3 - 2, test: 4 });
    const ds = openIndex(result.path, 'train');
    const kept = [1, 2, 4, 5, 6, 7, 8, 9, 10].flatMap((b) =>
      Array.from({ length: count(b) }, (_, i) => ({ b, i })).filter(
        ({ b, i }) => !(b === 5 && i > 0),
      ),
    );
    expect(Array.from(ds.fineLabels())).toEqual(kept.map(({ b, i }) => label(b, i) - 1));
    kept.forEach(({ b, i }, k) =>
      expect(
        Buffer.from(ds.image(k).data).equals(Buffer.from(hwcOf(planarPixels(i, 40 + b)))),
      ).toBe(true),
    );
    ds.close();
  });
});
