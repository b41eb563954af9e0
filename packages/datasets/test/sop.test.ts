import { realpathSync, renameSync, symlinkSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { openIndex } from '../src/read-index.js';
import type { SkippedImage } from '../src/image-files.js';
import { sopSource } from '../src/sources/sop.js';
import { writeIndex } from '../src/write-index.js';
import { tempDir } from './helpers.js';
import { jpegBytes, testDecoder, writeFile } from './image-fixtures.js';
import { writeSopFolder } from './source-fixtures.js';

/** Products: [class_id, super_class_id, image count]. */
const PRODUCTS: [number, number, number][] = [
  [1, 1, 12],
  [2, 1, 9],
  [3, 1, 5],
  [4, 2, 12],
  [5, 2, 8],
  [6, 3, 12],
  [7, 3, 2],
  [8, 3, 10],
];
const CATEGORIES = ['bicycle', 'chair', 'mug'];

interface Fixture {
  root: string;
  /** path → [class_id, super_class_id] */
  labels: Map<string, [number, number]>;
}

/** Ebay_*.txt in the published format (products 1–4 train, 5–8 test) plus tiny JPEGs. */
async function writeSop(options: { lines?: (lines: string[]) => string[] } = {}): Promise<Fixture> {
  const root = tempDir('sop');
  const jpeg = await jpegBytes(12, 10, [200, 30, 30]);
  const products = PRODUCTS.map(([classId, superId, images]) => ({
    classId,
    superId,
    images,
    train: classId <= 4,
  }));
  const labels = await writeSopFolder(root, products, CATEGORIES, async () => jpeg, options.lines);
  return { root, labels };
}

async function build(
  dataset: 'sop_split1' | 'sop_split2',
  root: string,
  extra: {
    seed?: number;
    skipBad?: boolean;
    allowSymlinks?: boolean;
    onSkip?: (s: SkippedImage) => void;
  } = {},
) {
  const out = join(tempDir('sop-out'), `${dataset}.sqlite`);
  const source = sopSource(dataset, { root, decoder: testDecoder, shortSide: 8, ...extra });
  const result = await writeIndex(source, out);
  const read = (split: 'train' | 'test') => {
    const ds = openIndex(out, split);
    try {
      return {
        fine: Array.from(ds.fineLabels()),
        coarse: Array.from(ds.coarseLabels()),
        first: ds.image(0),
        fineNames: ds.fineClassNames,
        coarseNames: ds.coarseClassNames,
      };
    } finally {
      ds.close();
    }
  };
  return { result, train: read('train'), test: read('test'), source };
}

describe('Stanford Online Products splits', () => {
  it('split1: products with ≥ 8 images, split by product, no product on both sides', async () => {
    const { root } = await writeSop();
    const { result, train, test } = await build('sop_split1', root);
    // Products with ≥ 8 images: 1 (12), 2 (9), 4 (12), 5 (8), 6 (12), 8 (10) → 6, 3 train + 3 test.
    expect(train.fineNames).toEqual([
      'product 1',
      'product 2',
      'product 4',
      'product 5',
      'product 6',
      'product 8',
    ]);
    expect(train.coarseNames).toEqual(CATEGORIES);
    const trainProducts = new Set(train.fine);
    const testProducts = new Set(test.fine);
    expect(trainProducts.size).toBe(3);
    expect(testProducts.size).toBe(3);
    expect([...trainProducts].filter((p) => testProducts.has(p))).toEqual([]);
    const imagesOf = [12, 9, 12, 8, 12, 10];
    const sum = (s: Set<number>) => [...s].reduce((a, p) => a + imagesOf[p], 0);
    expect(result.counts).toEqual({ train: sum(trainProducts), test: sum(testProducts) });
    // Coarse = super_class_id − 1 of the product.
    const coarseOfFine = [0, 0, 1, 1, 2, 2];
    train.fine.forEach((f, i) => expect(train.coarse[i]).toBe(coarseOfFine[f]));
    test.fine.forEach((f, i) => expect(test.coarse[i]).toBe(coarseOfFine[f]));
    // Stored copy: 12×10 source resized to short side 8 → 8×10 (h×w), RGB.
    expect(train.first).toMatchObject({ height: 8, width: 10, channels: 3 });
    expect(train.first.data[0]).toBeGreaterThan(150); // red survives decode + resize
  });

  it('split2: products with exactly 12 images, 10 train + 2 test each, reproducible from the seed', async () => {
    const { root } = await writeSop();
    const a = await build('sop_split2', root, { seed: 7 });
    expect(a.train.fineNames).toEqual(['product 1', 'product 4', 'product 6']);
    expect(a.result.counts).toEqual({ train: 30, test: 6 });
    for (let f = 0; f < 3; f++) {
      expect(a.train.fine.filter((x) => x === f)).toHaveLength(10);
      expect(a.test.fine.filter((x) => x === f)).toHaveLength(2);
    }
    expect(a.train.coarse.slice(0, 10)).toEqual(new Array(10).fill(0));
    const b = await build('sop_split2', root, { seed: 7 });
    expect(b.train.fine).toEqual(a.train.fine);
    expect(b.source.config).toEqual({
      split: 'recipe',
      root: realpathSync(root),
      seed: 7,
      shortSide: 8,
      skipBad: false,
    });
  });

  it("uses the authors' JSON split files exactly when they are present", async () => {
    const { root } = await writeSop();
    const put = (split: string, paths: string[], fine: number[], coarse: number[]) => {
      writeFile(join(root, 'sop_split1', `${split}_path.json`), JSON.stringify(paths));
      writeFile(join(root, 'sop_split1', `${split}_fine_label.json`), JSON.stringify(fine));
      writeFile(join(root, 'sop_split1', `${split}_coarse_label.json`), JSON.stringify(coarse));
    };
    put(
      'train',
      ['mug_final/1006_3.JPG', 'bicycle_final/1001_0.JPG', 'bicycle_final/1001_1.JPG'],
      [1, 0, 0],
      [2, 0, 0],
    );
    put('test', ['chair_final/1004_0.JPG'], [2], [1]);
    const { result, train, test, source } = await build('sop_split1', root);
    expect(result.counts).toEqual({ train: 3, test: 1 });
    expect(train.fine).toEqual([1, 0, 0]);
    expect(train.coarse).toEqual([2, 0, 0]);
    expect(test.fine).toEqual([2]);
    expect(train.coarseNames).toEqual(['bicycle', 'chair', 'mug']);
    expect(source.config).toMatchObject({ split: 'authors-json' });
    expect(source.sourceFiles.map((f) => f.name)).toContain('sop_split1/train_path.json');
  });

  it('refuses metadata paths that escape the root: .., absolute, symlink', async () => {
    for (const bad of ['../outside.JPG', '/etc/passwd', 'bicycle_final/../../x.JPG']) {
      const { root } = await writeSop({ lines: (l) => [...l, `999 1 1 ${bad}`] });
      await expect(build('sop_split1', root)).rejects.toThrow(
        /Ebay_train\.txt line 40 names the image path .* must stay inside the dataset root/,
      );
    }
    const { root } = await writeSop({ lines: (l) => [...l, '999 1 1 bicycle_final/link.JPG'] });
    const outside = tempDir('sop-outside');
    writeFile(join(outside, 'secret.JPG'), 'x');
    symlinkSync(join(outside, 'secret.JPG'), join(root, 'bicycle_final', 'link.JPG'));
    await expect(build('sop_split1', root)).rejects.toThrow(
      /leads through a symlink to .*secret\.JPG, outside the dataset root/,
    );
  });

  it('follows a symlinked image folder only with allowSymlinks (--allow-symlinks), and the refusal names the flag (issue 16 item 7)', async () => {
    const { root } = await writeSop();
    // The mug images live on "another disk"; the root links their folder in.
    const disk = tempDir('sop-disk');
    renameSync(join(root, 'mug_final'), join(disk, 'mug_final'));
    symlinkSync(join(disk, 'mug_final'), join(root, 'mug_final'));
    await expect(build('sop_split1', root)).rejects.toThrow(
      new RegExp(
        `names the image path "mug_final/1006_0\\.JPG", which leads through a symlink to ${realpathSync(disk)}/mug_final/1006_0\\.JPG, outside the dataset root .*pass --allow-symlinks`,
      ),
    );
    const linked = await build('sop_split1', root, { allowSymlinks: true });
    const plain = await build('sop_split1', (await writeSop()).root);
    expect(linked.result.counts).toEqual(plain.result.counts);
    expect(linked.test.fine).toEqual(plain.test.fine);
    expect(linked.test.coarse).toEqual(plain.test.coarse);
    // Metadata paths still may not climb out, whatever the flag.
    const { root: hostile } = await writeSop({ lines: (l) => [...l, '999 1 1 ../outside.JPG'] });
    await expect(build('sop_split1', hostile, { allowSymlinks: true })).rejects.toThrow(
      /names the image path "\.\.\/outside\.JPG", which climbs out with \.\./,
    );
  });

  it('stops on a corrupt or truncated JPEG naming the file, or skips and reports it with skipBad', async () => {
    const { root } = await writeSop();
    const good = await jpegBytes(12, 10, [0, 0, 0]);
    writeFile(join(root, 'bicycle_final/1001_3.JPG'), Buffer.from('this is not a jpeg'));
    writeFile(join(root, 'mug_final/1006_5.JPG'), good.subarray(0, Math.floor(good.length / 2)));
    await expect(build('sop_split2', root)).rejects.toThrow(
      /sop_split2: image .*bicycle_final\/1001_3\.JPG \(Ebay_train\.txt line 5\) could not be decoded: .*--skip-bad/,
    );

    const skipped: SkippedImage[] = [];
    const { result } = await build('sop_split2', root, {
      skipBad: true,
      onSkip: (s) => skipped.push(s),
    });
    expect(skipped.map((s) => s.path.slice(root.length + 1)).sort()).toEqual([
      'bicycle_final/1001_3.JPG',
      'mug_final/1006_5.JPG',
    ]);
    expect(skipped.every((s) => s.reason.length > 0 && s.dataset === 'sop_split2')).toBe(true);
    expect(result.counts.train + result.counts.test).toBe(36 - 2);
  });
});
