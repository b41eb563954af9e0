import { Worker } from 'node:worker_threads';
import { availableParallelism } from 'node:os';
import { l2NormalizeRows } from './normalize.js';
import {
  DEFAULT_KS,
  recallAtK,
  recallFromNeighbours,
  validateInputs,
  type RecallOptions,
  type RecallResult,
} from './recall.js';
import type { RecallWorkerData, RecallWorkerMessage } from './recall-worker.js';
import { openCandidateSource, type SimilarityBackend } from './backends/index.js';
import { exactTopKFromCandidates } from './exact-top-k.js';
import { defaultQueryChunk } from './top-k.js';

export interface ParallelRecallOptions extends RecallOptions {
  /**
   * Threads (default: one per core, `os.availableParallelism()`): the fast backend's threads,
   * or the exact sweep's worker threads (1 for inputs below 10⁸ multiply-adds; 1 runs
   * `recallAtK` on the calling thread).
   */
  workers?: number;
  /**
   * `auto` (default): the first fast backend that loads (onnxruntime-node) for inputs of at
   * least 10⁷ multiply-adds, else the exact sweep. Every backend gives the same result bit for
   * bit; a named backend that cannot load throws with the reason.
   */
  backend?: SimilarityBackend;
  /** Called once with the backend used and, for a fallback, why (e.g. to log it). */
  onBackend?: (backend: string, reason?: string) => void;
}

/**
 * `recallAtK` on every core: the same definition, tie rule and result, bit for bit.
 *
 * The upper-triangle block pairs (I ≤ J) of the chunked sweep are dealt round-robin to W
 * worker threads, which read one shared copy of the unit rows (SharedArrayBuffer, N×dim
 * float32) and each keep top-maxK lists for all N items; the lists are merged at the end under
 * the same total order (similarity desc, index asc). Each pair is still computed once.
 * Memory: N×dim×4 bytes shared + W × N×maxK×12 bytes + W × chunkSize²×8.
 *
 * `onProgress(done, total)` reports the fraction of block pairs finished, scaled to N.
 */
export async function recallAtKParallel(
  embeddings: Float32Array,
  dim: number,
  labels: Int32Array,
  ks: readonly number[] = DEFAULT_KS,
  opts: ParallelRecallOptions = {},
): Promise<RecallResult> {
  const macs = (labels.length * labels.length * dim) / 2;
  const backend = opts.backend ?? 'auto';
  if (backend !== 'exact' && (backend !== 'auto' || macs >= 1e7)) {
    const fast = await recallWithCandidateSource(embeddings, dim, labels, ks, backend, opts);
    if (typeof fast !== 'string') return fast;
    opts.onBackend?.('exact', fast);
  } else
    opts.onBackend?.('exact', backend === 'exact' ? undefined : 'input below 10⁷ multiply-adds');
  // Below ~10⁸ multiply-adds starting threads costs more than it saves.
  const workers = opts.workers ?? (macs < 1e8 ? 1 : availableParallelism());
  if (!Number.isInteger(workers) || workers <= 0) {
    throw new RangeError(`recallAtKParallel: workers must be a positive integer, got ${workers}.`);
  }
  if (workers === 1) return recallAtK(embeddings, dim, labels, ks, opts);
  validateInputs(embeddings, dim, labels, ks);
  const requestedChunk = opts.chunkSize ?? 256;
  if (!Number.isInteger(requestedChunk) || requestedChunk <= 0) {
    throw new RangeError(`recallAtK: chunkSize must be a positive integer, got ${requestedChunk}.`);
  }
  const n = labels.length;
  const chunkSize = Math.min(requestedChunk, n);
  const maxK = Math.min(Math.max(...ks), n - 1);

  const shared = new SharedArrayBuffer(n * dim * 4);
  new Float32Array(shared).set(l2NormalizeRows(embeddings, dim)); // N×dim unit rows

  // Round-robin over block pairs in sweep order balances both the count and the position.
  const perWorker: number[][] = Array.from({ length: workers }, () => []);
  let totalPairs = 0;
  for (let i0 = 0; i0 < n; i0 += chunkSize) {
    for (let j0 = i0; j0 < n; j0 += chunkSize) perWorker[totalPairs++ % workers]!.push(i0, j0);
  }

  // Compiled JavaScript (dist/) starts the worker module directly; only from the TypeScript
  // sources in this repository does a bootstrap register tsx's hooks in the thread first.
  const fromSource = import.meta.url.endsWith('.ts');
  const entryUrl = new URL(`./recall-worker.${fromSource ? 'ts' : 'js'}`, import.meta.url);
  const entry = entryUrl.href;
  const script = fromSource ? new URL('./worker-bootstrap.mjs', import.meta.url) : entryUrl;
  let donePairs = 0;
  const results = await Promise.all(
    perWorker.map(
      (pairs) =>
        new Promise<NeighbourLists>((resolve, reject) => {
          const wd: RecallWorkerData = {
            entry,
            x: shared,
            dim,
            n,
            chunkSize,
            maxK,
            pairs: Int32Array.from(pairs),
          };
          const w = new Worker(script, { workerData: wd });
          let settled = false;
          w.on('message', (m: RecallWorkerMessage) => {
            if (m.type === 'progress') {
              donePairs += m.pairs;
              opts.onProgress?.(Math.floor((donePairs / totalPairs) * n), n);
            } else {
              settled = true;
              resolve(m);
              void w.terminate();
            }
          });
          w.on('error', (e) => {
            settled = true;
            reject(new Error(`recallAtKParallel: a worker thread failed: ${e.message}`));
          });
          w.on('exit', (code) => {
            if (!settled)
              reject(new Error(`recallAtKParallel: a worker thread exited early (code ${code}).`));
          });
        }),
    ),
  );
  return recallFromNeighbours(mergeNeighbourLists(results, n, maxK), maxK, labels, ks);
}

