import { createHash } from 'node:crypto';
import { existsSync, readdirSync, readFileSync, statSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { gzipSync } from 'node:zlib';
import { describe, expect, it } from 'vitest';
import {
  buildDataset,
  datasetStats,
  DATASET_NAMES,
  defaultIndexPath,
  fashionMnistSource,
  openIndex,
  writeIndex,
} from '../src/index.js';
import {
  expectedLabel,
  expectedPixels,
  idxBytes,
  tempDir,
  writeFakeFashionMnist,
} from './helpers.js';

const FINE = [
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
];
// tops = {0,2,4,6}, footwear = {5,7,9}, other = {1,3,8}
const COARSE_OF = [0, 2, 0, 2, 0, 1, 0, 1, 2, 1];

function naiveMeanStd(values: number[]): { mean: number; std: number } {
  const mean = values.reduce((a, b) => a + b, 0) / values.length;
  const variance = values.reduce((a, b) => a + (b - mean) ** 2, 0) / values.length;
  return { mean, std: Math.sqrt(variance) };
}

describe('fashion_mnist build and read', () => {
  it('builds an index whose pixels, labels, classes and statistics match the IDX files', async () => {
    const root = tempDir('root');
    const out = tempDir('out');
    writeFakeFashionMnist(root);
    const result = await buildDataset('fashion_mnist', { root, outDir: out });
    expect(result.upToDate).toBe(false);
    expect(result.counts).toEqual({ train: 12, test: 6 });
    expect(result.path).toBe(join(out, 'fashion_mnist.sqlite'));
    expect(readdirSync(out)).toEqual(['fashion_mnist.sqlite']);

    for (const [split, n] of [
      ['train', 12],
      ['test', 6],
    ] as const) {
      const ds = openIndex(result.path, split);
      expect(ds.name).toBe('fashion_mnist');
      expect(ds.split).toBe(split);
      expect(ds.size).toBe(n);
      expect(ds.fineClassNames).toEqual(FINE);
      expect(ds.coarseClassNames).toEqual(['tops', 'footwear', 'other']);
      const labels = Array.from({ length: n }, (_, i) => expectedLabel(split, i));
      expect(Array.from(ds.fineLabels())).toEqual(labels);
      expect(Array.from(ds.coarseLabels())).toEqual(labels.map((l) => COARSE_OF[l]));
      for (let i = 0; i < n; i++) {
        const img = ds.image(i);
        expect([img.height, img.width, img.channels]).toEqual([28, 28, 1]);
        expect(Buffer.from(img.data).equals(Buffer.from(expectedPixels(split, i)))).toBe(true);
      }
      const batch = ds.images([n - 1, 0, 2, 2]);
      expect(batch).toHaveLength(4);
      expect(Buffer.from(batch[0].data).equals(Buffer.from(expectedPixels(split, n - 1)))).toBe(
        true,
      );
      expect(Buffer.from(batch[1].data).equals(Buffer.from(expectedPixels(split, 0)))).toBe(true);
      expect(Buffer.from(batch[3].data).equals(Buffer.from(expectedPixels(split, 2)))).toBe(true);
      expect(() => ds.image(n)).toThrow(/out of range/);
      expect(() => ds.image(-1)).toThrow(/out of range/);
      ds.close();
    }

    // Label 9 (Ankle boot) is footwear; label 3 (Dress) is other; label 6 (Shirt) is tops.
    const train = openIndex(result.path, 'train');
    expect(train.fineLabels()[0]).toBe(9);
    expect(train.coarseLabels()[0]).toBe(1);
    expect(train.fineLabels()[2]).toBe(3);
    expect(train.coarseLabels()[2]).toBe(2);
    expect(train.fineLabels()[1]).toBe(6);
    expect(train.coarseLabels()[1]).toBe(0);

    // Channel statistics of the train pixels in [0,1], computed the slow way.
    const all: number[] = [];
    for (let i = 0; i < 12; i++) for (const v of expectedPixels('train', i)) all.push(v / 255);
    const naive = naiveMeanStd(all);
    expect(train.channelMean).toHaveLength(1);
    expect(train.channelMean[0]).toBeCloseTo(naive.mean, 12);
    expect(train.channelStd[0]).toBeCloseTo(naive.std, 12);
    expect(openIndex(result.path, 'test').channelMean[0]).toBe(train.channelMean[0]);
    train.close();

    const stats = datasetStats(result.path);
    expect(stats.splits.train).toEqual({
      images: 12,
      fineClasses: 10,
      coarseClasses: 3,
      imagesPerCoarseClass: [5, 4, 3],
    });
    expect(stats.splits.test.images).toBe(6);
    expect(stats.fineClassesPerCoarseClass).toEqual([4, 3, 3]);
    expect(stats.imageShape).toEqual([28, 28, 1]);
    expect(stats.sources.map((s) => s.name)).toEqual([
      't10k-images-idx3-ubyte.gz',
      't10k-labels-idx1-ubyte.gz',
      'train-images-idx3-ubyte.gz',
      'train-labels-idx1-ubyte.gz',
    ]);
    for (const s of stats.sources) {
      const bytes = readFileSync(join(root, s.name));
      expect(s.sha256).toBe(createHash('sha256').update(bytes).digest('hex'));
      expect(s.bytes).toBe(bytes.length);
    }
  });

  it('reads rows on demand when the split is above the preload threshold, with the same bytes', async () => {
    const root = tempDir('root');
    const out = tempDir('out');
    writeFakeFashionMnist(root);
    const { path } = await buildDataset('fashion_mnist', { root, outDir: out });
    const lazy = openIndex(path, 'train', { preloadMaxBytes: 0 });
    const eager = openIndex(path, 'train');
    for (const i of [0, 5, 11]) {
      expect(Buffer.from(lazy.image(i).data).equals(Buffer.from(eager.image(i).data))).toBe(true);
      expect(Buffer.from(lazy.image(i).data).equals(Buffer.from(expectedPixels('train', i)))).toBe(
        true,
      );
    }
    expect(lazy.images([11, 3]).map((img) => img.data[0])).toEqual([
      expectedPixels('train', 11)[0],
      expectedPixels('train', 3)[0],
    ]);
    lazy.close();
    eager.close();
  });

  it('leaves an up-to-date index untouched, and rebuilds on --force or changed sources', async () => {
    const root = tempDir('root');
    const out = tempDir('out');
    writeFakeFashionMnist(root);
    const first = await buildDataset('fashion_mnist', { root, outDir: out });
    const before = statSync(first.path);
    await new Promise((r) => setTimeout(r, 30));
    const again = await buildDataset('fashion_mnist', { root, outDir: out });
    expect(again.upToDate).toBe(true);
    expect(again.counts).toEqual({ train: 12, test: 6 });
    const after = statSync(first.path);
    expect(after.mtimeMs).toBe(before.mtimeMs);
    expect(after.ino).toBe(before.ino);

    // Same bytes under another root are still up to date: only checksums matter.
    const root2 = tempDir('root2');
    writeFakeFashionMnist(root2);
    expect((await buildDataset('fashion_mnist', { root: root2, outDir: out })).upToDate).toBe(true);

    const forced = await buildDataset('fashion_mnist', { root, outDir: out, force: true });
    expect(forced.upToDate).toBe(false);
    expect(statSync(first.path).ino).not.toBe(before.ino);

    writeFakeFashionMnist(root, { test: 7 });
    const changed = await buildDataset('fashion_mnist', { root, outDir: out });
    expect(changed.upToDate).toBe(false);
    expect(changed.counts).toEqual({ train: 12, test: 7 });
    expect(readdirSync(out)).toEqual(['fashion_mnist.sqlite']);
  });

  it('reports progress per split with totals', async () => {
    const root = tempDir('root');
    const out = tempDir('out');
    writeFakeFashionMnist(root);
    const events: string[] = [];
    await buildDataset('fashion_mnist', {
      root,
      outDir: out,
      onProgress: (p) => {
        if (p.phase === 'write' && p.done === p.total) events.push(`${p.split}:${p.done}`);
      },
    });
    expect(events).toEqual(['train:12', 'test:6']);
  });
});

describe('fashion_mnist corrupt inputs', () => {
  const cases: {
    what: string;
    file: string;
    setup: Parameters<typeof writeFakeFashionMnist>[1];
    message: RegExp;
  }[] = [
    {
      what: 'bad magic number',
      file: 'train-images-idx3-ubyte.gz',
      setup: {
        mutate: { 'train-images-idx3-ubyte.gz': (b) => (b.writeUInt32BE(0x00000804, 0), b) },
      },
      message: /magic number 0x00000804.*0x00000803/,
    },
    {
      what: 'truncated images file',
      file: 'train-images-idx3-ubyte.gz',
      setup: { mutate: { 'train-images-idx3-ubyte.gz': (b) => b.subarray(0, b.length - 100) } },
      message: /truncated/,
    },
    {
      what: 'extra bytes in the images file',
      file: 't10k-images-idx3-ubyte.gz',
      setup: {
        mutate: { 't10k-images-idx3-ubyte.gz': (b) => Buffer.concat([b, Buffer.from([1, 2, 3])]) },
      },
      message: /3 extra bytes/,
    },
    {
      what: 'label count mismatch',
      file: 'train-labels-idx1-ubyte.gz',
      setup: {
        mutate: { 'train-labels-idx1-ubyte.gz': () => idxBytes([11], new Uint8Array(11)) },
      },
      message: /holds 11 labels but the images file .* holds 12 images/,
    },
    {
      what: 'label 10 in the test split (fails after train is written)',
      file: 't10k-labels-idx1-ubyte.gz',
      setup: { mutate: { 't10k-labels-idx1-ubyte.gz': (b) => ((b[8 + 4] = 10), b) } },
      message: /label 10 at position 4; labels must be 0\.\.9/,
    },
    {
      what: 'missing file',
      file: 't10k-labels-idx1-ubyte.gz',
      setup: { omit: ['t10k-labels-idx1-ubyte.gz'] },
      message: /does not exist.*--root/,
    },
    {
      what: 'a file that is not gzip',
      file: 'train-labels-idx1-ubyte.gz',
      setup: { raw: { 'train-labels-idx1-ubyte.gz': Buffer.from('not gzip at all') } },
      message: /not a valid gzip file/,
    },
    {
      what: 'wrong image size',
      file: 'train-images-idx3-ubyte.gz',
      setup: {
        mutate: {
          'train-images-idx3-ubyte.gz': () => idxBytes([12, 28, 14], new Uint8Array(12 * 28 * 14)),
        },
      },
      message: /28×14 images/,
    },
  ];

  for (const c of cases) {
    it(`rejects ${c.what}, naming the file and leaving no index or temp file`, async () => {
      const root = tempDir('bad');
      const out = tempDir('out');
      writeFakeFashionMnist(root, c.setup);
      const error = await buildDataset('fashion_mnist', { root, outDir: out }).then(
        () => undefined,
        (e: unknown) => e as Error,
      );
      expect(error).toBeInstanceOf(Error);
      expect(error!.message).toContain(join(root, c.file));
      expect(error!.message).toMatch(c.message);
      expect(readdirSync(out)).toEqual([]);
    });
  }

  it('caps the decompressed size of each file', async () => {
    const root = tempDir('bomb');
    const out = tempDir('out');
    writeFakeFashionMnist(root);
    // 12 images = 9,424 bytes decompressed; a 4 KiB cap must refuse it.
    const source = fashionMnistSource({ root, maxDecompressedBytes: 4096 });
    await expect(writeIndex(source, join(out, 'fashion_mnist.sqlite'))).rejects.toThrow(
      /train-images-idx3-ubyte\.gz decompresses to more than 4096 bytes/,
    );
    expect(readdirSync(out)).toEqual([]);
  });

  it('keeps a previous good index when a rebuild fails', async () => {
    const root = tempDir('root');
    const out = tempDir('out');
    writeFakeFashionMnist(root);
    const { path } = await buildDataset('fashion_mnist', { root, outDir: out });
    writeFileSync(
      join(root, 't10k-labels-idx1-ubyte.gz'),
      gzipSync(idxBytes([6], new Uint8Array([0, 1, 2, 3, 4, 200]))),
    );
    await expect(buildDataset('fashion_mnist', { root, outDir: out })).rejects.toThrow(
      /label 200 at position 5/,
    );
    expect(readdirSync(out)).toEqual(['fashion_mnist.sqlite']);
    expect(openIndex(path, 'test').size).toBe(6);
  });
});

describe('registry and reader errors', () => {
  it('names the datasets and the default index path', () => {
    expect(DATASET_NAMES).toEqual([
      'fashion_mnist',
      'cifar100',
      'cifartoy_good',
      'cifartoy_bad',
      'imagenet32',
      'sop_split1',
      'sop_split2',
      'cars196',
      'csv',
    ]);
    expect(defaultIndexPath('fashion_mnist', '/x/y')).toBe('/x/y/fashion_mnist.sqlite');
  });

  it('lists the known datasets for an unknown name', async () => {
    await expect(buildDataset('mnist_digits')).rejects.toThrow(
      "Unknown dataset 'mnist_digits'. Known datasets: fashion_mnist, cifar100, cifartoy_good, cifartoy_bad, imagenet32, sop_split1, sop_split2, cars196, csv.",
    );
  });

  it('tells the user to build when the index is missing or not an index', () => {
    const dir = tempDir('reader');
    const missing = join(dir, 'fashion_mnist.sqlite');
    expect(() => openIndex(missing, 'train')).toThrow(
      `Dataset index ${missing} does not exist; run \`pnpm datasets:build fashion_mnist\` first.`,
    );
    const junk = join(dir, 'cifar100.sqlite');
    writeFileSync(
      junk,
      'this is not sqlite, just some text that is long enough to look like a header'.repeat(20),
    );
    expect(() => openIndex(junk, 'test')).toThrow(
      /is not a MaskCon dataset index .*run `pnpm datasets:build cifar100` first/,
    );
    expect(() => datasetStats(junk)).toThrow(/not a MaskCon dataset index/);
    expect(existsSync(missing)).toBe(false);
  });
});
