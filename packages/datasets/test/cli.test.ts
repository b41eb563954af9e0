import { existsSync, readdirSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { tempDir, writeFakeFashionMnist, runDatasetsCli } from './helpers.js';

const cli = runDatasetsCli;

describe('datasets CLI', () => {
  it('builds, reports up to date, and prints stats', () => {
    const root = tempDir('cli-root');
    const out = tempDir('cli-out');
    writeFakeFashionMnist(root);
    const first = cli(['build', 'fashion_mnist', '--root', root, '--out', out]);
    expect(first.stderr).toMatch(/fashion_mnist train images: 12\/12 \(100%\)/);
    expect(first.status).toBe(0);
    expect(first.stdout).toContain(
      `wrote ${join(out, 'fashion_mnist.sqlite')} (12 train / 6 test images)`,
    );
    expect(existsSync(join(out, 'fashion_mnist.sqlite'))).toBe(true);

    const second = cli(['build', 'fashion_mnist', '--root', root, '--out', out]);
    expect(second.status).toBe(0);
    expect(second.stdout).toContain('is up to date');

    const stats = cli(['stats', 'fashion_mnist', '--out', out]);
    expect(stats.status).toBe(0);
    expect(stats.stdout).toMatch(/train: 12 images, 10 fine \/ 3 coarse classes present/);
    expect(stats.stdout).toMatch(/\n 1 {2}footwear +3 +4 +\d+\n/);
  });

  it('fails with a one-line message for a bad root, an unknown dataset and a missing index', () => {
    const out = tempDir('cli-out');
    const badRoot = join(out, 'no-such-dir');
    const bad = cli(['build', 'fashion_mnist', '--root', badRoot, '--out', out]);
    expect(bad.status).toBe(1);
    expect(bad.stderr).toContain(
      `error: Source file ${join(badRoot, 'train-images-idx3-ubyte.gz')} of dataset fashion_mnist does not exist`,
    );
    expect(bad.stderr).toContain('--root DIR');
    expect(bad.stderr).not.toMatch(/\n\s+at /);
    expect(readdirSync(out)).toEqual([]);

    const unknown = cli(['build', 'imagenet_full']);
    expect(unknown.status).toBe(1);
    expect(unknown.stderr).toContain(
      "Unknown dataset 'imagenet_full'. Known datasets: fashion_mnist, cifar100, cifartoy_good, cifartoy_bad, imagenet32, sop_split1, sop_split2, cars196, csv.",
    );

    const noIndex = cli(['stats', 'fashion_mnist', '--out', out]);
    expect(noIndex.status).toBe(1);
    expect(noIndex.stderr).toContain('run `pnpm datasets:build fashion_mnist` first');
  });
});
