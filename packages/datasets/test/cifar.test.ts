import { spawnSync } from 'node:child_process';
import { mkdirSync, writeFileSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { gzipSync } from 'node:zlib';
import { describe, expect, it } from 'vitest';
import {
  buildDataset,
  CIFAR100_COARSE_CLASSES,
  CIFAR100_FINE_CLASSES,
  CIFAR10_CLASSES,
  openIndex,
  type SkippedImage,
} from '../src/index.js';
import { hwcOf, pickle, planarPixels, py, tar } from './archive-writers.js';
import { tempDir } from './helpers.js';

// CIFAR-100: fine i of a batch, coarse = fine % 20 (the builder keeps the file's coarse label).
const REPO = resolve(import.meta.dirname, '../../..');
const C100 = { train: 14, test: 6 };
const fine100 = (split: string, i: number) => (i * 37 + (split === 'train' ? 3 : 50)) % 100;
const salt = (split: string) => (split === 'train' ? 1 : 2);

function cifar100Batch(split: 'train' | 'test', style: 'py2' | 'py3' = 'py2') {
  const n = C100[split];
  const data = new Uint8Array(n * 3072);
  for (let i = 0; i < n; i++) data.set(planarPixels(i, salt(split)), i * 3072);
  const fine = Array.from({ length: n }, (_, i) => fine100(split, i));
  return pickle(
    py.dict([
      ['filenames', py.strs(fine.map((_, i) => `img_${i}.png`))],
      ['batch_label', py.str(`${split} batch`)],
      ['fine_labels', py.ints(fine)],
      ['coarse_labels', py.ints(fine.map((f) => f % 20))],
      ['data', py.u8array([n, 3072], data)],
    ]),
    style,
  );
}
const meta100 = () =>
  pickle(
    py.dict([
      ['fine_label_names', py.strs(CIFAR100_FINE_CLASSES)],
      ['coarse_label_names', py.strs(CIFAR100_COARSE_CLASSES)],
    ]),
  );

function binary100(split: 'train' | 'test'): Buffer {
  const parts: Buffer[] = [];
  for (let i = 0; i < C100[split]; i++)
    parts.push(
      Buffer.from([fine100(split, i) % 20, fine100(split, i)]),
      Buffer.from(planarPixels(i, salt(split))),
    );
  return Buffer.concat(parts);
}

// CIFAR-10: 5 train batches of 5 images, test 5; labels cycle through 0..9 so deer/frog occur.
const label10 = (b: number, i: number) => (b * 5 + i * 3) % 10;
function cifar10Batch(b: number) {
  const data = new Uint8Array(5 * 3072);
  for (let i = 0; i < 5; i++) data.set(planarPixels(i, 10 + b), i * 3072);
  return pickle(
    py.dict([
      ['batch_label', py.str(`b${b}`)],
      ['labels', py.ints([0, 1, 2, 3, 4].map((i) => label10(b, i)))],
      ['data', py.u8array([5, 3072], data)],
    ]),
  );
}
function binary10(b: number): Buffer {
  return Buffer.concat(
    [0, 1, 2, 3, 4].flatMap((i) => [
      Buffer.from([label10(b, i)]),
      Buffer.from(planarPixels(i, 10 + b)),
    ]),
  );
}
const TRAIN10 = [1, 2, 3, 4, 5];

function expectImages(
  path: string,
  split: 'train' | 'test',
  expected: { fine: number; coarse: number; planar: Uint8Array }[],
) {
  const ds = openIndex(path, split);
  expect(ds.size).toBe(expected.length);
  expect(Array.from(ds.fineLabels())).toEqual(expected.map((e) => e.fine));
  expect(Array.from(ds.coarseLabels())).toEqual(expected.map((e) => e.coarse));
  expected.forEach((e, i) => {
    const img = ds.image(i);
    expect([img.height, img.width, img.channels]).toEqual([32, 32, 3]);
    expect(Buffer.from(img.data).equals(Buffer.from(hwcOf(e.planar)))).toBe(true);
  });
  ds.close();
}

const expected100 = (split: 'train' | 'test') =>
  Array.from({ length: C100[split] }, (_, i) => ({
    fine: fine100(split, i),
    coarse: fine100(split, i) % 20,
    planar: planarPixels(i, salt(split)),
  }));

describe('cifar100', () => {
  it('builds from the python archive, the binary archive and the extracted folder alike', async () => {
    const roots = {
      python: tempDir('c100py'),
      binary: tempDir('c100bin'),
      folder: tempDir('c100dir'),
    };
    writeFileSync(
      join(roots.python, 'cifar-100-python.tar.gz'),
      gzipSync(
        tar([
          { name: 'cifar-100-python/', type: '5' },
          { name: 'cifar-100-python/file.txt~', data: Buffer.from('x') },
          { name: 'cifar-100-python/test', data: cifar100Batch('test') },
          { name: 'cifar-100-python/meta', data: meta100() },
          { name: 'cifar-100-python/train', data: cifar100Batch('train') },
        ]),
      ),
    );
    writeFileSync(
      join(roots.binary, 'cifar-100-binary.tar.gz'),
      gzipSync(
        tar([
          {
            name: 'cifar-100-binary/coarse_label_names.txt',
            data: Buffer.from(CIFAR100_COARSE_CLASSES.join('\n') + '\n'),
          },
          {
            name: 'cifar-100-binary/fine_label_names.txt',
            data: Buffer.from(CIFAR100_FINE_CLASSES.join('\n') + '\n'),
          },
          { name: 'cifar-100-binary/train.bin', data: binary100('train') },
          { name: 'cifar-100-binary/test.bin', data: binary100('test') },
        ]),
      ),
    );
    const folder = join(roots.folder, 'cifar-100-python');
    mkdirSync(folder);
    writeFileSync(join(folder, 'train'), cifar100Batch('train', 'py3'));
    writeFileSync(join(folder, 'test'), cifar100Batch('test', 'py3'));
    writeFileSync(join(folder, 'meta'), meta100());
    for (const root of Object.values(roots)) {
      const out = tempDir('c100out');
      const result = await buildDataset('cifar100', { root, outDir: out });
      expect(result.counts).toEqual({ train: 14, test: 6 });
      expectImages(result.path, 'train', expected100('train'));
      expectImages(result.path, 'test', expected100('test'));
      const ds = openIndex(result.path, 'train');
      expect(ds.fineClassNames).toHaveLength(100);
      expect(ds.coarseClassNames[14]).toBe('people');
      ds.close();
    }
  });

  it('names the file for truncated batches, mismatched label lists and wrong class lists', async () => {
    const root = tempDir('c100bad');
    const folder = join(root, 'cifar-100-binary');
    mkdirSync(folder);
    writeFileSync(join(folder, 'train.bin'), binary100('train').subarray(0, 3074 * 3 + 100));
    writeFileSync(join(folder, 'test.bin'), binary100('test'));
    await expect(buildDataset('cifar100', { root, outDir: tempDir('o') })).rejects.toThrow(
      /train\.bin is 9322 bytes.*record 3 is cut short after 100 bytes.*truncated/,
    );

    const short = tempDir('c100short');
    const n = 4;
    writeFileSync(
      join(short, 'cifar-100-python.tar.gz'),
      gzipSync(
        tar([
          {
            name: 'cifar-100-python/train',
            data: pickle(
              py.dict([
                ['fine_labels', py.ints([1, 2, 3])],
                ['coarse_labels', py.ints([1, 2, 3, 4])],
                ['data', py.u8array([n, 3072], new Uint8Array(n * 3072))],
              ]),
            ),
          },
          { name: 'cifar-100-python/test', data: cifar100Batch('test') },
        ]),
      ),
    );
    await expect(buildDataset('cifar100', { root: short, outDir: tempDir('o') })).rejects.toThrow(
      /cifar-100-python\.tar\.gz:train has 4 images but 3 entries in 'fine_labels'/,
    );

    const wrongMeta = tempDir('c100meta');
    const names: string[] = [...CIFAR100_FINE_CLASSES];
    names[5] = 'sofa';
    writeFileSync(
      join(wrongMeta, 'cifar-100-python.tar.gz'),
      gzipSync(
        tar([
          {
            name: 'cifar-100-python/meta',
            data: pickle(
              py.dict([
                ['fine_label_names', py.strs(names)],
                ['coarse_label_names', py.strs(CIFAR100_COARSE_CLASSES)],
              ]),
            ),
          },
          { name: 'cifar-100-python/train', data: cifar100Batch('train') },
          { name: 'cifar-100-python/test', data: cifar100Batch('test') },
        ]),
      ),
    );
    await expect(
      buildDataset('cifar100', { root: wrongMeta, outDir: tempDir('o') }),
    ).rejects.toThrow(/meta lists 100 fine_label_names \(entry 5 is 'sofa', expected 'bed'\)/);
  });
});

describe('cifar files checked before they are read whole (issue 16 item 6)', () => {
  it('refuses a python batch of zeros by its first bytes, and a binary batch over its published size', async () => {
    const zeros = tempDir('c100zeros');
    const archive = join(zeros, 'cifar-100-python.tar.gz');
    writeFileSync(
      archive,
      gzipSync(
        tar([
          { name: 'cifar-100-python/train', data: new Uint8Array(8 * 2 ** 20) },
          { name: 'cifar-100-python/test', data: cifar100Batch('test') },
        ]),
      ),
    );
    await expect(buildDataset('cifar100', { root: zeros, outDir: tempDir('o') })).rejects.toThrow(
      `${archive}:train starts with bytes 00 00 00 00, not a pickle header (0x80 and protocol 2–5, or '(' / '}'); it is not the published CIFAR-100 file — download it again.`,
    );

    const big = tempDir('c10big');
    const folder = join(big, 'cifar-10-batches-bin');
    mkdirSync(folder);
    for (const name of ['data_batch_1', 'data_batch_2', 'data_batch_3', 'data_batch_4'])
      writeFileSync(join(folder, `${name}.bin`), new Uint8Array(3073));
    writeFileSync(join(folder, 'data_batch_5.bin'), new Uint8Array(10_001 * 3073));
    writeFileSync(join(folder, 'test_batch.bin'), new Uint8Array(3073));
    await expect(
      buildDataset('cifartoy_good', { root: big, outDir: tempDir('o') }),
    ).rejects.toThrow(
      `${join(folder, 'data_batch_5.bin')} is 30733073 bytes, more than the 30730000 the published CIFAR-10 data_batch_5.bin can be; it is not the published CIFAR-10 file — download it again.`,
    );
  });
});

describe('cifar --skip-bad', () => {
  it('cifar100 binary: keeps the whole records of a truncated batch and leaves out out-of-range labels, reporting each', async () => {
    const root = tempDir('c100skip');
    const folder = join(root, 'cifar-100-binary');
    mkdirSync(folder);
    const train = Buffer.from(binary100('train'));
    train[3074 * 2 + 1] = 150; // record 2: fine label 150
    train[3074 * 5] = 20; // record 5: coarse label 20
    writeFileSync(join(folder, 'train.bin'), train.subarray(0, 3074 * 9 + 700)); // record 9 cut short
    writeFileSync(join(folder, 'test.bin'), binary100('test'));
    await expect(buildDataset('cifar100', { root, outDir: tempDir('o') })).rejects.toThrow(
      /train\.bin is 28366 bytes.*record 9 is cut short.*--skip-bad/,
    );

    const skipped: SkippedImage[] = [];
    const result = await buildDataset('cifar100', {
      root,
      outDir: tempDir('o'),
      sourceOptions: { skipBad: true, onSkip: (s) => skipped.push(s) },
    });
    const file = join(folder, 'train.bin');
    expect(skipped.map((s) => [s.dataset, s.split, s.path, s.where])).toEqual([
      ['cifar100', 'train', file, 'record 9'],
      ['cifar100', 'train', file, 'image 2'],
      ['cifar100', 'train', file, 'image 5'],
    ]);
    expect(skipped[0].reason).toMatch(/record 9 is cut short after 700 bytes/);
    expect(skipped[1].reason).toBe('fine label 150 / coarse label 17, outside 0..99 / 0..19');
    expect(result.counts).toEqual({ train: 7, test: 6 });
    expectImages(
      result.path,
      'train',
      expected100('train').filter((_, i) => i < 9 && i !== 2 && i !== 5),
    );
    expectImages(result.path, 'test', expected100('test'));
  });

  it('cifartoy python: leaves out a batch whose labels do not match its images, and a label above 9; the CLI lists them', async () => {
    const root = tempDir('c10skip');
    const folder = join(root, 'cifar-10-batches-py');
    mkdirSync(folder);
    for (const b of TRAIN10) writeFileSync(join(folder, `data_batch_${b}`), cifar10Batch(b));
    writeFileSync(join(folder, 'test_batch'), cifar10Batch(0));
    const data = new Uint8Array(5 * 3072);
    writeFileSync(
      join(folder, 'data_batch_2'),
      pickle(
        py.dict([
          ['labels', py.ints([0, 1, 2])],
          ['data', py.u8array([5, 3072], data)],
        ]),
      ),
    );
    const labels = [0, 1, 2, 3, 4].map((i) => label10(4, i));
    labels[3] = 12;
    const batch4 = new Uint8Array(5 * 3072);
    for (let i = 0; i < 5; i++) batch4.set(planarPixels(i, 14), i * 3072);
    writeFileSync(
      join(folder, 'data_batch_4'),
      pickle(
        py.dict([
          ['labels', py.ints(labels)],
          ['data', py.u8array([5, 3072], batch4)],
        ]),
      ),
    );

    const out = tempDir('o');
    const run = spawnSync(
      process.execPath,
      [
        '--import',
        'tsx',
        'packages/datasets/src/cli.ts',
        'build',
        'cifartoy_good',
        '--root',
        root,
        '--out',
        out,
        '--skip-bad',
      ],
      {
        cwd: REPO,
        encoding: 'utf8',
      },
    );
    expect(run.status).toBe(0);
    expect(run.stdout).toContain('cifartoy_good: skipped 2 unreadable images (--skip-bad):');
    expect(run.stdout).toContain(
      `  train ${join(folder, 'data_batch_2')} (whole batch): Pickle ${join(folder, 'data_batch_2')} has 5 images but 3 entries in 'labels'`,
    );
    expect(run.stdout).toContain(
      `  train ${join(folder, 'data_batch_4')} (image 3): label 12, outside CIFAR-10's 0..9`,
    );
    const kept = [1, 3, 4, 5].flatMap((b) =>
      [0, 1, 2, 3, 4]
        .filter((i) => !(b === 4 && i === 3))
        .map((i) => (b === 4 ? labels[i] : label10(b, i)))
        .filter((l) => TOY.includes(l)),
    );
    const ds = openIndex(join(out, 'cifartoy_good.sqlite'), 'train');
    expect(Array.from(ds.fineLabels())).toEqual(kept.map((l) => TOY.indexOf(l)));
    ds.close();
  });
});

const TOY = [0, 1, 2, 3, 5, 7, 8, 9];

describe('cifartoy from CIFAR-10', () => {
  const coarse = { good: [0, 0, 1, 1, 1, 1, 0, 0], bad: [0, 0, 1, 0, 0, 1, 1, 1] };
  const expectedToy = (variant: 'good' | 'bad', batches: number[]) =>
    batches.flatMap((b) =>
      [0, 1, 2, 3, 4]
        .filter((i) => TOY.includes(label10(b, i)))
        .map((i) => ({
          fine: TOY.indexOf(label10(b, i)),
          coarse: coarse[variant][TOY.indexOf(label10(b, i))],
          planar: planarPixels(i, 10 + b),
        })),
    );

  it('keeps 8 classes, re-indexes them 0..7 and applies the good and bad groupings (python and binary)', async () => {
    const python = tempDir('c10py');
    const binary = tempDir('c10bin');
    writeFileSync(
      join(python, 'cifar-10-python.tar.gz'),
      gzipSync(
        tar([
          ...[5, 3, 1, 2, 4].map((b) => ({
            name: `cifar-10-batches-py/data_batch_${b}`,
            data: cifar10Batch(b),
          })),
          { name: 'cifar-10-batches-py/test_batch', data: cifar10Batch(0) },
          {
            name: 'cifar-10-batches-py/batches.meta',
            data: pickle(
              py.dict([
                ['label_names', py.strs(CIFAR10_CLASSES)],
                ['num_vis', py.int(3072)],
              ]),
            ),
          },
        ]),
      ),
    );
    writeFileSync(
      join(binary, 'cifar-10-binary.tar.gz'),
      gzipSync(
        tar([
          ...TRAIN10.map((b) => ({
            name: `cifar-10-batches-bin/data_batch_${b}.bin`,
            data: binary10(b),
          })),
          { name: 'cifar-10-batches-bin/test_batch.bin', data: binary10(0) },
          {
            name: 'cifar-10-batches-bin/batches.meta.txt',
            data: Buffer.from(CIFAR10_CLASSES.join('\n') + '\n\n'),
          },
        ]),
      ),
    );
    for (const root of [python, binary]) {
      for (const variant of ['good', 'bad'] as const) {
        const result = await buildDataset(`cifartoy_${variant}`, {
          root,
          outDir: tempDir('toyout'),
        });
        const train = expectedToy(variant, TRAIN10);
        const test = expectedToy(variant, [0]);
        expect(result.counts).toEqual({ train: train.length, test: test.length });
        expect(train.length).toBe(20); // 25 images, deer and frog (5 of them) dropped
        expectImages(result.path, 'train', train);
        expectImages(result.path, 'test', test);
        const ds = openIndex(result.path, 'test');
        expect(ds.fineClassNames).toEqual([
          'airplane',
          'automobile',
          'bird',
          'cat',
          'dog',
          'horse',
          'ship',
          'truck',
        ]);
        ds.close();
      }
    }
  });
});
