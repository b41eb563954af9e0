import { streamRng } from '@maskcon/random';
import { describe, expect, it } from 'vitest';
import { epochPermutation, loaderViewRngs } from '../src/index.js';

describe('augment reads the named random streams of @maskcon/random', () => {
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
