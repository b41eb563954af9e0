import { join } from 'node:path';
import { writeIndex } from '@maskcon/datasets';

export interface SyntheticIndexOptions {
  /** Side of the stored square images (px); recorded as the index's image size. */
  size: number;
  /** 3 (RGB, the default) or 1 (grey). */
  channels?: number;
  /** Coarse classes; there are 5 fine classes per coarse class. */
  classes: number;
  /** Images in the train and test splits. */
  train: number;
  test: number;
  /** Seed of the pixel values. */
  seed?: number;
}

/**
 * A SQLite index of seeded random-texture images, for timing the training step (`pnpm bench
 * train`, `pnpm train --dry-run`): the cost of a step does not depend on the pixel values. The
 * index records its image size, so a dataset without a recipe reads it like a user CSV index.
 * Written as `<dir>/synthetic.sqlite`; returns its path.
 */
export async function buildSyntheticIndex(
  dir: string,
  { size, channels = 3, classes, train, test, seed = 12345 }: SyntheticIndexOptions,
): Promise<string> {
  const fine = classes * 5;
  let s = seed >>> 0;
  const rnd = (): number => (s = (Math.imul(s, 1664525) + 1013904223) >>> 0) >>> 24;
  const images = (n: number) =>
    Array.from({ length: n }, (_, i) => {
      const data = new Uint8Array(size * size * channels);
      for (let j = 0; j < data.length; j++) data[j] = rnd();
      return {
        fine: i % fine,
        coarse: (i % fine) % classes,
        image: { data, height: size, width: size, channels },
      };
    });
  const res = await writeIndex(
    {
      name: 'synthetic',
      builderVersion: '1',
      imageSize: size,
      fineClassNames: Array.from({ length: fine }, (_, i) => `f${i}`),
      coarseClassNames: Array.from({ length: classes }, (_, i) => `c${i}`),
      sourceFiles: [],
      readSplit: (split) => ({ records: images(split === 'train' ? train : test) }),
    },
    join(dir, 'synthetic.sqlite'),
  );
  return res.path;
}
