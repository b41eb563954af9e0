import Database from 'better-sqlite3';
import {
  closeSync,
  existsSync,
  fsyncSync,
  mkdirSync,
  openSync,
  readdirSync,
  renameSync,
  rmSync,
} from 'node:fs';
import { basename, dirname, join, resolve } from 'node:path';
import { DatasetError } from './errors.js';
import { hashSourceFiles, type HashedSourceFile } from './hash.js';
import { INDEX_FORMAT_VERSION, INDEX_SCHEMA, META } from './index-format.js';
import { IndexWriterThread } from './index-writer.js';
import {
  MISSING,
  nothingChanged,
  surveyImageFiles,
  type ImageFileChanges,
  type ImageFileState,
  type StoredImageFile,
} from './image-inventory.js';
import type { DatasetRecord, DatasetSource, ProgressListener } from './source.js';
import type { ImageU8, Split } from './types.js';

export const SPLITS: readonly Split[] = ['train', 'test'];

export interface WriteIndexOptions {
  /** Rebuild even when the index is up to date. */
  readonly force?: boolean;
  readonly onProgress?: ProgressListener;
}

export interface WriteIndexResult {
  readonly path: string;
  /** True when an index built from identical inputs existed and was left untouched. */
  readonly upToDate: boolean;
  readonly counts: Readonly<Record<Split, number>>;
  /**
   * JPEG datasets with an earlier index that tracked its image files: what changed among them
   * (`describeImageChanges` words it). Undefined for other datasets and first builds.
   */
  readonly imageChanges?: ImageFileChanges;
  /** Images whose pixels were taken from the earlier index instead of being decoded again. */
  readonly reusedImages?: number;
  /** The source's notes (how it split, …), for the build output. */
  readonly notes?: readonly string[];
}

/**
 * SQLite page size of the index. 16 KiB pages hold five 32×32×3 rows where 4 KiB pages hold
 * one (a 3,072-byte blob plus its row header does not fit twice): the index is ~20% smaller
 * and builds faster.
 */
const PAGE_SIZE = 16384;

/** How often (in images) the writer reports progress; listeners throttle by time. */
const PROGRESS_EVERY = 1024;

/**
 * Build the SQLite index of `source` at `outPath`. The index is written in one transaction
 * to `<outPath>.tmp-<pid>`, fsynced and renamed into place, so readers never see a partial
 * index; on any error the temp file is removed and no index is left behind (an older index
 * at `outPath` stays as it was). Temp files of earlier builds that were killed are removed
 * first. Rows are inserted on a worker thread (`IndexWriterThread`) while this thread reads
 * the source. The file's bytes depend only on the inputs, apart from the `built_at` value.
 */
export async function writeIndex(
  source: DatasetSource,
  outPath: string,
  options: WriteIndexOptions = {},
): Promise<WriteIndexResult> {
  const path = resolve(outPath);
  const hashed = await hashSourceFiles(source, options.onProgress);
  const existing = readExistingBuild(path);
  const imagePaths = source.imageFiles?.paths();
  const survey = imagePaths
    ? await surveyImageFiles(imagePaths, existing?.images, options.onProgress)
    : undefined;
  const imageChanges = survey?.changes;

  if (!options.force && existing && sameInputs(existing, source, hashed)) {
    const imagesSame =
      !survey ||
      (imageChanges !== undefined && nothingChanged(imageChanges) && !imageChanges.touched);
    if (imagesSame)
      return {
        path,
        upToDate: true,
        counts: existing.counts,
        imageChanges,
        notes: source.notes?.(),
      };
  }

  makeIndexFolder(dirname(path));
  removeStaleTempFiles(path);
  const tmpPath = `${path}.tmp-${process.pid}`;
  removeFile(tmpPath);
  removeFile(`${tmpPath}-journal`);
  const writer = new IndexWriterThread(tmpPath, INDEX_SCHEMA, PAGE_SIZE);
  const removeTemp = () => {
    removeFile(tmpPath);
    removeFile(`${tmpPath}-journal`);
  };
  const releaseSignals = removeTempOnSignal(removeTemp);
  const previousPixels =
    survey && existing ? openPreviousPixels(path, existing, source) : undefined;
  try {
    const reuse = previousPixels?.reuse(survey?.states ?? []);
    const counts = await insertEverything(writer, source, hashed, options.onProgress, {
      reuse,
      states: survey?.states,
    });
    previousPixels?.close(); // before the rename replaces the file it reads
    fsyncPath(tmpPath);
    renameSync(tmpPath, path);
    fsyncDirectory(dirname(path));
    return {
      path,
      upToDate: false,
      counts,
      imageChanges,
      reusedImages: previousPixels ? previousPixels.reused : undefined,
      notes: source.notes?.(),
    };
  } catch (error) {
    await writer.abort();
    removeTemp();
    throw error;
  } finally {
    previousPixels?.close();
    releaseSignals();
  }
}

