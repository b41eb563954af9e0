import { Worker } from 'node:worker_threads';
import type { TrainConfig } from '../config.js';
import {
  allocateCollectiveBuffers,
  abortCollective,
  type SharedCollectiveBuffers,
} from './collective.js';
import type { WorkerReply, WorkerRequest } from './protocol.js';

/**
 * W training workers, each holding one replica. Every request goes to all workers and
 * resolves when all have answered; a failure in any worker rejects with its message and
 * stops the others.
 */
export class WorkerPool {
  private readonly workers: Worker[] = [];
  private buffers?: SharedCollectiveBuffers;
  private failed?: Error;

  private constructor(readonly size: number) {}

  static async start(
    cfg: TrainConfig,
    indexPath: string,
    size: number,
    batchSize: number,
    keyDim: number,
    log: (m: string) => void,
  ): Promise<{ pool: WorkerPool; backend: string; params: number }> {
    const pool = new WorkerPool(size);
    // Compiled JavaScript (dist/) starts the worker module directly; only from the TypeScript
    // sources in this repository does a bootstrap register tsx's hooks in the thread first.
    const fromSource = import.meta.url.endsWith('.ts');
    const entry = new URL(`./worker.${fromSource ? 'ts' : 'js'}`, import.meta.url);
    const script = fromSource ? new URL('./worker-bootstrap.mjs', import.meta.url) : entry;
    for (let r = 0; r < size; r++)
      pool.workers.push(new Worker(script, { workerData: { entry: entry.href } }));
    const ready = (await pool.all((r) => ({
      type: 'init',
      cfg,
      indexPath,
      rank: r,
      worldSize: size,
    }))) as Extract<WorkerReply, { type: 'ready' }>[];
    for (const m of ready[0].logs) log(m);
    const reduceSize = ready[0].reduceSize;
    pool.buffers = allocateCollectiveBuffers(size, (batchSize / size) * keyDim, reduceSize);
    await pool.all(() => ({ type: 'attach', buffers: pool.buffers! }));
    return { pool, backend: ready[0].backend, params: ready[0].params };
  }

  private request(w: Worker, msg: WorkerRequest): Promise<WorkerReply> {
    return new Promise((resolve, reject) => {
      const onMessage = (m: WorkerReply) => {
        cleanup();
        if (m.type === 'error') reject(new Error(m.message));
        else resolve(m);
      };
      const onError = (e: Error) => {
        cleanup();
        reject(e);
      };
      const onExit = (code: number) => {
        cleanup();
        reject(new Error(`A training worker exited unexpectedly (code ${code}).`));
      };
      const cleanup = () => {
        w.off('message', onMessage);
        w.off('error', onError);
        w.off('exit', onExit);
      };
      w.on('message', onMessage);
      w.on('error', onError);
      w.on('exit', onExit);
      w.postMessage(msg);
    });
  }

  /** Sends a request (built per rank) to every worker and waits for all answers. */
  async all(build: (rank: number) => WorkerRequest): Promise<WorkerReply[]> {
    if (this.failed) throw this.failed;
    try {
      return await Promise.all(this.workers.map((w, r) => this.request(w, build(r))));
    } catch (err) {
      this.failed = err instanceof Error ? err : new Error(String(err));
      if (this.buffers) abortCollective(this.buffers);
      await this.terminate();
      throw this.failed;
    }
  }

  async terminate(): Promise<void> {
    await Promise.all(this.workers.map((w) => w.terminate()));
  }
}
