import { batchRng } from './loader-shared.js';
import type { Rng } from '@maskcon/random';

export { buildPipeline, epochPermutation } from './loader-shared.js';

/**
 * The generators BatchLoader's workers use for the `n` images of batch `batch` of `epoch`,
 * view 0 (query) or 1 (key): image i of that view is augmented with element i. Code that
 * augments a batch itself (e.g. a trainer without a loader) gets the same pixels as the loader
 * by using these, whatever subset of the batch it augments.
 */
export function loaderViewRngs(
  seed: number,
  epoch: number,
  batch: number,
  view: 0 | 1,
  n: number,
): Rng[] {
  const rng = batchRng(seed, epoch, batch);
  let v = rng.fork(0);
  if (view === 1) v = rng.fork(1);
  const out: Rng[] = new Array(n);
  for (let i = 0; i < n; i++) out[i] = v.fork(i); // as augmentBatch forks, in order
  return out;
}