/**
 * The pixels of the index being replaced, for image files whose bytes did not change: only
 * when it was decoded with the same settings (decode key, builder and format version).
 */
function openPreviousPixels(path: string, existing: ExistingBuild, source: DatasetSource) {
  const { meta } = existing;
  if (
    !existing.images ||
    meta.get(META.dataset) !== source.name ||
    meta.get(META.formatVersion) !== INDEX_FORMAT_VERSION ||
    meta.get(META.builderVersion) !== source.builderVersion ||
    meta.get(META.imageDecode) !== source.imageFiles?.decodeKey
  )
    return undefined;
  let db: Database.Database;
  try {
    db = new Database(path, { readonly: true, fileMustExist: true });
  } catch {
    return undefined;
  }
  const row = db
    .prepare('SELECT height, width, channels, pixels FROM images WHERE split = ? AND idx = ?')
    .raw(true);
  const previous = existing.images;
  const state = {
    reused: 0,
    closed: false,
    reuse(states: readonly ImageFileState[]): (file: string) => ImageU8 | undefined {
      const same = new Set(
        states
          .filter((s) => {
            const before = previous.get(s.path);
            return (
              before !== undefined &&
              before.split !== null &&
              s.bytes !== MISSING &&
              s.bytes === before.bytes &&
              s.sha256 === before.sha256
            );
          })
          .map((s) => s.path),
      );
      return (file) => {
        if (state.closed || !same.has(file)) return undefined;
        const before = previous.get(file) as StoredImageFile;
        const found = row.get(before.split, before.idx) as
          | [number, number, number, Buffer]
          | undefined;
        if (!found || found[3].length !== found[0] * found[1] * found[2]) return undefined;
        state.reused += 1;
        const [height, width, channels, blob] = found;
        return { data: new Uint8Array(blob), height, width, channels };
      };
    },
    close() {
      if (state.closed) return;
      state.closed = true;
      db.close();
    },
  };
  return state;
}

const INTERRUPTS = ['SIGINT', 'SIGTERM', 'SIGHUP'] as const;

/**
 * While a build runs, Ctrl-C / SIGTERM / SIGHUP delete its temp file (up to gigabytes) before
 * the process goes. When nothing else listens for the signal, it is raised again with the
 * default action, so the process ends as a killed one would (exit status 128 + signal);
 * a caller with its own handler keeps control. Returns the function that removes the handlers.
 */
function removeTempOnSignal(removeTemp: () => void): () => void {
  const handler = (signal: NodeJS.Signals) => {
    removeTemp();
    release();
    if (process.listenerCount(signal) === 0) process.kill(process.pid, signal);
  };
  const release = () => {
    for (const signal of INTERRUPTS) process.removeListener(signal, handler);
  };
  for (const signal of INTERRUPTS) process.on(signal, handler);
  return release;
}

