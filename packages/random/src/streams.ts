import { Rng } from './rng.js';

/**
 * Every random stream of a training run, in one table. Each stream is a function of
 * (seed, purpose, epoch, step) alone, so every data-parallel replica, loader thread and resumed
 * run draws the same numbers. The derivation constants are part of every stored run's results
 * (changing one changes what a seed trains): keep them.
 */

/** The hashed streams' derivation: (seed, epoch, step, stream id, position) → a 32-bit seed. */
function hashedRng(seed: number, epoch: number, step: number, id: number, pos: number): Rng {
  let h = Math.imul(seed ^ 0x9e3779b9, 0x85ebca6b);
  for (const v of [epoch, step, id, pos]) {
    h = Math.imul(h ^ (v + 0x632be5ab), 0xc2b2ae35);
    h ^= h >>> 15;
  }
  return new Rng(h >>> 0);
}

export const RANDOM_STREAMS = {
  /** Initial weights of the query encoder (createNetwork; the key encoder starts as its copy). */
  init: (seed: number) => new Rng(seed),
  /** The order training images are visited in `epoch` (epoch 0 is the queue fill). */
  epochOrder: (seed: number, epoch: number) => new Rng(seed).fork(0x5401).fork(epoch),
  /**
   * Augmentation of batch `step` of `epoch`: `.fork(0)` is the query view's and `.fork(1)` the
   * key view's generator, whose `.fork(i)` augments image i of the batch (loaderViewRngs).
   */
  batchViews: (seed: number, epoch: number, step: number) =>
    new Rng(seed).fork(0xba7c).fork(epoch).fork(step),
  /** The shuffle-BN permutation of batch `step` of `epoch`. */
  shuffle: (seed: number, epoch: number, step: number) => hashedRng(seed, epoch, step, 3, 0),
  /** Which training images a run uses (--train-subset). */
  trainSubset: (seed: number) => hashedRng(seed, 0, 0, 5, 1),
  /** Which test images a run evaluates on (--test-subset). */
  testSubset: (seed: number) => hashedRng(seed, 0, 0, 5, 2),
  /** Evaluation: the test pipeline draws no random numbers; it is handed this fixed generator. */
  evaluation: () => new Rng(0),
} as const satisfies Record<string, (seed: number, epoch: number, step: number) => Rng>;

export type RandomStreamName = keyof typeof RANDOM_STREAMS;

/** The generator of stream `purpose` at (seed, epoch, step). */
export function streamRng(purpose: RandomStreamName, seed: number, epoch = 0, step = 0): Rng {
  return RANDOM_STREAMS[purpose](seed, epoch, step);
}
