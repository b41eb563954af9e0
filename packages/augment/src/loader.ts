import { openIndex, type Split } from '@maskcon/datasets';
import { readFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import { availableParallelism } from 'node:os';
import { dirname, join } from 'node:path';
import { pathToFileURL } from 'node:url';
import { Worker } from 'node:worker_threads';
import { buildPipeline, epochPermutation } from './loader-shared.js';
import type { BatchTask, PipelineSpec, WorkerConfig, WorkerReply } from './loader-protocol.js';

export type { PipelineSpec } from './loader-protocol.js';

export interface BatchLoaderOptions {
  /** SQLite index written by @maskcon/datasets. */
  indexPath: string;
  /** Split to read; default 'train'. */
  split?: Split;
  /** Images per batch. */
  batchSize: number;
  /** Base seed: order and augmentation of every batch follow from (seed, epoch, batch). */
  seed: number;
  /** Which images of the split to use (default all), e.g. a train subset. */
  indices?: ArrayLike<number>;
  /** Query-view (default strong) and key-view (default weak) pipelines. */
  query: PipelineSpec;
  key: PipelineSpec;
  /** Worker threads; default min(4, cores − 1), at least 1. */
  workers?: number;
  /** Batches augmented ahead of the consumer; default workers + 2. */
  prefetch?: number;
  /** Shuffle every epoch (default true); otherwise the `indices` order. */
  shuffle?: boolean;
  /** Drop the last incomplete batch (default true, as in training). */
  dropLast?: boolean;
}

/** At most this many released batches wait for reuse beyond `prefetch`. */
const SPARE_RELEASED = 2;

/**
 * One batch: two augmented views (NHWC float32) and the labels of the same images. Once
 * done with the views, hand the batch to `BatchLoader.release` so that later batches are
 * written into its arrays instead of new ones.
 */
export interface Batch {
  epoch: number;
  /** Batch number within the epoch. */
  index: number;
  /** Image ids in the split, in batch order. */
  indices: Int32Array;
  /** N×size×size×C, the query view. */
  query: Float32Array;
  /** N×size×size×C, the key view. */
  key: Float32Array;
  coarseLabels: Int32Array;
  fineLabels: Int32Array;
  size: number;
  channels: number;
}

interface Pending {
  resolve: (b: Batch) => void;
  reject: (e: Error) => void;
  promise: Promise<Batch>;
  worker: number;
  epoch: number;
  batch: number;
  indices: Int32Array;
}

/**
 * Start the worker. When this package runs from its TypeScript sources (under tsx or
 * vitest), the worker is a .ts file that plain Node cannot load, so a small bootstrap
 * registers tsx's ESM hooks inside the worker thread and then imports it.
 */
function spawnWorker(url: URL, workerData: WorkerConfig): Worker {
  if (!url.pathname.endsWith('.ts')) return new Worker(url, { workerData });
  let api: string;
  try {
    const require = createRequire(import.meta.url);
    const pkgPath = require.resolve('tsx/package.json');
    const pkg = JSON.parse(readFileSync(pkgPath, 'utf8')) as {
      exports: Record<string, { import: { default: string } }>;
    };
    api = pathToFileURL(join(dirname(pkgPath), pkg.exports['./esm/api'].import.default)).href;
  } catch (err) {
    throw new Error(
      `BatchLoader runs from TypeScript sources and needs tsx to start its workers, but tsx could not be found (${(err as Error).message}); ` +
        'install tsx in the workspace or run the compiled JavaScript.',
    );
  }
  const bootstrap = `import(${JSON.stringify(api)}).then((tsx) => { tsx.register(); return import(${JSON.stringify(url.href)}); });`;
  return new Worker(bootstrap, { eval: true, workerData });
}

/**
 * Batches of (query view, key view, coarse label, fine label) augmented by a pool of
 * worker threads that run ahead of the consumer. Deterministic for a seed whatever the
 * number of workers: the epoch's order is a seeded permutation and batch b's augmentation
 * uses an rng derived from (seed, epoch, b) only.
 *
 *   const loader = new BatchLoader({ indexPath, batchSize: 128, seed: 1,
 *     query: { kind: 'strong', dataset: 'cars196' }, key: { kind: 'weak', dataset: 'cars196' } });
 *   for await (const batch of loader.epoch(1)) {
 *     step(batch);
 *     loader.release(batch); // optional: recycle its arrays (do not use batch.query/key after)
 *   }
 *   await loader.close();
 *
 * Without `release` every batch gets new arrays (2·N·size²·C floats); with it the loader
 * keeps a few released arrays and sends them to the workers with later tasks, so in steady
 * state no batch memory is allocated. Contents are identical either way.
 */
export class BatchLoader {
  readonly batchSize: number;
  readonly workerCount: number;
  readonly prefetch: number;
  /** Number of images the loader draws from. */
  readonly length: number;
  private readonly options: BatchLoaderOptions;
  private readonly ids: Int32Array;
  private readonly workers: Worker[] = [];
  private readonly busy: boolean[] = [];
  private readonly ready: Promise<void>[] = [];
  private readonly pending = new Map<number, Pending>();
  /** Released batches' arrays waiting to be sent back to a worker. */
  private readonly released: { query: Float32Array; key: Float32Array }[] = [];
  private nextTaskId = 0;
  private closed = false;
  private fatal: Error | null = null;
  private running = false;

  constructor(options: BatchLoaderOptions) {
    const { batchSize } = options;
    if (!(Number.isInteger(batchSize) && batchSize > 0))
      throw new Error(`BatchLoader batchSize must be a positive integer, got ${batchSize}.`);
    if (!Number.isFinite(options.seed))
      throw new Error(`BatchLoader seed must be a finite number, got ${options.seed}.`);
    const workers = options.workers ?? Math.max(1, Math.min(4, availableParallelism() - 1));
    if (!(Number.isInteger(workers) && workers > 0))
      throw new Error(`BatchLoader workers must be a positive integer, got ${workers}.`);
    const prefetch = options.prefetch ?? workers + 2;
    if (!(Number.isInteger(prefetch) && prefetch > 0))
      throw new Error(`BatchLoader prefetch must be a positive integer, got ${prefetch}.`);
    // Fail here, with the user's stack, on bad pipeline names rather than inside every worker.
    buildPipeline(options.query);
    buildPipeline(options.key);
    const split = options.split ?? 'train';
    let ids: Int32Array;
    if (options.indices) {
      ids = Int32Array.from(options.indices);
    } else {
      const ds = openIndex(options.indexPath, split);
      ids = new Int32Array(ds.size);
      for (let i = 0; i < ids.length; i++) ids[i] = i;
      ds.close();
    }
    this.options = { ...options, split };
    this.ids = ids;
    this.length = ids.length;
    this.batchSize = batchSize;
    this.workerCount = workers;
    this.prefetch = prefetch;
  }

  /** Batches per epoch (the last incomplete batch counts only with dropLast = false). */
  get batchesPerEpoch(): number {
    const full = Math.floor(this.length / this.batchSize);
    return this.options.dropLast === false && this.length % this.batchSize !== 0 ? full + 1 : full;
  }

  private start(): void {
    if (this.workers.length > 0) return;
    const config: WorkerConfig = {
      indexPath: this.options.indexPath,
      split: this.options.split ?? 'train',
      query: this.options.query,
      key: this.options.key,
    };
    const url = new URL(
      `./loader-worker.${import.meta.url.endsWith('.ts') ? 'ts' : 'js'}`,
      import.meta.url,
    );
    for (let w = 0; w < this.workerCount; w++) {
      const worker = spawnWorker(url, config);
      this.workers.push(worker);
      this.busy.push(false);
      this.ready.push(
        new Promise<void>((resolve, reject) => {
          const onMessage = (m: WorkerReply) => {
            if (m.type === 'ready') {
              worker.off('message', onMessage);
              resolve();
            } else if (m.type === 'error' && m.id === null) {
              reject(new Error(`BatchLoader worker ${w} could not start: ${m.message}`));
            }
          };
          worker.on('message', onMessage);
          worker.once('error', (err) =>
            reject(new Error(`BatchLoader worker ${w} failed to start: ${err.message}`)),
          );
          worker.once('exit', (code) =>
            reject(
              new Error(`BatchLoader worker ${w} exited with code ${code} before it was ready.`),
            ),
          );
        }),
      );
      this.ready[w].catch(() => undefined);
      worker.on('message', (m: WorkerReply) => this.onReply(w, m));
      worker.on('error', (err) => this.failWorker(w, `crashed: ${err.message}`));
      worker.on('exit', (code) => {
        if (!this.closed) this.failWorker(w, `exited unexpectedly with code ${code}`);
      });
    }
  }

  private onReply(w: number, m: WorkerReply): void {
    if (m.type === 'ready') return;
    if (m.id === null) {
      this.failWorker(w, `could not start: ${m.type === 'error' ? m.message : ''}`);
      return;
    }
    const p = this.pending.get(m.id);
    this.busy[w] = false;
    if (!p) {
      // A batch of an abandoned epoch: its worker is free again for the current one.
      this.pump?.();
      this.wakeWaiting();
      return;
    }
    this.pending.delete(m.id);
    if (m.type === 'error') {
      p.reject(
        new Error(
          `BatchLoader worker ${w} failed on batch ${p.batch} of epoch ${p.epoch} (index ${this.options.indexPath}): ${m.message}`,
        ),
      );
    } else {
      p.resolve({
        epoch: p.epoch,
        index: p.batch,
        indices: p.indices,
        query: m.query,
        key: m.key,
        coarseLabels: m.coarseLabels,
        fineLabels: m.fineLabels,
        size: m.size,
        channels: m.channels,
      });
    }
    this.pump?.();
    this.wakeWaiting();
  }

  /** Resolves the epoch loop's wait for a free worker (see `epoch`). */
  private waiting: (() => void) | null = null;
  private wakeWaiting(): void {
    const w = this.waiting;
    this.waiting = null;
    w?.();
  }

  private failWorker(w: number, what: string): void {
    if (this.closed) return;
    const err = new Error(`BatchLoader worker ${w} ${what} (index ${this.options.indexPath}).`);
    this.fatal ??= err;
    for (const [id, p] of this.pending) {
      if (p.worker === w || this.fatal) {
        this.pending.delete(id);
        p.reject(this.fatal);
      }
    }
    this.wakeWaiting();
  }

  private pump: (() => void) | null = null;

  /**
   * The batches of epoch `epoch` (1-based or 0-based, any integer), in order, from batch
   * `first` (a run resumed mid-epoch skips the batches it trained). Augmentation runs up to
   * `prefetch` batches ahead of the consumer. One epoch at a time.
   */
  async *epoch(epoch: number, first = 0): AsyncGenerator<Batch, void, undefined> {
    if (this.closed) throw new Error('BatchLoader is closed; create a new one.');
    if (this.running)
      throw new Error(
        'BatchLoader.epoch: the previous epoch is still being iterated; finish or break out of it first.',
      );
    if (!Number.isInteger(epoch))
      throw new Error(`BatchLoader.epoch needs an integer epoch, got ${epoch}.`);
    if (!Number.isInteger(first) || first < 0)
      throw new Error(`BatchLoader.epoch needs a non-negative integer first batch, got ${first}.`);
    this.running = true;
    this.start();
    const { seed } = this.options;
    const B = this.batchSize;
    const order =
      this.options.shuffle === false ? null : epochPermutation(seed, epoch, this.length);
    const total = this.batchesPerEpoch;
    const slots = new Map<number, Pending>(); // batch number → its pending task
    let next = first;
    const dispatch = () => {
      if (this.fatal) return;
      while (next < total && slots.size < this.prefetch) {
        const w = this.busy.indexOf(false);
        if (w < 0) return;
        const lo = next * B;
        const hi = Math.min(lo + B, this.length);
        const indices = new Int32Array(hi - lo);
        for (let j = lo; j < hi; j++) indices[j - lo] = this.ids[order ? order[j] : j];
        const id = this.nextTaskId++;
        let resolve!: (b: Batch) => void;
        let reject!: (e: Error) => void;
        const promise = new Promise<Batch>((res, rej) => {
          resolve = res;
          reject = rej;
        });
        promise.catch(() => undefined); // awaited in order below; avoid unhandled-rejection noise
        const p: Pending = { resolve, reject, promise, worker: w, epoch, batch: next, indices };
        this.pending.set(id, p);
        slots.set(next, p);
        this.busy[w] = true;
        const task: BatchTask = {
          type: 'task',
          id,
          seed,
          epoch,
          batch: next,
          indices: indices.slice(),
        };
        const transfer = [task.indices.buffer as ArrayBuffer];
        const recycled = this.released.pop();
        if (recycled) {
          task.recycled = recycled;
          transfer.push(recycled.query.buffer as ArrayBuffer, recycled.key.buffer as ArrayBuffer);
        }
        this.workers[w].postMessage(task, transfer);
        next++;
      }
    };
    this.pump = dispatch;
    try {
      await Promise.all(this.ready);
      for (let b = first; b < total; b++) {
        dispatch();
        if (this.fatal) throw this.fatal;
        let p = slots.get(b);
        while (!p) {
          // Every worker is still busy with batches of an epoch the consumer left early.
          await new Promise<void>((resolve) => (this.waiting = resolve));
          if (this.fatal) throw this.fatal;
          dispatch();
          p = slots.get(b);
        }
        const batch = await p.promise;
        slots.delete(b);
        dispatch();
        yield batch;
      }
    } finally {
      this.pump = null;
      this.running = false;
      // Batches still in flight belong to an abandoned epoch: drop their results.
      for (const [id, p] of this.pending)
        if (p.epoch === epoch && slots.has(p.batch)) this.pending.delete(id);
    }
  }

  /**
   * Give back a batch this loader yielded once its views are no longer needed: the workers
   * then write later batches into its `query` and `key` arrays rather than allocating new
   * ones. The arrays are transferred to a worker thread, so afterwards they are detached
   * (length 0) and must not be read; copy anything you want to keep first. Releasing a batch
   * twice, or after close, does nothing.
   */
  release(batch: Batch): void {
    const { query, key } = batch;
    if (
      this.closed ||
      query.byteLength === 0 ||
      key.byteLength === 0 ||
      query.buffer === key.buffer
    )
      return;
    if (this.released.some((r) => r.query.buffer === query.buffer || r.key.buffer === key.buffer))
      return;
    // Views must span their whole buffer: that is what gets transferred and reused.
    if (query.byteOffset !== 0 || query.byteLength !== query.buffer.byteLength) return;
    if (key.byteOffset !== 0 || key.byteLength !== key.buffer.byteLength) return;
    if (this.released.length >= this.prefetch + SPARE_RELEASED) return;
    this.released.push({ query, key });
  }

  /** Stop the workers. Safe to call twice. */
  async close(): Promise<void> {
    if (this.closed) return;
    this.closed = true;
    for (const p of this.pending.values())
      p.reject(new Error('BatchLoader was closed while batches were in flight.'));
    this.pending.clear();
    this.released.length = 0;
    await Promise.all(this.workers.map((w) => w.terminate()));
    this.workers.length = 0;
  }
}
