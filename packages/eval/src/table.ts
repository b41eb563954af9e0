import type { RecallResult } from './recall.js';

export interface RecallTableRow {
  /** Shown in the first column: a method, run id or checkpoint. */
  name: string;
  recalls: RecallResult;
}

export interface RecallTableOptions {
  /** `'text'` (default): fixed-width columns for a terminal; `'markdown'`: a GitHub table. */
  format?: 'text' | 'markdown';
  /** Header of the first column (default `'method'`). */
  nameHeader?: string;
}

/**
 * Formats Recall@K results as a table, one row per entry, one column per K, values as
 * percentages with 2 decimals (0.65523 → `65.52`). A K missing from a row prints as `-`.
 * ks defaults to every K present in any row, ascending. No trailing newline.
 *
 * ```text
 * method     R@1    R@2
 * -------  -----  -----
 * MaskCon  65.52  73.10
 * ```
 */
export function formatRecallTable(
  rows: readonly RecallTableRow[],
  ks?: readonly number[],
  opts: RecallTableOptions = {},
): string {
  const columns = ks ?? collectKs(rows);
  const nameHeader = opts.nameHeader ?? 'method';
  const header = [nameHeader, ...columns.map((k) => `R@${k}`)];
  const body = rows.map((row) => [row.name, ...columns.map((k) => formatPercent(row.recalls[k]))]);
  return opts.format === 'markdown' ? markdownTable(header, body) : textTable(header, body);
}

/** `formatRecallTable(rows, ks, { format: 'markdown' })`. */
export function formatRecallMarkdown(
  rows: readonly RecallTableRow[],
  ks?: readonly number[],
  nameHeader?: string,
): string {
  return formatRecallTable(rows, ks, { format: 'markdown', nameHeader });
}

function collectKs(rows: readonly RecallTableRow[]): number[] {
  const set = new Set<number>();
  for (const row of rows) for (const key of Object.keys(row.recalls)) set.add(Number(key));
  return [...set].sort((a, b) => a - b);
}

function formatPercent(recall: number | undefined): string {
  if (recall === undefined || Number.isNaN(recall)) return '-';
  return (recall * 100).toFixed(2);
}

function textTable(header: string[], body: string[][]): string {
  // every row has the header's cells
  const widths = header.map((h, c) => Math.max(h.length, ...body.map((r) => r[c]?.length ?? 0)));
  const line = (cells: string[]): string =>
    cells
      .map((cell, c) => (c === 0 ? cell.padEnd(widths[c] ?? 0) : cell.padStart(widths[c] ?? 0)))
      .join('  ')
      .trimEnd();
  const rule = widths.map((w) => '-'.repeat(w)).join('  ');
  return [line(header), rule, ...body.map(line)].join('\n');
}

function markdownTable(header: string[], body: string[][]): string {
  const escapeCell = (cell: string): string => cell.replace(/\|/g, '\\|');
  const line = (cells: string[]): string => `| ${cells.map(escapeCell).join(' | ')} |`;
  const align = `|${header.map((_, c) => (c === 0 ? ' :--- ' : ' ---: ')).join('|')}|`;
  return [line(header), align, ...body.map(line)].join('\n');
}
