import type { DatasetStats } from './read-index.js';

/** A plain-text table: columns as wide as their widest cell; text left-aligned, numbers right-aligned. */
export function textTable(
  header: readonly string[],
  rows: readonly (readonly (string | number)[])[],
): string[] {
  const cells = rows.map((row) => row.map(String));
  const widths = header.map((h, c) =>
    Math.max(h.length, ...cells.map((row) => row[c]?.length ?? 0)),
  );
  const numeric = header.map(
    (_, c) => rows.length > 0 && rows.every((row) => typeof row[c] === 'number'),
  );
  const line = (row: readonly string[]) =>
    row
      .map((cell, c) => (numeric[c] ? cell.padStart(widths[c]) : cell.padEnd(widths[c])))
      .join('  ')
      .trimEnd();
  return [line(header), ...cells.map(line)];
}

/** What `pnpm datasets:stats <name>` prints. */
export function formatStats(s: DatasetStats): string {
  const fmt = (xs: readonly number[]) => `[${xs.map((x) => x.toFixed(4)).join(', ')}]`;
  const lines = [
    `${s.name}  (${s.path})`,
    `built ${s.builtAt}, builder version ${s.builderVersion}, image shape ${s.imageShape ? s.imageShape.join('×') : 'varies'}`,
    `fine classes: ${s.fineClassNames.length}, coarse classes: ${s.coarseClassNames.length}`,
  ];
  for (const split of ['train', 'test'] as const) {
    const t = s.splits[split];
    lines.push(
      `${split.padEnd(5)}: ${t.images} images, ${t.fineClasses} fine / ${t.coarseClasses} coarse classes present`,
    );
  }
  lines.push('');
  lines.push(
    ...textTable(
      ['id', 'coarse class', 'fine classes', 'train images', 'test images'],
      s.coarseClassNames.map((name, c) => [
        c,
        name,
        s.fineClassesPerCoarseClass[c],
        s.splits.train.imagesPerCoarseClass[c],
        s.splits.test.imagesPerCoarseClass[c],
      ]),
    ),
  );
  lines.push('', ...finePerCoarseTable(s), '');
  lines.push(`train channel mean ${fmt(s.channelMean)}, std ${fmt(s.channelStd)}`);
  for (const src of s.sources)
    lines.push(`source ${src.name}  ${src.bytes} bytes  sha256 ${src.sha256}`);
  return lines.join('\n');
}

/** The number of fine classes in each coarse class, in the form of the paper's Tables 2 and 3. */
function finePerCoarseTable(s: DatasetStats): string[] {
  const counts = s.fineClassesPerCoarseClass;
  const width =
    Math.max(3, ...counts.map((n) => String(n).length), String(counts.length - 1).length) + 1;
  const cells = (xs: readonly (string | number)[]) =>
    xs.map((x) => String(x).padStart(width)).join('');
  const total = counts.reduce((a, b) => a + b, 0);
  return [
    `fine classes per coarse class (${counts.length} coarse, ${total} fine):`,
    `coarse${cells(counts.map((_, c) => c))}`,
    `fine  ${cells(counts)}`,
  ];
}
