/*
 * A BatchLoader worker: opens the index once, then augments the batches it is sent. Batch
 * b of epoch e uses an rng derived only from (seed, e, b), so which worker runs a batch
 * does not matter.
 */
import { openIndex, type CoarseFineDataset } from '@maskcon/datasets';
import { parentPort, workerData } from 'node:worker_threads';
import { batchRng, buildPipeline } from './loader-shared.js';
import type { BatchTask, WorkerConfig, WorkerReply } from './loader-protocol.js';
import { augmentBatch } from './pipeline.js';

const port = parentPort;
if (!port)
  throw new Error('loader-worker.ts is a worker_threads worker; start it through BatchLoader.');
const config = workerData as WorkerConfig;
const post = (reply: WorkerReply, transfer: ArrayBuffer[] = []) =>
  port.postMessage(reply, transfer);

let dataset: CoarseFineDataset;
try {
  dataset = openIndex(config.indexPath, config.split);
} catch (err) {
  post({ type: 'error', id: null, message: (err as Error).message });
  throw err;
}
const coarse = dataset.coarseLabels();
const fine = dataset.fineLabels();
const query = buildPipeline(config.query);
const key = buildPipeline(config.key);

port.on('message', (task: BatchTask) => {
  try {
    for (const i of task.indices) {
      if (!(i >= 0 && i < dataset.size)) {
        throw new Error(
          `image index ${i} is outside the ${config.split} split of ${config.indexPath} (${dataset.size} images)`,
        );
      }
    }
    const images = dataset.images(task.indices);
    const rng = batchRng(task.seed, task.epoch, task.batch);
    const channels = images[0]?.channels ?? 0;
    const reuse = (a: Float32Array | undefined, size: number) =>
      a && a.length === images.length * size * size * channels ? a : undefined;
    const q = augmentBatch(images, query, rng.fork(0), reuse(task.recycled?.query, query.size));
    const k = augmentBatch(images, key, rng.fork(1), reuse(task.recycled?.key, key.size));
    const coarseLabels = Int32Array.from(task.indices, (i) => coarse[i]);
    const fineLabels = Int32Array.from(task.indices, (i) => fine[i]);
    post(
      {
        type: 'batch',
        id: task.id,
        query: q,
        key: k,
        coarseLabels,
        fineLabels,
        size: query.size,
        channels,
      },
      [
        q.buffer as ArrayBuffer,
        k.buffer as ArrayBuffer,
        coarseLabels.buffer as ArrayBuffer,
        fineLabels.buffer as ArrayBuffer,
      ],
    );
  } catch (err) {
    post({ type: 'error', id: task.id, message: (err as Error).message });
  }
});
post({ type: 'ready' });
