import Database from 'better-sqlite3';
import { existsSync } from 'node:fs';
import { basename, resolve } from 'node:path';
import { DatasetError } from './errors.js';
import { INDEX_FORMAT_VERSION, META } from './index-format.js';
import type { CoarseFineDataset, ImageU8, Split } from './types.js';

export interface OpenIndexOptions {
  /**
   * Load the split's pixels into one contiguous buffer when they total at most this many
   * bytes (default 512 MiB); larger splits are read row by row from SQLite.
   */
  readonly preloadMaxBytes?: number;
}

const DEFAULT_PRELOAD_MAX_BYTES = 512 * 1024 * 1024;

/** What to tell the user when `path` is not a usable index. */
function buildHint(path: string): string {
  const name = basename(path).replace(/\.sqlite$/, '');
  return `run \`pnpm datasets:build ${name}\` first`;
}

interface IndexHeader {
  readonly name: string;
  readonly meta: ReadonlyMap<string, string>;
  readonly fineClassNames: string[];
  readonly coarseClassNames: string[];
}

/** Open an index read-only and check it is one of ours; errors are sentences naming the file. */
function openChecked(path: string): { db: Database.Database; header: IndexHeader } {
  const full = resolve(path);
  if (!existsSync(full)) {
    throw new DatasetError(`Dataset index ${full} does not exist; ${buildHint(full)}.`);
  }
  let db: Database.Database | undefined;
  try {
    db = new Database(full, { readonly: true, fileMustExist: true });
    const rows = db.prepare('SELECT key, value FROM meta').all() as {
      key: string;
      value: string;
    }[];
    const meta = new Map(rows.map((r) => [r.key, r.value]));
    const version = meta.get(META.formatVersion);
    const tables = new Set(
      (
        db.prepare("SELECT name FROM sqlite_master WHERE type = 'table'").all() as {
          name: string;
        }[]
      ).map((r) => r.name),
    );
    const missing = REQUIRED_TABLES.filter((t) => !tables.has(t));
    if (missing.length > 0 && version === INDEX_FORMAT_VERSION) {
      throw new DatasetError(
        `Dataset index ${full} has no ${missing.map((t) => `\`${t}\``).join(', ')} table${missing.length === 1 ? '' : 's'}; it is incomplete or was altered — ${buildHint(full)} (add --force to rebuild).`,
      );
    }
    if (version !== INDEX_FORMAT_VERSION) {
      const name = basename(full).replace(/\.sqlite$/, '');
      throw new DatasetError(
        `Dataset index ${full} was written in index format ${version ?? '(none)'}, but this version of @maskcon/datasets reads format ${INDEX_FORMAT_VERSION}; rebuild it with \`pnpm datasets:build ${name} --force\`.`,
      );
    }
    const classRows = db
      .prepare('SELECT level, id, name FROM classes ORDER BY level, id')
      .all() as {
      level: 'fine' | 'coarse';
      id: number;
      name: string;
    }[];
    const fineClassNames = classRows.filter((r) => r.level === 'fine').map((r) => r.name);
    const coarseClassNames = classRows.filter((r) => r.level === 'coarse').map((r) => r.name);
    checkLabelsInRange(db, full, fineClassNames.length, coarseClassNames.length);
    const name = meta.get(META.dataset) ?? basename(full);
    return { db, header: { name, meta, fineClassNames, coarseClassNames } };
  } catch (error) {
    db?.close();
    if (error instanceof DatasetError) throw error;
    throw new DatasetError(
      `${full} is not a MaskCon dataset index (${(error as Error).message}); ${buildHint(full)}.`,
    );
  }
}

/** Tables every index has (`meta` is read first, so its absence is reported as "not an index"). */
const REQUIRED_TABLES = ['classes', 'images', 'sources'] as const;

/**
 * Refuse an index whose labels fall outside its classes table, naming the first bad row: a
 * trainer would otherwise index past its class lists (or train on −1) without a word. One
 * scan of the covering index `images_labels`, no pixel pages.
 */
function checkLabelsInRange(
  db: Database.Database,
  path: string,
  fineCount: number,
  coarseCount: number,
): void {
  const bad = db
    .prepare(
      `SELECT split, idx, fine, coarse FROM images
       WHERE fine < 0 OR fine >= ? OR coarse < 0 OR coarse >= ? OR fine != CAST(fine AS INTEGER) OR coarse != CAST(coarse AS INTEGER)
       ORDER BY split DESC, idx LIMIT 1`,
    )
    .get(fineCount, coarseCount) as
    | { split: Split; idx: number; fine: number; coarse: number }
    | undefined;
  if (!bad) return;
  const [level, label, count] =
    Number.isInteger(bad.fine) && bad.fine >= 0 && bad.fine < fineCount
      ? (['coarse', bad.coarse, coarseCount] as const)
      : (['fine', bad.fine, fineCount] as const);
  throw new DatasetError(
    `Dataset index ${path} is corrupt: ${bad.split} image ${bad.idx} has ${level} label ${label}, but the index lists ${count} ${level} class${count === 1 ? '' : 'es'} (ids 0..${count - 1}); ${buildHint(path)} (add --force to rebuild).`,
  );
}

