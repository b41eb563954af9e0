import { readFileSync } from 'node:fs';
import { parse } from 'csv-parse/sync';
import { DatasetError } from '../errors.js';

/** A parsed CSV/TSV row with the 1-based line it ends on (for error messages). */
export interface CsvRow {
  readonly line: number;
  readonly fields: readonly string[];
}

/**
 * Read a whole CSV/TSV file into rows (csv-parse; quotes, BOM and CRLF handled; blank lines
 * skipped; fields trimmed). The delimiter is a tab for `.tsv`/`.tab` files and for files whose
 * first line has a tab but no comma, else a comma.
 */
export function readCsvRows(file: string, options: { relaxColumnCount?: boolean } = {}): CsvRow[] {
  let text: string;
  try {
    text = readFileSync(file, 'utf8');
  } catch (error) {
    throw new DatasetError(`Cannot read ${file} (${(error as Error).message}).`);
  }
  const firstLine = text.slice(0, text.indexOf('\n') === -1 ? undefined : text.indexOf('\n'));
  const tab = /\.(tsv|tab)$/i.test(file) || (firstLine.includes('\t') && !firstLine.includes(','));
  try {
    const records = parse(text, {
      bom: true,
      delimiter: tab ? '\t' : ',',
      skip_empty_lines: true,
      relax_column_count: options.relaxColumnCount ?? false,
      trim: true,
      info: true,
    }) as unknown as { info: { lines: number }; record: string[] }[];
    return records.map(({ info, record }) => ({ line: info.lines, fields: record }));
  } catch (error) {
    throw new DatasetError(
      `${file} is not valid ${tab ? 'TSV' : 'CSV'}: ${(error as Error).message}.`,
    );
  }
}