async function insertEverything(
  writer: IndexWriterThread,
  source: DatasetSource,
  hashed: readonly HashedSourceFile[],
  onProgress: ProgressListener | undefined,
  images: {
    reuse?: (path: string) => ImageU8 | undefined;
    states?: readonly ImageFileState[];
  },
): Promise<Record<Split, number>> {
  /** Where each image file's pixels went, for `source_images`. */
  const placed = new Map<string, { split: Split; idx: number }>();
  // Class lists may be computed getters (ImageNet32 maps 1,000 classes): read them once.
  const fineClassNames = [...source.fineClassNames];
  const coarseClassNames = [...source.coarseClassNames];
  const classCounts = { fine: fineClassNames.length, coarse: coarseClassNames.length };
  const counts: Record<Split, number> = { train: 0, test: 0 };
  const shape = new ShapeTracker(source.name);
  let trainStats: ChannelStats | undefined;

  for (const split of SPLITS) {
    const { expectedCount, records } = await source.readSplit(split, { reuse: images.reuse });
    let idx = 0;
    onProgress?.({ phase: 'write', split, done: 0, total: expectedCount, unit: 'images' });
    for await (const record of records) {
      checkRecord(source.name, classCounts, split, idx, record);
      const { height, width, channels, data } = record.image;
      shape.see(height, width, channels, split, idx);
      if (split === 'train') {
        trainStats ??= new ChannelStats(channels);
        trainStats.add(data);
      }
      writer.add(
        split,
        idx,
        record.fine,
        record.coarse,
        height,
        width,
        channels,
        data,
        record.sourcePath ?? null,
      );
      if (writer.congested) await writer.ready();
      if (record.sourcePath !== undefined) placed.set(record.sourcePath, { split, idx });
      idx += 1;
      if (idx % PROGRESS_EVERY === 0) {
        onProgress?.({ phase: 'write', split, done: idx, total: expectedCount, unit: 'images' });
      }
    }
    if (expectedCount !== undefined && idx !== expectedCount) {
      throw new DatasetError(
        `Dataset ${source.name} announced ${expectedCount} ${split} images but produced ${idx}; the source files are inconsistent.`,
      );
    }
    onProgress?.({ phase: 'write', split, done: idx, total: expectedCount, unit: 'images' });
    counts[split] = idx;
  }

  if (!trainStats) {
    throw new DatasetError(
      `Dataset ${source.name} has no train images; an index needs at least one to compute the normalisation statistics.`,
    );
  }
  const { mean, std } = trainStats.result();
  await writer.finish({
    meta: [
      [META.dataset, source.name],
      [META.formatVersion, INDEX_FORMAT_VERSION],
      [META.builderVersion, source.builderVersion],
      [META.sourceConfig, JSON.stringify(source.config ?? {})],
      [META.channelMean, JSON.stringify(mean)],
      [META.channelStd, JSON.stringify(std)],
      [META.imageShape, JSON.stringify(shape.uniform())],
      [META.counts, JSON.stringify(counts)],
      [META.builtAt, new Date().toISOString()],
      ...(source.imageFiles
        ? [[META.imageDecode, source.imageFiles.decodeKey] as [string, string]]
        : []),
      ...(source.imageSize !== undefined
        ? [[META.imageSize, String(source.imageSize)] as [string, string]]
        : []),
    ],
    sources: hashed.map((file) => ({
      name: file.name,
      path: resolve(file.path),
      bytes: file.bytes,
      sha256: file.sha256,
    })),
    fineClassNames,
    coarseClassNames,
    sourceImages: images.states?.map((state) => {
      const where = placed.get(state.path);
      return { ...state, split: where?.split ?? null, idx: where?.idx ?? null };
    }),
  });
  return counts;
}

function checkRecord(
  dataset: string,
  classCounts: { fine: number; coarse: number },
  split: Split,
  idx: number,
  record: DatasetRecord,
): void {
  const where = `${dataset} ${split} image ${idx}`;
  const { fine, coarse, image, sourcePath } = record;
  if (sourcePath !== undefined && (typeof sourcePath !== 'string' || sourcePath === '')) {
    throw new DatasetError(
      `${where} has source path ${JSON.stringify(sourcePath)}; it must be a non-empty string when given.`,
    );
  }
  if (!Number.isInteger(fine) || fine < 0 || fine >= classCounts.fine) {
    throw new DatasetError(
      `${where} has fine label ${fine}, outside 0..${classCounts.fine - 1}; the source files are corrupt or the builder is wrong.`,
    );
  }
  if (!Number.isInteger(coarse) || coarse < 0 || coarse >= classCounts.coarse) {
    throw new DatasetError(
      `${where} has coarse label ${coarse}, outside 0..${classCounts.coarse - 1}; the source files are corrupt or the builder is wrong.`,
    );
  }
  const { height, width, channels, data } = image;
  for (const [dim, value] of [
    ['height', height],
    ['width', width],
    ['channels', channels],
  ] as const) {
    if (!Number.isInteger(value) || value <= 0) {
      throw new DatasetError(`${where} has ${dim} ${value}; it must be a positive integer.`);
    }
  }
  if (data.length !== height * width * channels) {
    throw new DatasetError(
      `${where} has ${data.length} pixel bytes but its shape ${height}×${width}×${channels} needs ${height * width * channels}.`,
    );
  }
}