/** `meta.image_size` as a number, or undefined when the index does not record one. */
function recordedImageSize(meta: ReadonlyMap<string, string>): number | undefined {
  const value = Number(meta.get(META.imageSize));
  return Number.isInteger(value) && value > 0 ? value : undefined;
}

function jsonNumbers(meta: ReadonlyMap<string, string>, key: string, path: string): number[] {
  const parsed = JSON.parse(meta.get(key) ?? 'null') as unknown;
  if (!Array.isArray(parsed) || !parsed.every((v) => typeof v === 'number')) {
    throw new DatasetError(
      `Dataset index ${path} lacks the meta entry ${key}; ${buildHint(path)} (add --force to rebuild).`,
    );
  }
  return parsed as number[];
}

/** Open one split of a dataset index for reading. */
export function openIndex(
  path: string,
  split: Split,
  options: OpenIndexOptions = {},
): CoarseFineDataset {
  if (split !== 'train' && split !== 'test') {
    throw new DatasetError(`Unknown split '${String(split)}'; use 'train' or 'test'.`);
  }
  const { db, header } = openChecked(path);
  try {
    return new IndexedSplit(
      db,
      header,
      resolve(path),
      split,
      options.preloadMaxBytes ?? DEFAULT_PRELOAD_MAX_BYTES,
    );
  } catch (error) {
    db.close();
    throw error;
  }
}

type PixelRow = [height: number, width: number, channels: number, pixels: Buffer];

/** Indices per `idx IN (…)` query when `images()` reads from SQLite. */
const BATCH_QUERY_SIZE = 64;

class IndexedSplit implements CoarseFineDataset {
  readonly name: string;
  readonly size: number;
  readonly fineClassNames: readonly string[];
  readonly coarseClassNames: readonly string[];
  readonly channelMean: readonly number[];
  readonly channelStd: readonly number[];
  readonly imageSize: number | undefined;
  private readonly fine: Int32Array;
  private readonly coarse: Int32Array;
  /** Preloaded mode: all pixels of the split back to back, image i at offsets[i]. */
  private readonly pixels: Uint8Array | undefined;
  private readonly offsets: Float64Array | undefined;
  private readonly shapes: Int32Array | undefined; // [h, w, c] per image
  private readonly rowQuery: Database.Statement<[Split, number], PixelRow>;
  private readonly sourcePathQuery: Database.Statement<[Split, number], [string | null]>;
  private readonly batchQuery: Database.Statement<(string | number)[], [number, ...PixelRow]>;
  private closed = false;

