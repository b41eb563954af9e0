import { realpathSync, symlinkSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { datasetStats, openIndex } from '../src/read-index.js';
import { buildDataset } from '../src/registry.js';
import { csvSource } from '../src/sources/csv.js';
import { writeIndex } from '../src/write-index.js';
import { tempDir, runDatasetsCli } from './helpers.js';
import { jpegBytes, testDecoder, writeFile } from './image-fixtures.js';

const cli = runDatasetsCli;

/** `count` tiny JPEGs named img<i>.jpg under `dir/images`. */
async function writeImages(dir: string, count: number): Promise<void> {
  const jpeg = await jpegBytes(9, 9, [10, 200, 10]);
  for (let i = 0; i < count; i++) writeFile(join(dir, 'images', `img${i}.jpg`), jpeg);
}

describe('csv source', () => {
  it('reads names, a split column and extra columns; classes numbered in sorted name order', async () => {
    const dir = tempDir('csv');
    await writeImages(dir, 5);
    writeFile(
      join(dir, 'labels.csv'),
      [
        'Image,Coarse_Label,fine,split,notes',
        'images/img0.jpg,shoes,boot,train,"a, quoted note"',
        'images/img1.jpg,shoes,sandal,train,',
        'images/img2.jpg,bags,tote,test,',
        '',
        'images/img3.jpg,bags,tote,TRAIN,',
        'images/img4.jpg,shoes,boot,test,',
      ].join('\n'),
    );
    const source = csvSource({ name: 'my_shop', root: dir, decoder: testDecoder, shortSide: 8 });
    const out = join(tempDir('csv-out'), 'my_shop.sqlite');
    expect((await writeIndex(source, out)).counts).toEqual({ train: 3, test: 2 });
    expect(source.coarseClassNames).toEqual(['bags', 'shoes']);
    expect(source.fineClassNames).toEqual(['boot', 'sandal', 'tote']);
    const train = openIndex(out, 'train');
    expect(Array.from(train.coarseLabels())).toEqual([1, 1, 0]);
    expect(Array.from(train.fineLabels())).toEqual([0, 1, 2]);
    expect(train.image(2)).toMatchObject({ height: 8, width: 8, channels: 3 });
    // The index keeps the file each image was decoded from (symlinks of the root resolved).
    const realDir = realpathSync(dir);
    expect([0, 1, 2].map((i) => train.sourcePath?.(i))).toEqual(
      ['img0', 'img1', 'img3'].map((f) => join(realDir, 'images', `${f}.jpg`)),
    );
    train.close();
    const test = openIndex(out, 'test', { preloadMaxBytes: 0 });
    expect(test.sourcePath?.(1)).toBe(join(realDir, 'images', 'img4.jpg'));
    expect(() => test.sourcePath?.(2)).toThrow(
      /Image index 2 is out of range for my_shop test \(0\.\.1\)/,
    );
    test.close();
  });

  it('reads a TSV of ids without a split column: 2 images of each fine class are test, seeded', async () => {
    const dir = tempDir('tsv');
    await writeImages(dir, 20);
    // Fine classes 0..4 of 4 images each; classes 0–2 are coarse 0, classes 3–4 coarse 2.
    const rows = Array.from(
      { length: 20 },
      (_, i) => `images/img${i}.jpg\t${i < 12 ? 0 : 2}\t${Math.floor(i / 4)}`,
    );
    writeFile(join(dir, 'list.tsv'), ['path\tcoarse\tfine_label', ...rows].join('\n'));
    const build = async (seed: number) => {
      const out = join(tempDir('tsv-out'), 'x.sqlite');
      await writeIndex(
        csvSource({
          name: 'x',
          csvFile: join(dir, 'list.tsv'),
          seed,
          decoder: testDecoder,
          shortSide: 8,
        }),
        out,
      );
      const test = openIndex(out, 'test');
      const labels = {
        coarse: Array.from(test.coarseLabels()),
        fine: Array.from(test.fineLabels()),
        names: test.coarseClassNames,
      };
      test.close();
      return labels;
    };
    const a = await build(3);
    expect(a.names).toEqual(['0', '1', '2']); // ids: class k is named "k", unused ids stay
    expect(a.coarse.filter((c) => c === 0)).toHaveLength(6);
    expect(a.coarse.filter((c) => c === 2)).toHaveLength(4);
    for (let f = 0; f < 5; f++) expect(a.fine.filter((x) => x === f)).toHaveLength(2);
    expect(await build(3)).toEqual(a);
  });

  it('names the file and line of missing or unknown values and of escaping paths', async () => {
    const dir = tempDir('csv-bad');
    await writeImages(dir, 2);
    const attempt = (lines: string[]) => {
      writeFile(join(dir, 'labels.csv'), lines.join('\n'));
      return writeIndex(
        csvSource({ name: 'bad', root: dir, decoder: testDecoder }),
        join(dir, 'bad.sqlite'),
      );
    };
    const file = join(dir, 'labels.csv');
    await expect(attempt(['path,coarse', 'images/img0.jpg,a', 'images/img1.jpg,'])).rejects.toThrow(
      `${file} line 3 has no coarse label (column coarse)`,
    );
    await expect(
      attempt(['path,coarse,split', 'images/img0.jpg,a,train', 'images/img1.jpg,a,validation']),
    ).rejects.toThrow(`${file} line 3 has split "validation"; splits are train or test.`);
    await expect(attempt(['file,label', 'images/img0.jpg,a'])).rejects.toThrow(
      `${file} line 1 has no coarse label column`,
    );
    await expect(
      attempt(['path,coarse,fine', 'images/img0.jpg,a,x', 'images/img1.jpg,b,x']),
    ).rejects.toThrow(
      `${file} line 3 puts fine class x in coarse class b, but line 2 puts it in a`,
    );
    await expect(
      attempt(['path,coarse', 'images/img0.jpg,a', '../../etc/passwd,a']),
    ).rejects.toThrow(`${file} line 3 names the image path "../../etc/passwd"`);
    await expect(
      attempt(['path,coarse', 'images/img0.jpg,a', 'images/img1.jpg,a,extra']),
    ).rejects.toThrow(/labels\.csv is not valid CSV: .*line 3/);
    expect(() => csvSource({ root: dir })).toThrow('pass --name NAME');
    expect(() => csvSource({ root: dir, name: '../evil' })).toThrow(
      'Index name "../evil" is not usable',
    );
  });

  it('is indexed under --name, and the CLI prints its stats table; CLI errors name the line', async () => {
    const dir = tempDir('csv-cli');
    const out = tempDir('csv-cli-out');
    await writeImages(dir, 4);
    writeFile(
      join(dir, 'labels.csv'),
      [
        'path,coarse,fine,split',
        'images/img0.jpg,a,x,train',
        'images/img1.jpg,a,y,train',
        'images/img2.jpg,b,z,train',
        'images/img3.jpg,a,x,test',
      ].join('\n'),
    );
    const result = await buildDataset('csv', {
      root: dir,
      outDir: out,
      sourceOptions: { name: 'shop', decoder: testDecoder, shortSide: 8 },
    });
    expect(result.path).toBe(join(out, 'shop.sqlite'));

    const stats = cli(['stats', 'shop', '--out', out]);
    expect(stats.stderr).toBe('');
    expect(stats.stdout).toContain('train: 3 images, 3 fine / 2 coarse classes present');
    expect(stats.stdout).toMatch(
      /fine classes per coarse class \(2 coarse, 3 fine\):\ncoarse +0 +1\nfine +2 +1/,
    );

    writeFile(join(dir, 'broken.csv'), ['path,coarse', 'images/img0.jpg,a', ',b'].join('\n'));
    const bad = cli([
      'build',
      'csv',
      '--name',
      'shop2',
      '--csv',
      join(dir, 'broken.csv'),
      '--out',
      out,
    ]);
    expect(bad.status).toBe(1);
    expect(bad.stderr).toContain(
      `error: ${join(dir, 'broken.csv')} line 3 has no image path (column path)`,
    );
    const clash = cli(['build', 'csv', '--name', 'cars196', '--root', dir, '--out', out]);
    expect(clash.stderr).toContain('--name cars196 is the name of a built-in dataset');
  });

  it('derives a split that keeps every fine class with ≥ 2 images in test with ≥ 2, says so, and records --image-size (issue 12)', async () => {
    const dir = tempDir('csv-split');
    // Fine class sizes 1, 2, 3, 5, 12, 15 (38 images) in two coarse classes.
    const sizes = [1, 2, 3, 5, 12, 15];
    const rows = ['path,coarse,fine'];
    let n = 0;
    sizes.forEach((size, f) => {
      for (let k = 0; k < size; k++) rows.push(`images/img${n++}.jpg,${f < 3 ? 'a' : 'b'},f${f}`);
    });
    await writeImages(dir, n);
    writeFile(join(dir, 'labels.csv'), `${rows.join('\n')}\n`);
    const out = join(tempDir('csv-split-out'), 'shop.sqlite');
    const source = csvSource({ name: 'shop', root: dir, decoder: testDecoder, shortSide: 8 });
    const result = await writeIndex(source, out);
    // max(2, round(0.2·n)), all of a 2-image class, none of a 1-image class.
    const expected = [0, 2, 2, 2, 2, 3];
    const test = openIndex(out, 'test');
    const fine = Array.from(test.fineLabels());
    expect(sizes.map((_, f) => fine.filter((x) => x === f).length)).toEqual(expected);
    expect(result.counts).toEqual({ train: 38 - 11, test: 11 });
    expect(result.notes).toEqual([
      'split by fine class (no split column; seed 0): 11 of 38 images (28.9%) in test — every one of the 5 fine classes with ≥ 2 images has max(2, 20%) of them in test (1 small class entirely in test); 1 fine class with a single image stays in train',
      'the stored copies (short side 8) are smaller than the 224-pixel training crops, so training will upsample them; pass --short-side 224 or more, or a smaller --image-size',
    ]);
    // The training crop size is in the index for the recipe: 224 by default for photographs.
    expect(test.imageSize).toBe(224);
    test.close();
    expect(datasetStats(out).imageSize).toBe(224);
    const sized = csvSource({ name: 'shop', root: dir, decoder: testDecoder, imageSize: 96 });
    expect(sized.config).toMatchObject({ imageSize: 96, shortSide: 256 });
    await writeIndex(sized, out);
    expect(datasetStats(out).imageSize).toBe(96);
    expect(() => csvSource({ name: 'shop', root: dir, imageSize: 5 })).toThrow(
      '--image-size 5 is not usable; give the side of the training crops in pixels, an integer between 8 and 4096 (default 224).',
    );

    // With a split column nothing moves, but a class with one test image is pointed out.
    writeFile(
      join(dir, 'given.csv'),
      'path,coarse,fine,split\nimages/img0.jpg,a,x,train\nimages/img1.jpg,a,x,test\nimages/img2.jpg,a,y,test\nimages/img3.jpg,a,y,test\n',
    );
    const given = await writeIndex(
      csvSource({
        name: 'given',
        root: dir,
        csvFile: join(dir, 'given.csv'),
        decoder: testDecoder,
        shortSide: 8,
        imageSize: 8,
      }),
      join(tempDir('csv-given'), 'given.sqlite'),
    );
    expect(given.notes).toEqual([
      'split from the split column: 3 of 4 images in test, 2 fine classes in test; 1 of them with a single test image, which fine-label retrieval can never find (give them a second test image)',
    ]);
  });

  it('refuses to derive a split that would leave nothing to train on', async () => {
    const dir = tempDir('csv-tiny');
    await writeImages(dir, 4);
    writeFile(
      join(dir, 'labels.csv'),
      'path,coarse,fine\nimages/img0.jpg,a,x\nimages/img1.jpg,a,x\nimages/img2.jpg,a,y\nimages/img3.jpg,a,y\n',
    );
    await expect(
      writeIndex(
        csvSource({ name: 'tiny', root: dir, decoder: testDecoder, shortSide: 8 }),
        join(dir, 't.sqlite'),
      ),
    ).rejects.toThrow(/leaves nothing to train on; add a split column \(train\/test\) to the CSV/);
  });

  it('CLI: --allow-symlinks, --image-size, the split sentence and what changed since the last build', async () => {
    const dir = tempDir('csv-cli-flags');
    const disk = tempDir('csv-cli-disk'); // the images live "on another disk"
    const jpeg = await jpegBytes(9, 9, [10, 200, 10]);
    const rows = ['path,coarse,fine'];
    for (let i = 0; i < 6; i++) {
      writeFile(join(disk, 'photos', `p${i}.jpg`), jpeg);
      rows.push(`photos/p${i}.jpg,${i < 4 ? 'a' : 'b'},${i < 4 ? 'x' : 'y'}`);
    }
    symlinkSync(join(disk, 'photos'), join(dir, 'photos'));
    writeFile(join(dir, 'labels.csv'), `${rows.join('\n')}\n`);
    const out = tempDir('csv-cli-flags-out');
    const args = [
      'build',
      'csv',
      '--name',
      'linked',
      '--root',
      dir,
      '--out',
      out,
      '--short-side',
      '8',
    ];
    const refused = cli(args);
    expect(refused.status).toBe(1);
    expect(refused.stderr).toMatch(
      /leads through a symlink to .*photos\/p0\.jpg, outside the dataset root .*pass --allow-symlinks/,
    );
    const built = cli([...args, '--allow-symlinks', '--image-size', '64']);
    expect(built.stderr).not.toContain('error');
    expect(built.stdout).toContain(
      'linked: split by fine class (no split column; seed 0): 4 of 6 images (66.7%) in test — every one of the 2 fine classes with ≥ 2 images has max(2, 20%) of them in test (1 small class entirely in test)',
    );
    expect(built.stdout).toContain(
      'the stored copies (short side 8) are smaller than the 64-pixel training crops',
    );
    expect(datasetStats(join(out, 'linked.sqlite')).imageSize).toBe(64);
    writeFile(join(disk, 'photos', 'p5.jpg'), await jpegBytes(9, 9, [200, 10, 10]));
    const again = cli([...args, '--allow-symlinks', '--image-size', '64']);
    expect(again.stdout).toMatch(
      /linked: 1 image changed since the last build \(e\.g\. .*p5\.jpg\); 5 unchanged images reused\./,
    );
    expect(cli([...args, '--allow-symlinks', '--image-size', '64']).stdout).toContain(
      'is up to date (same metadata checksums, settings, builder version and image files; 2 train / 4 test images)',
    );
    const notCsv = cli(['build', 'cars196', '--image-size', '64', '--root', dir, '--out', out]);
    expect(notCsv.stderr).toContain('--image-size only applies to the csv dataset');
  });
});
