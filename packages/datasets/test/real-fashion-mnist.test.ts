import { existsSync } from 'node:fs';
import { describe, expect, it } from 'vitest';
import { buildDataset, FASHION_MNIST_DEFAULT_ROOT, openIndex } from '../src/index.js';
import { tempDir } from './helpers.js';

const REAL = existsSync(`${FASHION_MNIST_DEFAULT_ROOT}/train-images-idx3-ubyte.gz`);

describe.skipIf(!REAL)('real Fashion-MNIST (Debian dataset-fashion-mnist)', () => {
  it('builds 60,000 train / 10,000 test images; the first train image is an ankle boot', async () => {
    const { path, counts } = await buildDataset('fashion_mnist', { outDir: tempDir('real') });
    expect(counts).toEqual({ train: 60000, test: 10000 });
    const train = openIndex(path, 'train');
    const test = openIndex(path, 'test');
    expect(train.size).toBe(60000);
    expect(test.size).toBe(10000);
    expect(train.fineLabels()[0]).toBe(9);
    expect(train.fineClassNames[9]).toBe('Ankle boot');
    expect(train.coarseClassNames[train.coarseLabels()[0]]).toBe('footwear');
    // Published statistics of the train split: mean 0.2860, std 0.3530.
    expect(train.channelMean[0]).toBeCloseTo(0.286, 3);
    expect(train.channelStd[0]).toBeCloseTo(0.353, 3);
    const counts10 = new Array<number>(10).fill(0);
    for (const l of train.fineLabels()) counts10[l] += 1;
    expect(counts10).toEqual(new Array(10).fill(6000));
    const batch = train.images(Array.from({ length: 128 }, (_, i) => (i * 467) % 60000));
    expect(batch.every((img) => img.data.length === 784)).toBe(true);
    train.close();
    test.close();
  });
});
