/**
 * The SQLite side of a build, on its own thread. Inserting rows is the slowest step of a
 * raw-pixel build (CIFAR, ImageNet32), and decoding them (reading batches, planar → HWC,
 * channel statistics) takes about as long again; with the inserts in a worker both run at once
 * on two cores. The main thread copies records into chunks (≤ 1,024 rows or 8 MiB of pixels),
 * transfers them without copying, and waits when `MAX_IN_FLIGHT` chunks are queued, so memory
 * stays bounded however fast the source is.
 *
 * The worker is plain JavaScript evaluated from a string, so it runs the same under tsx,
 * vitest and compiled output.
 */
import { createRequire } from 'node:module';
import { Worker } from 'node:worker_threads';
import { DatasetError } from './errors.js';
import type { StoredImageFile } from './image-inventory.js';
import type { Split } from './types.js';

const CHUNK_ROWS = 1024;
const CHUNK_BYTES = 8 * 2 ** 20;
const MAX_IN_FLIGHT = 4;

const WORKER_SOURCE = `
const { parentPort, workerData } = require('node:worker_threads');
const Database = require(workerData.sqlite);
let db;
let putImage;
function fail(error) {
  try { if (db && db.open) db.close(); } catch {}
  parentPort.postMessage({ type: 'error', message: error && error.message ? error.message : String(error) });
  parentPort.close();
}
try {
  db = new Database(workerData.path);
  // No journal: the temp file is discarded on failure, so rollback safety buys nothing.
  // better-sqlite3 opens connections in SQLite's defensive mode, which ignores
  // journal_mode = OFF without a word; lift it for this one pragma.
  db.unsafeMode(true);
  const journal = db.pragma('journal_mode = OFF', { simple: true });
  db.unsafeMode(false);
  if (journal !== 'off') db.pragma('journal_mode = MEMORY');
  db.pragma('synchronous = OFF');
  db.pragma('page_size = ' + workerData.pageSize);
  db.pragma('locking_mode = EXCLUSIVE');
  db.exec(workerData.schema);
  db.exec('BEGIN');
  putImage = db.prepare('INSERT INTO images (split, idx, fine, coarse, height, width, channels, pixels, source_path) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)');
} catch (error) {
  fail(error);
}
parentPort.on('message', (m) => {
  try {
    if (m.type === 'rows') {
      const buf = Buffer.from(m.pixels.buffer, m.pixels.byteOffset, m.offsets[m.fine.length]);
      for (let k = 0; k < m.fine.length; k++) {
        putImage.run(m.split, m.start + k, m.fine[k], m.coarse[k], m.shapes[3 * k], m.shapes[3 * k + 1], m.shapes[3 * k + 2],
          buf.subarray(m.offsets[k], m.offsets[k + 1]), m.paths ? m.paths[k] : null);
      }
      parentPort.postMessage({ type: 'ack' });
    } else if (m.type === 'finish') {
      const putMeta = db.prepare('INSERT INTO meta (key, value) VALUES (?, ?)');
      for (const [key, value] of m.meta) putMeta.run(key, value);
      const putSource = db.prepare('INSERT INTO sources (name, path, bytes, sha256) VALUES (?, ?, ?, ?)');
      for (const s of m.sources) putSource.run(s.name, s.path, s.bytes, s.sha256);
      const putClass = db.prepare('INSERT INTO classes (level, id, name) VALUES (?, ?, ?)');
      m.fine.forEach((name, id) => putClass.run('fine', id, name));
      m.coarse.forEach((name, id) => putClass.run('coarse', id, name));
      const putImageFile = db.prepare('INSERT INTO source_images (path, bytes, mtime_ns, sha256, split, idx) VALUES (?, ?, ?, ?, ?, ?)');
      for (const f of m.sourceImages) putImageFile.run(f.path, f.bytes, f.mtimeNs, f.sha256, f.split, f.idx);
      db.exec('COMMIT');
      db.close();
      parentPort.postMessage({ type: 'done' });
      parentPort.close();
    } else if (m.type === 'abort') {
      if (db && db.open) db.close();
      parentPort.close();
    }
  } catch (error) {
    fail(error);
  }
});
`;

export interface IndexFinish {
  readonly meta: readonly (readonly [string, string])[];
  readonly sources: readonly { name: string; path: string; bytes: number; sha256: string }[];
  readonly fineClassNames: readonly string[];
  readonly coarseClassNames: readonly string[];
  /** JPEG datasets: the `source_images` rows. */
  readonly sourceImages?: readonly StoredImageFile[];
}

interface PendingRow {
  readonly length: number;
  readonly fine: number;
  readonly coarse: number;
  readonly height: number;
  readonly width: number;
  readonly channels: number;
  readonly sourcePath: string | null;
}

