/**
 * Worker side of `recallAtKParallel`: sweeps its share of the upper-triangle block pairs over
 * the shared unit-row matrix and returns its own neighbour lists for all N items.
 */
import { parentPort, workerData } from 'node:worker_threads';
import { TopKNeighbours } from './topk.js';
import { sweepBlockPair } from './tiles.js';

export interface RecallWorkerData {
  entry: string;
  /** N×dim unit (or zero) rows, shared with the main thread. */
  x: SharedArrayBuffer;
  dim: number;
  n: number;
  chunkSize: number;
  maxK: number;
  /** Block pairs (i0, j0) this worker computes, flattened. */
  pairs: Int32Array;
}

export type RecallWorkerMessage =
  | { type: 'progress'; pairs: number }
  | { type: 'done'; similarities: Float64Array; indices: Int32Array; counts: Int32Array };

const data = workerData as RecallWorkerData;
const x = new Float32Array(data.x);
const neighbours = new TopKNeighbours(data.n, data.maxK);
const tile = new Float64Array(data.chunkSize * data.chunkSize); // chunk×chunk similarity block
const port = parentPort!;
let sinceReport = 0;
let lastReport = performance.now();
for (let p = 0; p + 1 < data.pairs.length; p += 2) {
  sweepBlockPair(
    x,
    data.dim,
    data.n,
    data.chunkSize,
    data.pairs[p]!, // (i0, j0) pairs: p + 1 is in range
    data.pairs[p + 1]!,
    tile,
    neighbours,
  );
  sinceReport++;
  if (performance.now() - lastReport > 200) {
    port.postMessage({ type: 'progress', pairs: sinceReport } satisfies RecallWorkerMessage);
    sinceReport = 0;
    lastReport = performance.now();
  }
}
if (sinceReport > 0)
  port.postMessage({ type: 'progress', pairs: sinceReport } satisfies RecallWorkerMessage);
port.postMessage(
  {
    type: 'done',
    similarities: neighbours.similarities,
    indices: neighbours.indices,
    counts: neighbours.counts,
  } satisfies RecallWorkerMessage,
  [
    neighbours.similarities.buffer,
    neighbours.indices.buffer,
    neighbours.counts.buffer,
  ] as ArrayBuffer[],
);