  constructor(
    private readonly db: Database.Database,
    header: IndexHeader,
    private readonly path: string,
    readonly split: Split,
    preloadMaxBytes: number,
  ) {
    this.name = header.name;
    this.fineClassNames = Object.freeze(header.fineClassNames);
    this.coarseClassNames = Object.freeze(header.coarseClassNames);
    this.channelMean = Object.freeze(jsonNumbers(header.meta, META.channelMean, path));
    this.channelStd = Object.freeze(jsonNumbers(header.meta, META.channelStd, path));
    this.imageSize = recordedImageSize(header.meta);

    const summary = db
      .prepare(
        'SELECT COUNT(*) AS n, MIN(idx) AS lo, MAX(idx) AS hi, SUM(height * width * channels) AS bytes FROM images WHERE split = ?',
      )
      .get(split) as { n: number; lo: number | null; hi: number | null; bytes: number | null };
    this.size = summary.n;
    if (summary.n > 0 && (summary.lo !== 0 || summary.hi !== summary.n - 1)) {
      throw new DatasetError(
        `Dataset index ${path} has gaps in the ${split} image numbering; ${buildHint(path)} (add --force to rebuild).`,
      );
    }

    this.fine = new Int32Array(this.size);
    this.coarse = new Int32Array(this.size);
    const labels = db
      .prepare('SELECT fine, coarse FROM images WHERE split = ? ORDER BY idx')
      .raw(true);
    let i = 0;
    for (const row of labels.iterate(split) as IterableIterator<[number, number]>) {
      this.fine[i] = row[0];
      this.coarse[i] = row[1];
      i += 1;
    }

    this.rowQuery = db
      .prepare('SELECT height, width, channels, pixels FROM images WHERE split = ? AND idx = ?')
      .raw(true) as unknown as Database.Statement<[Split, number], PixelRow>;

    this.batchQuery = db
      .prepare(
        `SELECT idx, height, width, channels, pixels FROM images WHERE split = ? AND idx IN (${new Array(BATCH_QUERY_SIZE).fill('?').join(', ')})`,
      )
      .raw(true) as unknown as Database.Statement<(string | number)[], [number, ...PixelRow]>;
    this.sourcePathQuery = db
      .prepare('SELECT source_path FROM images WHERE split = ? AND idx = ?')
      .raw(true) as unknown as Database.Statement<[Split, number], [string | null]>;

    const totalBytes = summary.bytes ?? 0;
    if (totalBytes <= preloadMaxBytes) {
      this.pixels = new Uint8Array(totalBytes);
      this.offsets = new Float64Array(this.size);
      this.shapes = new Int32Array(this.size * 3);
      const rows = db
        .prepare('SELECT height, width, channels, pixels FROM images WHERE split = ? ORDER BY idx')
        .raw(true);
      let offset = 0;
      let j = 0;
      for (const row of rows.iterate(split) as IterableIterator<PixelRow>) {
        const [h, w, c, blob] = row;
        this.checkBlob(j, h, w, c, blob);
        this.pixels.set(blob, offset);
        this.offsets[j] = offset;
        this.shapes[3 * j] = h;
        this.shapes[3 * j + 1] = w;
        this.shapes[3 * j + 2] = c;
        offset += blob.length;
        j += 1;
      }
    }
  }

  fineLabels(): Int32Array {
    return this.fine.slice();
  }

  coarseLabels(): Int32Array {
    return this.coarse.slice();
  }

  image(i: number): ImageU8 {
    this.checkIndex(i);
    if (this.pixels && this.offsets && this.shapes) {
      const height = this.shapes[3 * i];
      const width = this.shapes[3 * i + 1];
      const channels = this.shapes[3 * i + 2];
      const start = this.offsets[i];
      return {
        data: this.pixels.subarray(start, start + height * width * channels),
        height,
        width,
        channels,
      };
    }
    const row = this.rowQuery.get(this.split, i);
    if (!row)
      throw new DatasetError(
        `Dataset index ${this.path} has no ${this.split} image ${i}; ${buildHint(this.path)}.`,
      );
    const [height, width, channels, blob] = row;
    this.checkBlob(i, height, width, channels, blob);
    return {
      data: new Uint8Array(blob.buffer, blob.byteOffset, blob.byteLength),
      height,
      width,
      channels,
    };
  }

  images(indices: ArrayLike<number>): ImageU8[] {
    const out: ImageU8[] = new Array(indices.length);
    if (this.pixels || indices.length < 8) {
      for (let k = 0; k < indices.length; k++) out[k] = this.image(indices[k]);
      return out;
    }
    // From SQLite: one `idx IN (…)` query per BATCH_QUERY_SIZE indices costs about half as
    // much per image as one query each. Short chunks are padded with a repeated index.
    for (let k = 0; k < indices.length; k++) this.checkIndex(indices[k]);
    const args: (string | number)[] = new Array(BATCH_QUERY_SIZE + 1);
    args[0] = this.split;
    for (let from = 0; from < indices.length; from += BATCH_QUERY_SIZE) {
      const to = Math.min(indices.length, from + BATCH_QUERY_SIZE);
      for (let k = 0; k < BATCH_QUERY_SIZE; k++) args[k + 1] = indices[Math.min(from + k, to - 1)];
      const found = new Map<number, ImageU8>();
      for (const [idx, height, width, channels, blob] of this.batchQuery.all(...args)) {
        this.checkBlob(idx, height, width, channels, blob);
        found.set(idx, {
          data: new Uint8Array(blob.buffer, blob.byteOffset, blob.byteLength),
          height,
          width,
          channels,
        });
      }
      for (let k = from; k < to; k++) {
        const image = found.get(indices[k]);
        if (!image)
          throw new DatasetError(
            `Dataset index ${this.path} has no ${this.split} image ${indices[k]}; ${buildHint(this.path)}.`,
          );
        out[k] = image; // a repeated index gets the same image object
      }
    }
    return out;
  }

  /** The file image `i` was decoded from (JPEG datasets), or null (raw-pixel datasets). Read from SQLite on each call. */
  sourcePath(i: number): string | null {
    this.checkIndex(i);
    const row = this.sourcePathQuery.get(this.split, i);
    if (!row)
      throw new DatasetError(
        `Dataset index ${this.path} has no ${this.split} image ${i}; ${buildHint(this.path)}.`,
      );
    return row[0];
  }

