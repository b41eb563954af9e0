import type { PipelineSpec } from './loader-protocol.js';
import { makePipeline, type Pipeline } from './pipeline.js';
import { type Rng, streamRng } from '@maskcon/random';

/** The rng of batch `batch` in `epoch`: a function of (seed, epoch, batch) only. */
export function batchRng(seed: number, epoch: number, batch: number): Rng {
  return streamRng('batchViews', seed, epoch, batch);
}

/** The sample order of `epoch`: a seeded permutation of 0..n-1, different every epoch. */
export function epochPermutation(seed: number, epoch: number, n: number): Int32Array {
  return streamRng('epochOrder', seed, epoch).permutation(n);
}

/** The pipeline a spec names (rebuilt the same inside every loader thread). */
export function buildPipeline(spec: PipelineSpec): Pipeline {
  return makePipeline(spec.kind, {
    size: spec.size,
    mean: spec.mean,
    std: spec.std,
    family: spec.family,
  });
}