/** Running per-channel sums over u8 pixels. Sums of u8 and u8² stay exact in float64 up to ~10^11 pixels per channel. */
class ChannelStats {
  private readonly sum: Float64Array;
  private readonly sumSq: Float64Array;
  private pixelsPerChannel = 0;
  constructor(private readonly channels: number) {
    this.sum = new Float64Array(channels);
    this.sumSq = new Float64Array(channels);
  }
  add(data: Uint8Array): void {
    const c = this.channels;
    if (data.length % c !== 0)
      throw new Error(`Pixel buffer length ${data.length} is not a multiple of ${c} channels.`);
    if (c === 1) {
      let s = 0;
      let q = 0;
      for (let i = 0; i < data.length; i++) {
        const v = data[i];
        s += v;
        q += v * v;
      }
      this.sum[0] += s;
      this.sumSq[0] += q;
    } else {
      for (let i = 0; i < data.length; i += c) {
        for (let k = 0; k < c; k++) {
          const v = data[i + k];
          this.sum[k] += v;
          this.sumSq[k] += v * v;
        }
      }
    }
    this.pixelsPerChannel += data.length / c;
  }
  result(): { mean: number[]; std: number[] } {
    const n = this.pixelsPerChannel;
    const mean: number[] = [];
    const std: number[] = [];
    for (let k = 0; k < this.channels; k++) {
      const m = this.sum[k] / n;
      const variance = Math.max(0, this.sumSq[k] / n - m * m);
      mean.push(m / 255);
      std.push(Math.sqrt(variance) / 255);
    }
    return { mean, std };
  }
}

/** Tracks whether all images share one shape; channel count must be the same throughout. */
class ShapeTracker {
  private first: [number, number, number] | undefined;
  private uniformShape = true;
  constructor(private readonly dataset: string) {}
  see(height: number, width: number, channels: number, split: Split, idx: number): void {
    if (!this.first) {
      this.first = [height, width, channels];
      return;
    }
    if (channels !== this.first[2]) {
      throw new DatasetError(
        `${this.dataset} ${split} image ${idx} has ${channels} channels but earlier images have ${this.first[2]}; every image of a dataset must have the same channel count.`,
      );
    }
    if (height !== this.first[0] || width !== this.first[1]) this.uniformShape = false;
  }
  uniform(): [number, number, number] | null {
    return this.uniformShape && this.first ? this.first : null;
  }
}

interface ExistingBuild {
  readonly meta: ReadonlyMap<string, string>;
  readonly sources: readonly { name: string; bytes: number; sha256: string }[];
  readonly counts: Record<Split, number>;
  /** Its `source_images` by path; undefined for an index that did not track image files. */
  readonly images: ReadonlyMap<string, StoredImageFile> | undefined;
}

