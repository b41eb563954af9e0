import { describe, expect, it } from 'vitest';
import { METHOD_NAMES } from '@maskcon/model';
import { DATASET_NAMES } from '@maskcon/datasets';
import {
  DATASET_RECIPES,
  PAPER_BASE,
  paperPreset,
  pipelineSpec,
  runRecipe,
} from '../src/recipes.js';

/** A csv-built index's facts: a recorded crop size (or none), channel statistics of its own. */
const csvIndex = (imageSize: number | undefined) => ({
  imageSize,
  channelMean: [0.5, 0.4, 0.3],
  channelStd: [0.2, 0.2, 0.2],
});

describe('dataset recipes', () => {
  it('one entry per published dataset the builders know (csv excepted)', () => {
    expect(Object.keys(DATASET_RECIPES).sort()).toEqual(
      DATASET_NAMES.filter((d) => d !== 'csv').sort(),
    );
    for (const r of Object.values(DATASET_RECIPES)) {
      expect(r.mean.length).toBe(r.std.length);
      for (const m of Object.keys(r.paperMethods)) expect(METHOD_NAMES).toContain(m);
    }
    // The sizes and families of the seed's pipelines.
    expect([DATASET_RECIPES.cars196.size, DATASET_RECIPES.cars196.family]).toEqual([
      224,
      'cars196',
    ]);
    expect([DATASET_RECIPES.sop_split2.size, DATASET_RECIPES.sop_split2.family]).toEqual([
      224,
      'sop',
    ]);
    expect(DATASET_RECIPES.cifar100.size).toBe(32);
    expect(DATASET_RECIPES.fashion_mnist.size).toBe(28);
  });

  it('a table dataset takes the table, whatever its index says', () => {
    const r = runRecipe('cifartoy_bad', csvIndex(224), 'x.sqlite');
    expect(r).toEqual({
      size: 32,
      mean: [0.4914, 0.4822, 0.4465],
      std: [0.2023, 0.1994, 0.201],
      family: 'cifar',
      from: 'table',
    });
    expect(pipelineSpec(r, 'weak')).toEqual({
      kind: 'weak',
      size: 32,
      mean: r.mean,
      std: r.std,
      family: 'cifar',
    });
  });

  it('a user CSV dataset gets its recipe from its index: the recorded --image-size and statistics', () => {
    expect(pipelineSpec(runRecipe('shop', csvIndex(224), 'data/shop.sqlite'), 'strong')).toEqual({
      kind: 'strong',
      size: 224,
      mean: [0.5, 0.4, 0.3],
      std: [0.2, 0.2, 0.2],
      family: 'cifar',
    });
  });

  it('refuses a dataset with neither a table entry nor a recorded image size, naming it', () => {
    expect(() =>
      runRecipe('cifartoy_ugly', csvIndex(undefined), 'data/cifartoy_ugly.sqlite'),
    ).toThrow(
      /Dataset 'cifartoy_ugly' has no recipe: .*index data\/cifartoy_ugly\.sqlite records no image size/,
    );
  });

  it('the paper preset: base setting, the dataset row, the method values of seed Table 1', () => {
    expect(paperPreset('sop_split2', 'maskcon')).toMatchObject({
      ...PAPER_BASE,
      augQ: 'weak',
      augK: 'weak',
      w: 0.5,
      t: 0.05,
    });
    expect(paperPreset('imagenet32', 'maskcon')).toMatchObject({
      batchSize: 256,
      epochs: 100,
      K: 16384,
    });
    expect(paperPreset('cars196', 'coins').w).toBe(1);
    expect(paperPreset('cifar100', 'selfcon').w).toBeUndefined();
    expect(paperPreset('my_shoes', 'maskcon')).toEqual(PAPER_BASE);
  });
});
