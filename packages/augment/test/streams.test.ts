import { describe, expect, it } from 'vitest';
import {
  RANDOM_STREAMS,
  epochPermutation,
  loaderViewRngs,
  streamRng,
  type RandomStreamName,
} from '../src/index.js';

const draws = (name: RandomStreamName, seed: number, epoch = 0, step = 0) => {
  const r = streamRng(name, seed, epoch, step);
  return [r.next(), r.next(), r.next()];
};

describe('random streams', () => {
  const names = Object.keys(RANDOM_STREAMS) as RandomStreamName[];

  it('each stream is a function of (seed, epoch, step) alone', () => {
    for (const name of names) expect(draws(name, 7, 3, 11)).toEqual(draws(name, 7, 3, 11));
    // Streams that depend on the epoch and step give other numbers for another epoch or step.
    for (const name of ['batchViews', 'shuffle'] as const) {
      expect(draws(name, 7, 3, 11)).not.toEqual(draws(name, 7, 4, 11));
      expect(draws(name, 7, 3, 11)).not.toEqual(draws(name, 7, 3, 12));
      expect(draws(name, 7, 3, 11)).not.toEqual(draws(name, 8, 3, 11));
    }
    expect(draws('epochOrder', 7, 3)).not.toEqual(draws('epochOrder', 7, 4));
    // The evaluation stream is fixed: the test pipeline draws nothing from it.
    expect(draws('evaluation', 1)).toEqual(draws('evaluation', 2));
  });

  it('different purposes draw different numbers from the same seed', () => {
    const seen = new Set(
      names.filter((n) => n !== 'evaluation').map((n) => JSON.stringify(draws(n, 5, 1, 1))),
    );
    expect(seen.size).toBe(names.length - 1);
  });

  it('the loader and the trainer read the same streams', () => {
    const order = streamRng('epochOrder', 3, 2).permutation(50);
    expect(Array.from(epochPermutation(3, 2, 50))).toEqual(Array.from(order));
    const batch = streamRng('batchViews', 3, 2, 9);
    batch.fork(0); // the query view's generator is forked first,
    const key = batch.fork(1); // then the key view's
    expect(loaderViewRngs(3, 2, 9, 1, 4).map((r) => r.next())).toEqual(
      [0, 1, 2, 3].map((i) => key.fork(i).next()),
    );
  });
});