/** The inputs an existing index was built from, or undefined if there is no readable index. */
function readExistingBuild(path: string): ExistingBuild | undefined {
  if (!existsSync(path)) return undefined;
  let db: Database.Database | undefined;
  try {
    db = new Database(path, { readonly: true, fileMustExist: true });
    const rows = db.prepare('SELECT key, value FROM meta').all() as {
      key: string;
      value: string;
    }[];
    const meta = new Map(rows.map((r) => [r.key, r.value]));
    const sources = db.prepare('SELECT name, bytes, sha256 FROM sources ORDER BY name').all() as {
      name: string;
      bytes: number;
      sha256: string;
    }[];
    const counts = JSON.parse(meta.get(META.counts) ?? 'null') as Record<Split, number> | null;
    if (!counts || typeof counts.train !== 'number' || typeof counts.test !== 'number')
      return undefined;
    const tracked = db
      .prepare("SELECT 1 FROM sqlite_master WHERE type = 'table' AND name = 'source_images'")
      .get();
    const images = tracked
      ? new Map(
          (
            db
              .prepare(
                'SELECT path, bytes, mtime_ns AS mtimeNs, sha256, split, idx FROM source_images',
              )
              .all() as StoredImageFile[]
          ).map((r) => [r.path, r]),
        )
      : undefined;
    return { meta, sources, counts, images };
  } catch {
    return undefined; // not an index (or an older/corrupt one): rebuild it
  } finally {
    db?.close();
  }
}

function sameInputs(
  existing: ExistingBuild,
  source: DatasetSource,
  hashed: readonly HashedSourceFile[],
): boolean {
  const { meta } = existing;
  if (meta.get(META.dataset) !== source.name) return false;
  if (meta.get(META.formatVersion) !== INDEX_FORMAT_VERSION) return false;
  if (meta.get(META.builderVersion) !== source.builderVersion) return false;
  if (meta.get(META.sourceConfig) !== JSON.stringify(source.config ?? {})) return false;
  const wanted = [...hashed].sort((a, b) => (a.name < b.name ? -1 : a.name > b.name ? 1 : 0));
  if (wanted.length !== existing.sources.length) return false;
  return wanted.every(
    (file, i) =>
      file.name === existing.sources[i].name &&
      file.bytes === existing.sources[i].bytes &&
      file.sha256 === existing.sources[i].sha256,
  );
}

/**
 * Delete `<path>.tmp-<pid>` files left by builds that were killed (kill -9, power loss), whose
 * process no longer exists. Temp files of live builds (another process building the same
 * index right now) are left alone.
 */
export function removeStaleTempFiles(path: string): string[] {
  const dir = dirname(path);
  const prefix = `${basename(path)}.tmp-`;
  const removed: string[] = [];
  let names: string[];
  try {
    names = readdirSync(dir);
  } catch {
    return removed;
  }
  for (const name of names) {
    if (!name.startsWith(prefix)) continue;
    const match = /^(\d+)(?:-journal|-wal|-shm)?$/.exec(name.slice(prefix.length));
    if (!match) continue;
    const pid = Number(match[1]);
    if (pid === process.pid || processIsAlive(pid)) continue; // ours (the caller handles it) or a live build's
    removeFile(join(dir, name));
    removed.push(join(dir, name));
  }
  return removed;
}

function processIsAlive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch (error) {
    // EPERM: the process exists but belongs to someone else.
    return (error as NodeJS.ErrnoException).code === 'EPERM';
  }
}

/** Create the folder the index goes in, or say which folder could not be made and why. */
function makeIndexFolder(dir: string): void {
  try {
    mkdirSync(dir, { recursive: true });
  } catch (error) {
    const { code, message } = error as NodeJS.ErrnoException;
    const why =
      code === 'ENOTDIR' || code === 'EEXIST'
        ? 'a file is in the way of one of its folders'
        : code === 'EACCES' || code === 'EPERM'
          ? 'permission denied'
          : message;
    throw new DatasetError(
      `Cannot create the index folder ${dir} (${why}); pass --out DIR naming a folder you can write to.`,
    );
  }
}

function removeFile(path: string): void {
  rmSync(path, { force: true });
}

function fsyncPath(path: string): void {
  const fd = openSync(path, 'r+');
  try {
    fsyncSync(fd);
  } finally {
    closeSync(fd);
  }
}

/** Make the rename durable. Some platforms cannot fsync a directory; the rename still happened. */
function fsyncDirectory(dir: string): void {
  let fd: number | undefined;
  try {
    fd = openSync(dir, 'r');
    fsyncSync(fd);
  } catch {
    // best effort
  } finally {
    if (fd !== undefined) closeSync(fd);
  }
}