/**
 * Recall@K on a fast candidate source (see `exact-top-k.ts`): every item is a query against all
 * items, itself excluded; the lists, and so the result, equal the exact sweep's bit for bit.
 * Returns a sentence instead when `auto` finds no source.
 */
async function recallWithCandidateSource(
  embeddings: Float32Array,
  dim: number,
  labels: Int32Array,
  ks: readonly number[],
  backend: SimilarityBackend,
  opts: ParallelRecallOptions,
): Promise<RecallResult | string> {
  validateInputs(embeddings, dim, labels, ks);
  const n = labels.length;
  const threads = opts.workers ?? availableParallelism();
  if (!Number.isInteger(threads) || threads <= 0) {
    throw new RangeError(`recallAtKParallel: workers must be a positive integer, got ${threads}.`);
  }
  const chunkSize = opts.chunkSize ?? defaultQueryChunk(n);
  if (!Number.isInteger(chunkSize) || chunkSize <= 0) {
    throw new RangeError(`recallAtK: chunkSize must be a positive integer, got ${chunkSize}.`);
  }
  const maxK = Math.min(Math.max(...ks), n - 1);
  const x = l2NormalizeRows(embeddings, dim); // N×dim unit rows, queries and gallery at once
  const source = await openCandidateSource(backend, x, n, dim, threads);
  if (typeof source === 'string') return source;
  opts.onBackend?.(source.name);
  try {
    const lists = await exactTopKFromCandidates(source, {
      queries: x,
      gallery: x,
      dim,
      k: maxK,
      selfOffset: 0,
      chunkSize,
      withSimilarities: false,
      onProgress: opts.onProgress,
    });
    return recallFromNeighbours(lists.indices, maxK, labels, ks);
  } finally {
    await source.release();
  }
}

interface NeighbourLists {
  similarities: Float64Array;
  indices: Int32Array;
  counts: Int32Array;
}

/**
 * Merges per-worker top-maxK lists (each N×maxK, best first, `counts[q]` entries filled) into
 * one N×maxK index list under the total order similarity desc, index asc. An item pair lives
 * in exactly one worker's lists, so no candidate appears twice.
 */
function mergeNeighbourLists(lists: NeighbourLists[], n: number, maxK: number): Int32Array {
  const [first, ...others] = lists;
  if (!first) throw new Error('mergeNeighbourLists: no worker returned neighbour lists.');
  // Every list is N×maxK with N counts (TopKNeighbours), so the reads below are in range.
  let acc = first;
  for (const b of others) {
    const out: NeighbourLists = {
      similarities: new Float64Array(n * maxK),
      indices: new Int32Array(n * maxK),
      counts: new Int32Array(n),
    };
    for (let q = 0; q < n; q++) {
      const base = q * maxK;
      const ca = acc.counts[q]!;
      const cb = b.counts[q]!;
      const total = Math.min(maxK, ca + cb);
      let ia = 0;
      let ib = 0;
      for (let r = 0; r < total; r++) {
        let takeA: boolean;
        if (ib >= cb) takeA = true;
        else if (ia >= ca) takeA = false;
        else {
          const sa = acc.similarities[base + ia]!;
          const sb = b.similarities[base + ib]!;
          takeA = sa > sb || (sa === sb && acc.indices[base + ia]! < b.indices[base + ib]!);
        }
        const src = takeA ? acc : b;
        const at = base + (takeA ? ia++ : ib++);
        out.similarities[base + r] = src.similarities[at]!;
        out.indices[base + r] = src.indices[at]!;
      }
      out.counts[q] = total;
    }
    acc = out;
  }
  return acc.indices;
}
