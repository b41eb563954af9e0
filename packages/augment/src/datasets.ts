import { makePipeline, type Pipeline, type PipelineFamily, type PipelineKind } from './pipeline.js';

/** Normalisation mean/std per channel, as the paper's code uses them. */
export interface Normalization {
  mean: readonly number[];
  std: readonly number[];
}

const IMAGENET: Normalization = { mean: [0.485, 0.456, 0.406], std: [0.229, 0.224, 0.225] };

/** Per-dataset normalisation (issue #5). Fashion-MNIST uses its train-split pixel statistics. */
export const DATASET_NORMALIZATION: Readonly<Record<string, Normalization>> = {
  cifar100: { mean: [0.507, 0.487, 0.441], std: [0.267, 0.256, 0.276] },
  cifartoy: { mean: [0.4914, 0.4822, 0.4465], std: [0.2023, 0.1994, 0.201] },
  imagenet32: IMAGENET,
  sop_split1: IMAGENET,
  sop_split2: IMAGENET,
  cars196: IMAGENET,
  fashion_mnist: { mean: [0.286], std: [0.353] },
};

/** Output size and pipeline family per dataset. */
export const DATASET_AUGMENTATION: Readonly<
  Record<string, { size: number; family: PipelineFamily }>
> = {
  cifar100: { size: 32, family: 'cifar' },
  cifartoy: { size: 32, family: 'cifar' },
  imagenet32: { size: 32, family: 'cifar' },
  fashion_mnist: { size: 28, family: 'cifar' },
  sop_split1: { size: 224, family: 'sop' },
  sop_split2: { size: 224, family: 'sop' },
  cars196: { size: 224, family: 'cars196' },
};

/**
 * The paper's `kind` pipeline for a dataset, with its size and normalisation; any of
 * size/mean/std can be overridden (e.g. with an index's own channel statistics).
 */
export function datasetPipeline(
  dataset: string,
  kind: PipelineKind,
  overrides: { size?: number; mean?: readonly number[]; std?: readonly number[] } = {},
): Pipeline {
  const aug = DATASET_AUGMENTATION[dataset];
  const norm = DATASET_NORMALIZATION[dataset];
  if (!aug || !norm) {
    throw new Error(
      `No augmentation settings for dataset '${dataset}'. Known: ${Object.keys(DATASET_AUGMENTATION).join(', ')}; ` +
        'for another dataset call makePipeline(kind, { size, mean, std, family }).',
    );
  }
  return makePipeline(kind, {
    size: overrides.size ?? aug.size,
    mean: overrides.mean ?? norm.mean,
    std: overrides.std ?? norm.std,
    family: aug.family,
  });
}
