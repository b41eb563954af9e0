import type { CoarseFineDataset } from '@maskcon/datasets';
import { describe, expect, it } from 'vitest';
import type { TrainConfig } from '../src/config.js';
import { pipelineSpec } from '../src/replica.js';

/** A csv-built train split: first image 341 px high, channel statistics of its own. */
function csvTrainSet(imageSize: number | undefined): CoarseFineDataset {
  return {
    imageSize,
    channelMean: [0.5, 0.4, 0.3],
    channelStd: [0.2, 0.2, 0.2],
    image: () => ({ data: new Uint8Array(341 * 512 * 3), height: 341, width: 512, channels: 3 }),
  } as unknown as CoarseFineDataset;
}

describe('pipelineSpec for a dataset outside the recipe table (issue 12, csv)', () => {
  it('trains at the size the index records (--image-size), not the first image height', () => {
    const cfg = { dataset: 'shop' } as TrainConfig;
    expect(pipelineSpec(cfg, csvTrainSet(224), 'strong')).toEqual({
      kind: 'strong',
      size: 224,
      mean: [0.5, 0.4, 0.3],
      std: [0.2, 0.2, 0.2],
    });
    // An index built before --image-size existed keeps the old behaviour.
    expect(pipelineSpec(cfg, csvTrainSet(undefined), 'strong')).toMatchObject({ size: 341 });
  });
});