/** Writes one index file (schema, rows, then meta/sources/classes and COMMIT) on a worker thread. */
export class IndexWriterThread {
  private readonly worker: Worker;
  private rows: PendingRow[] = [];
  private rowBytes = 0;
  private pixels = new Uint8Array(0);
  private split: Split = 'train';
  private start = 0;
  private inFlight = 0;
  private failure: Error | undefined;
  private completed = false;
  private wake: (() => void) | undefined;
  private finished: { resolve: () => void; reject: (e: Error) => void } | undefined;
  private readonly exited: Promise<void>;

  constructor(path: string, schema: string, pageSize: number) {
    const sqlite = createRequire(import.meta.url).resolve('better-sqlite3');
    this.worker = new Worker(WORKER_SOURCE, {
      eval: true,
      workerData: { path, schema, pageSize, sqlite },
    });
    this.worker.on('message', (m: { type: string; message?: string }) => {
      if (m.type === 'ack') this.inFlight -= 1;
      else if (m.type === 'done') {
        this.completed = true;
        this.finished?.resolve();
      } else if (m.type === 'error')
        this.fail(new DatasetError(`Writing the index ${path} failed: ${m.message}`));
      this.wake?.();
    });
    this.worker.on('error', (error) => this.fail(error));
    this.exited = new Promise((resolve) => {
      this.worker.on('exit', (code) => {
        if (code !== 0) this.fail(new Error(`The index writer thread exited with code ${code}.`));
        else if (!this.completed)
          this.fail(new Error('The index writer thread stopped before the index was complete.'));
        resolve();
      });
    });
  }

  /** Queue image `idx` of `split` (indices of a split must arrive in order 0, 1, …). */
  add(
    split: Split,
    idx: number,
    fine: number,
    coarse: number,
    height: number,
    width: number,
    channels: number,
    data: Uint8Array,
    sourcePath: string | null,
  ): void {
    if (this.failure) throw this.failure;
    if (
      this.rows.length > 0 &&
      (split !== this.split || this.rowBytes + data.length > this.pixels.length)
    )
      this.flush();
    if (this.rows.length === 0) {
      this.split = split;
      this.start = idx;
      this.pixels = new Uint8Array(
        Math.max(data.length, Math.min(CHUNK_BYTES, CHUNK_ROWS * data.length)),
      );
    }
    // Copied now: a source may reuse the buffer behind `data` once the next record is asked for.
    this.pixels.set(data, this.rowBytes);
    this.rows.push({ fine, coarse, height, width, channels, sourcePath, length: data.length });
    this.rowBytes += data.length;
    if (this.rows.length >= CHUNK_ROWS) this.flush();
  }

  /** Resolves when the worker has room for more chunks (await it after `add`). */
  async ready(): Promise<void> {
    while (this.inFlight >= MAX_IN_FLIGHT && !this.failure)
      await new Promise<void>((resolve) => (this.wake = resolve));
    if (this.failure) throw this.failure;
  }

  get congested(): boolean {
    return this.inFlight >= MAX_IN_FLIGHT || this.failure !== undefined;
  }

  /** Write meta, sources and classes, commit and close the file. */
  async finish(finish: IndexFinish): Promise<void> {
    this.flush();
    const done = new Promise<void>((resolve, reject) => (this.finished = { resolve, reject }));
    if (this.failure) throw this.failure;
    this.worker.postMessage({
      type: 'finish',
      meta: finish.meta,
      sources: finish.sources,
      fine: [...finish.fineClassNames],
      coarse: [...finish.coarseClassNames],
      sourceImages: finish.sourceImages ?? [],
    });
    await done;
    await this.exited;
  }

  /** Stop after an error elsewhere: the worker closes the file (the caller deletes it). */
  async abort(): Promise<void> {
    this.worker.postMessage({ type: 'abort' });
    await this.exited;
  }

  private fail(error: Error): void {
    if (this.failure) return;
    this.failure = error;
    this.finished?.reject(error);
    this.wake?.();
  }

  private flush(): void {
    const rows = this.rows;
    if (rows.length === 0) return;
    const n = rows.length;
    const fine = new Int32Array(n);
    const coarse = new Int32Array(n);
    const shapes = new Int32Array(3 * n);
    const offsets = new Float64Array(n + 1);
    const pixels = this.pixels;
    const paths = rows.some((r) => r.sourcePath !== null)
      ? rows.map((r) => r.sourcePath)
      : undefined;
    let at = 0;
    rows.forEach((r, k) => {
      fine[k] = r.fine;
      coarse[k] = r.coarse;
      shapes[3 * k] = r.height;
      shapes[3 * k + 1] = r.width;
      shapes[3 * k + 2] = r.channels;
      offsets[k] = at;
      at += r.length;
    });
    offsets[n] = at;
    this.inFlight += 1;
    this.worker.postMessage(
      {
        type: 'rows',
        split: this.split,
        start: this.start,
        fine,
        coarse,
        shapes,
        offsets,
        pixels,
        paths,
      },
      [fine.buffer, coarse.buffer, shapes.buffer, offsets.buffer, pixels.buffer],
    );
    this.rows = [];
    this.rowBytes = 0;
    this.pixels = new Uint8Array(0);
  }
}
