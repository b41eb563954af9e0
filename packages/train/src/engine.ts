import * as tf from '@tensorflow/tfjs';
import type { TrainConfig } from './config.js';
import { Replica, type BatchViews, type StepInput } from './replica.js';
import { LocalCollective } from './parallel/collective.js';
import { WorkerPool } from './parallel/pool.js';
import type { TrainingState, WorkerReply } from './parallel/protocol.js';

/**
 * Where the training computation runs: one replica in this thread, or W replicas in worker
 * threads (data parallelism). The trainer drives both through this interface.
 */
export interface Engine {
  readonly backend: string;
  readonly workers: number;
  readonly params: number;
  fill(s: Omit<StepInput, 'lr'>): Promise<void>;
  step(s: StepInput): Promise<void>;
  /** Sum of the step losses since the last call (reads the device once). */
  takeLossSum(): Promise<number>;
  /** Backbone features of test images. */
  embed(indices: Int32Array): Promise<{ features: Float32Array; dim: number }>;
  /** Host copy of the query encoder (for tests and checkpoints). */
  snapshot(): Promise<Map<string, Float32Array>>;
  /** Full training state (identical on every replica), for checkpoints. */
  exportState(): Promise<TrainingState>;
  importState(state: TrainingState): Promise<void>;
  /** Writes the query encoder's backbone as a TensorFlow.js model into `dir`. */
  exportModel(dir: string): Promise<void>;
  close(): Promise<void>;
}

class LocalEngine implements Engine {
  readonly workers = 1;
  private lossSum: tf.Scalar = tf.scalar(0);
  constructor(private readonly replica: Replica) {}
  get backend(): string {
    return this.replica.backend;
  }
  get params(): number {
    return this.replica.model.encoderQ.countTrainable();
  }
  async fill(s: Omit<StepInput, 'lr'>): Promise<void> {
    this.replica.fill(s);
  }
  async step(s: StepInput): Promise<void> {
    const loss = this.replica.step(s);
    const next = tf.add(this.lossSum, loss) as tf.Scalar; // stays on the device: no round trip per step
    this.lossSum.dispose();
    loss.dispose();
    this.lossSum = next;
  }
  async takeLossSum(): Promise<number> {
    const v = this.lossSum.dataSync()[0];
    this.lossSum.dispose();
    this.lossSum = tf.scalar(0);
    return v;
  }
  async embed(indices: Int32Array) {
    return this.replica.embed(indices);
  }
  async snapshot() {
    return this.replica.model.encoderQ.snapshot();
  }
  async exportState() {
    return this.replica.exportState();
  }
  async importState(state: TrainingState) {
    this.replica.importState(state);
  }
  async exportModel(dir: string) {
    await this.replica.exportModel(dir);
  }
  async close(): Promise<void> {
    this.lossSum.dispose();
    this.replica.dispose();
  }
}

class PoolEngine implements Engine {
  /** The batch views in shared memory: posted to every worker without a copy. */
  private shared?: BatchViews;
  constructor(
    private readonly pool: WorkerPool,
    readonly backend: string,
    readonly params: number,
  ) {}
  get workers(): number {
    return this.pool.size;
  }
  /** Copies a loader's views into the shared buffers (reused: a step ends before the next one starts). */
  private share<T extends { views?: BatchViews }>(s: T): T {
    if (!s.views) return s;
    const { query, key } = s.views;
    if (this.shared?.query.length !== query.length || this.shared.key.length !== key.length) {
      this.shared = {
        query: new Float32Array(new SharedArrayBuffer(query.byteLength)),
        key: new Float32Array(new SharedArrayBuffer(key.byteLength)),
      };
    }
    this.shared.query.set(query);
    this.shared.key.set(key);
    return { ...s, views: this.shared };
  }
  async fill(s: Omit<StepInput, 'lr'>): Promise<void> {
    const m = this.share(s);
    await this.pool.all(() => ({ type: 'fill', ...m }));
  }
  async step(s: StepInput): Promise<void> {
    const m = this.share(s);
    await this.pool.all(() => ({ type: 'step', ...m }));
  }
  async takeLossSum(): Promise<number> {
    // After the all-reduce every replica holds the same full-batch loss; read rank 0's.
    const replies = (await this.pool.all(() => ({ type: 'takeLoss' }))) as Extract<
      WorkerReply,
      { type: 'loss' }
    >[];
    return replies[0].sum;
  }
  async embed(indices: Int32Array) {
    const w = this.pool.size;
    const per = Math.ceil(indices.length / w);
    const replies = (await this.pool.all((r) => ({
      type: 'embed',
      indices: indices.slice(r * per, Math.min(indices.length, (r + 1) * per)),
    }))) as Extract<WorkerReply, { type: 'features' }>[];
    const dim = replies.find((r) => r.dim > 0)?.dim ?? 0;
    const features = new Float32Array(indices.length * dim);
    let o = 0;
    for (const r of replies) {
      features.set(r.features, o);
      o += r.features.length;
    }
    return { features, dim };
  }
  async snapshot() {
    const replies = (await this.pool.all(() => ({ type: 'snapshot' }))) as Extract<
      WorkerReply,
      { type: 'snapshot' }
    >[];
    return replies[0].params;
  }
  async exportState() {
    const replies = (await this.pool.all(() => ({ type: 'exportState' }))) as Extract<
      WorkerReply,
      { type: 'state' }
    >[];
    return replies[0].state;
  }
  async importState(state: TrainingState) {
    await this.pool.all(() => ({ type: 'importState', state }));
  }
  async exportModel(dir: string) {
    await this.pool.all(() => ({ type: 'exportModel', dir }));
  }
  async close(): Promise<void> {
    await this.pool.all(() => ({ type: 'close' }));
    await this.pool.terminate();
  }
}

export async function createEngine(
  cfg: TrainConfig,
  indexPath: string,
  workers: number,
  log: (m: string) => void,
): Promise<Engine> {
  if (workers <= 1)
    return new LocalEngine(await Replica.create(cfg, indexPath, new LocalCollective(), log));
  const { pool, backend, params } = await WorkerPool.start(
    cfg,
    indexPath,
    workers,
    cfg.batchSize,
    128,
    log,
  );
  return new PoolEngine(pool, backend, params);
}