  close(): void {
    if (this.closed) return;
    this.closed = true;
    this.db.close();
  }

  private checkIndex(i: number): void {
    if (this.closed)
      throw new DatasetError(
        `The ${this.name} ${this.split} reader was closed; open the index again.`,
      );
    if (!Number.isInteger(i) || i < 0 || i >= this.size) {
      throw new DatasetError(
        `Image index ${i} is out of range for ${this.name} ${this.split} (0..${this.size - 1}).`,
      );
    }
  }

  private checkBlob(i: number, h: number, w: number, c: number, blob: Buffer): void {
    if (blob.length !== h * w * c) {
      throw new DatasetError(
        `Dataset index ${this.path} is corrupt: ${this.split} image ${i} has ${blob.length} pixel bytes for shape ${h}×${w}×${c}; ${buildHint(this.path)} (add --force to rebuild).`,
      );
    }
  }
}

export interface SplitStats {
  readonly images: number;
  /** Distinct fine / coarse labels that occur in this split. */
  readonly fineClasses: number;
  readonly coarseClasses: number;
  /** Images per coarse class, indexed by coarse id. */
  readonly imagesPerCoarseClass: number[];
}

export interface DatasetStats {
  readonly name: string;
  readonly path: string;
  readonly builtAt: string;
  readonly builderVersion: string;
  readonly splits: Readonly<Record<Split, SplitStats>>;
  readonly fineClassNames: readonly string[];
  readonly coarseClassNames: readonly string[];
  /** Distinct fine classes per coarse class over both splits, indexed by coarse id. */
  readonly fineClassesPerCoarseClass: number[];
  readonly channelMean: readonly number[];
  readonly channelStd: readonly number[];
  /** [height, width, channels] when every image has that shape, else null. */
  readonly imageShape: readonly [number, number, number] | null;
  /** Training crop side recorded at build time (csv `--image-size`), else undefined. */
  readonly imageSize?: number;
  readonly sources: readonly { name: string; path: string; bytes: number; sha256: string }[];
}

/** Summary of an index, for `pnpm datasets:stats` and for checking a build against the paper's tables. */
export function datasetStats(path: string): DatasetStats {
  const { db, header } = openChecked(path);
  try {
    const full = resolve(path);
    const { meta } = header;
    const coarseCount = header.coarseClassNames.length;
    const splitStats = (split: Split): SplitStats => {
      const totals = db
        .prepare(
          'SELECT COUNT(*) AS images, COUNT(DISTINCT fine) AS fine, COUNT(DISTINCT coarse) AS coarse FROM images WHERE split = ?',
        )
        .get(split) as { images: number; fine: number; coarse: number };
      const perCoarse = new Array<number>(coarseCount).fill(0);
      const rows = db
        .prepare('SELECT coarse, COUNT(*) AS n FROM images WHERE split = ? GROUP BY coarse')
        .all(split) as {
        coarse: number;
        n: number;
      }[];
      for (const r of rows) perCoarse[r.coarse] = r.n;
      return {
        images: totals.images,
        fineClasses: totals.fine,
        coarseClasses: totals.coarse,
        imagesPerCoarseClass: perCoarse,
      };
    };
    const finePerCoarse = new Array<number>(coarseCount).fill(0);
    const pairs = db
      .prepare('SELECT coarse, COUNT(DISTINCT fine) AS n FROM images GROUP BY coarse')
      .all() as {
      coarse: number;
      n: number;
    }[];
    for (const r of pairs) finePerCoarse[r.coarse] = r.n;
    const sources = db
      .prepare('SELECT name, path, bytes, sha256 FROM sources ORDER BY name')
      .all() as DatasetStats['sources'];
    return {
      name: header.name,
      path: full,
      builtAt: meta.get(META.builtAt) ?? '',
      builderVersion: meta.get(META.builderVersion) ?? '',
      splits: { train: splitStats('train'), test: splitStats('test') },
      fineClassNames: header.fineClassNames,
      coarseClassNames: header.coarseClassNames,
      fineClassesPerCoarseClass: finePerCoarse,
      channelMean: jsonNumbers(meta, META.channelMean, full),
      channelStd: jsonNumbers(meta, META.channelStd, full),
      imageShape: JSON.parse(meta.get(META.imageShape) ?? 'null') as
        | [number, number, number]
        | null,
      sources,
      imageSize: recordedImageSize(meta),
    };
  } finally {
    db.close();
  }
}
