import { describe, expect, it } from 'vitest';
import { formatRecallMarkdown, formatRecallTable, type RecallTableRow } from '../src/index.js';

const rows: RecallTableRow[] = [
  { name: 'MaskCon', recalls: { 1: 0.65523, 2: 0.731, 5: 0.8 } },
  { name: 'SelfCon', recalls: { 1: 0.405, 2: 0.5 } },
];

describe('formatRecallTable', () => {
  it('prints fixed-width percentages with 2 decimals', () => {
    expect(formatRecallTable(rows, [1, 2, 5])).toBe(
      [
        'method     R@1    R@2    R@5',
        '-------  -----  -----  -----',
        'MaskCon  65.52  73.10  80.00',
        'SelfCon  40.50  50.00      -',
      ].join('\n'),
    );
  });

  it('widens columns for 100.00 and long names, and takes ks from the rows by default', () => {
    const table = formatRecallTable(
      [
        { name: 'a', recalls: { 10: 1, 1: 0.0001 } },
        { name: 'supfine-upper-bound', recalls: { 1: 0.7113 } },
      ],
      undefined,
      { nameHeader: 'run' },
    );
    expect(table).toBe(
      [
        'run' + ' '.repeat(20) + 'R@1    R@10',
        '-------------------  -----  ------',
        'a                     0.01  100.00',
        'supfine-upper-bound  71.13       -',
      ].join('\n'),
    );
  });

  it('has a Markdown variant', () => {
    const expected = [
      '| method | R@1 | R@2 | R@5 |',
      '| :--- | ---: | ---: | ---: |',
      '| MaskCon | 65.52 | 73.10 | 80.00 |',
      '| SelfCon | 40.50 | 50.00 | - |',
    ].join('\n');
    expect(formatRecallTable(rows, [1, 2, 5], { format: 'markdown' })).toBe(expected);
    expect(formatRecallMarkdown(rows)).toBe(expected);
    expect(formatRecallMarkdown([{ name: 'a|b', recalls: { 1: 0.5 } }])).toBe(
      ['| method | R@1 |', '| :--- | ---: |', '| a\\|b | 50.00 |'].join('\n'),
    );
  });
});
