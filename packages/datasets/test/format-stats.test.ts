import { describe, expect, it } from 'vitest';
import { formatStats, IMAGENET_GROUP_NAMES, textTable, type DatasetStats } from '../src/index.js';

const TABLE_3 = [61, 123, 59, 95, 60, 130, 70, 53, 105, 71, 93, 80];

function imagenetLikeStats(): DatasetStats {
  const split = (scale: number) => ({
    images: TABLE_3.reduce((a, n) => a + n * scale, 0),
    fineClasses: 1000,
    coarseClasses: 12,
    imagesPerCoarseClass: TABLE_3.map((n) => n * scale),
  });
  return {
    name: 'imagenet32',
    path: '/data/imagenet32.sqlite',
    builtAt: '2026-01-01T00:00:00.000Z',
    builderVersion: '1',
    splits: { train: split(1281), test: split(50) },
    fineClassNames: Array.from({ length: 1000 }, (_, i) => `c${i}`),
    coarseClassNames: IMAGENET_GROUP_NAMES,
    fineClassesPerCoarseClass: TABLE_3,
    channelMean: [0.48, 0.45, 0.4],
    channelStd: [0.28, 0.27, 0.28],
    imageShape: [32, 32, 3],
    sources: [],
  };
}

describe('stats table', () => {
  it('sizes columns from their content, so a long coarse name keeps every column aligned', () => {
    const text = formatStats(imagenetLikeStats());
    const lines = text.split('\n');
    const head = lines.findIndex((l) => l.startsWith('id'));
    const table = lines.slice(head, head + 13);
    expect(table[0]).toBe(
      'id  coarse class                fine classes  train images  test images',
    );
    expect(table[5]).toBe(
      ' 4  Reptile/Aquatic vertebrate            60         76860         3000',
    );
    expect(table[12]).toBe(
      '11  Others                                80        102480         4000',
    );
    // Every row ends where the header ends: right-aligned numbers under their headings.
    expect(new Set(table.map((l) => l.length))).toEqual(new Set([table[0].length]));
    expect(text).toContain('fine classes per coarse class (12 coarse, 1000 fine):');
    expect(text).toContain('fine    61 123  59  95  60 130  70  53 105  71  93  80');
  });

  it('textTable left-aligns text and right-aligns numeric columns', () => {
    expect(
      textTable(
        ['name', 'n'],
        [
          ['a', 1],
          ['long name', 1234],
        ],
      ),
    ).toEqual(['name          n', 'a             1', 'long name  1234']);
  });
});
