import type { PipelineFamily, PipelineKind, PipelineSpec } from '@maskcon/augment';
import type { MethodName, MethodParams } from '@maskcon/model';
import type { TrainConfig } from './config.js';

/**
 * Dataset recipes: per dataset, one table entry with everything a run takes from the dataset's
 * identity — image size, normalisation, augmentation family, and what the paper trains on it
 * (`--preset paper`: network, schedule, and w / τ per method). To add a dataset, add its entry
 * here (its source module lives in @maskcon/datasets). A user CSV dataset has no entry: its
 * recipe comes from its index (`recipeFromIndex`); any other dataset is refused by name.
 */
export interface DatasetRecipe {
  /** Side of the training crops and of the test images (px). */
  size: number;
  /** Per-channel normalisation of pixels scaled to [0, 1]. */
  mean: readonly number[];
  std: readonly number[];
  /** Augmentation family: which strong / weak pipelines of @maskcon/augment it uses. */
  family: PipelineFamily;
  /**
   * Train-split images of the published data (packages/datasets/README.md), for a plan made
   * before the index is built. sop_split1's depends on the recipe's seed: the paper's is given.
   */
  trainImages: number;
  /** `--preset paper` on this dataset, over PAPER_BASE: network, schedule, pipelines. */
  paper: Partial<TrainConfig>;
  /** The paper's w / τ per method on this dataset (seed Table 1 and its appendix). */
  paperMethods: Partial<Record<MethodName, Partial<MethodParams>>>;
}

/**
 * The paper's setting wherever a dataset does not say otherwise (seed; docs/method.md): SGD with
 * batch 128, lr 0.02, weight decay 5e-4, 200 epochs with 5 warm-up, K 8192, τ0 0.1, m 0.99.
 */
export const PAPER_BASE: Partial<TrainConfig> = {
  epochs: 200,
  batchSize: 128,
  lr: 0.02,
  warmupEpochs: 5,
  K: 8192,
  weightDecay: 5e-4,
  t0: 0.1,
  m: 0.99,
};

/**
 * The authors' network (their released models/model.py): torchvision ResNet-18 with
 * `pretrained=True` (ImageNet weights) for every dataset, projector 512 → 128 (the replica's
 * head). Images ≤ 64 px get the small stem — conv1 3×3 stride 1, no max-pool — whose conv1 stays
 * freshly initialised (the 7×7 ImageNet kernel cannot load into it); larger images keep the
 * standard stem and all of ImageNet's weights.
 */
const PAPER_NET_SMALL: Partial<TrainConfig> = {
  arch: 'resnet18',
  baseWidth: 64,
  stem: 'small',
  pretrained: 'imagenet',
  skipMismatchedStem: 1,
};
const PAPER_NET_224: Partial<TrainConfig> = {
  arch: 'resnet18',
  baseWidth: 64,
  stem: 'standard',
  pretrained: 'imagenet',
  skipMismatchedStem: 0,
};

const IMAGENET = { mean: [0.485, 0.456, 0.406], std: [0.229, 0.224, 0.225] } as const;
const CIFARTOY: Omit<DatasetRecipe, 'paper'> = {
  size: 32,
  trainImages: 40_000,
  mean: [0.4914, 0.4822, 0.4465],
  std: [0.2023, 0.1994, 0.201],
  family: 'cifar',
  paperMethods: { maskcon: { w: 1, t: 0.05 } },
};

export const DATASET_RECIPES = {
  cifar100: {
    size: 32,
    trainImages: 50_000,
    mean: [0.507, 0.487, 0.441],
    std: [0.267, 0.256, 0.276],
    family: 'cifar',
    paper: PAPER_NET_SMALL,
    paperMethods: { maskcon: { w: 1, t: 0.05 }, grafit: { w: 0.8 }, coins: { w: 0.5 } },
  },
  cifartoy_good: { ...CIFARTOY, paper: PAPER_NET_SMALL },
  cifartoy_bad: { ...CIFARTOY, paper: PAPER_NET_SMALL },
  imagenet32: {
    size: 32,
    trainImages: 1_281_167,
    ...IMAGENET,
    family: 'cifar',
    paper: { ...PAPER_NET_SMALL, batchSize: 256, epochs: 100, K: 16384 },
    paperMethods: {},
  },
  // Fashion-MNIST is not in the paper: its train-split pixel statistics, the CIFAR pipeline, the
  // small-stem network of the other small-image datasets at its own 28 px (the demo preset
  // `quick` trains at that size too; conv1 takes one channel, so it is fresh either way).
  fashion_mnist: {
    size: 28,
    trainImages: 60_000,
    mean: [0.286],
    std: [0.353],
    family: 'cifar',
    paper: PAPER_NET_SMALL,
    paperMethods: {},
  },
  // SOP uses the weak pipeline for both views, as the seed says.
  sop_split1: {
    size: 224,
    trainImages: 25_368, // the paper's 2,517 products; the recipe's count depends on --seed
    ...IMAGENET,
    family: 'sop',
    paper: { ...PAPER_NET_224, augQ: 'weak', augK: 'weak' },
    paperMethods: { maskcon: { w: 0.8, t: 0.1 }, grafit: { w: 0.8 }, coins: { w: 0.5 } },
  },
  sop_split2: {
    size: 224,
    trainImages: 14_980, // 1,498 products with 12 images, 10 of each in train
    ...IMAGENET,
    family: 'sop',
    paper: { ...PAPER_NET_224, augQ: 'weak', augK: 'weak' },
    paperMethods: { maskcon: { w: 0.5, t: 0.05 }, grafit: { w: 0.8 }, coins: { w: 0.2 } },
  },
  cars196: {
    size: 224,
    trainImages: 8_144,
    ...IMAGENET,
    family: 'cars196',
    paper: PAPER_NET_224,
    paperMethods: { maskcon: { w: 1, t: 0.1 }, grafit: { w: 1 }, coins: { w: 1 } },
  },
} as const satisfies Record<string, DatasetRecipe>;

export type RecipeName = keyof typeof DATASET_RECIPES;

/** The table's recipe for `dataset`, or undefined when it has none. */
export function tableRecipe(dataset: string): DatasetRecipe | undefined {
  return Object.hasOwn(DATASET_RECIPES, dataset)
    ? (DATASET_RECIPES as Record<string, DatasetRecipe>)[dataset]
    : undefined;
}

/**
 * `--preset paper` for a dataset and method: PAPER_BASE, the dataset's paper setting, and the
 * paper's w / τ for the method on it. A dataset without a recipe gets PAPER_BASE.
 */
export function paperPreset(dataset: string, method: string): Partial<TrainConfig> {
  const recipe = tableRecipe(dataset);
  const hp = recipe?.paperMethods[method as MethodName] ?? {};
  return { ...PAPER_BASE, ...recipe?.paper, ...hp };
}

/** What a run's pipelines and exported model take from its dataset's recipe. */
export interface RunRecipe {
  size: number;
  mean: readonly number[];
  std: readonly number[];
  family: PipelineFamily;
  /** 'table' = DATASET_RECIPES; 'index' = a user CSV dataset's own metadata. */
  from: 'table' | 'index';
}

/** The parts of an opened index a recipe may read. */
export interface IndexFacts {
  readonly imageSize?: number;
  readonly channelMean: readonly number[];
  readonly channelStd: readonly number[];
}

/**
 * A user CSV dataset's recipe, from its index: the crop size it was built with
 * (`--image-size`), its train split's channel statistics, and the CIFAR-style pipeline.
 */
export function recipeFromIndex(dataset: string, index: IndexFacts, indexPath: string): RunRecipe {
  if (index.imageSize === undefined)
    throw new Error(
      `Dataset '${dataset}' has no recipe: it is none of ${Object.keys(DATASET_RECIPES).join(', ')}, ` +
        `and its index ${indexPath} records no image size (user CSV indexes built with --image-size do). ` +
        `Pass the --dataset it was built as, or rebuild it: pnpm datasets:build csv --name ${dataset} --image-size N --force.`,
    );
  return {
    size: index.imageSize,
    mean: index.channelMean,
    std: index.channelStd,
    family: 'cifar',
    from: 'index',
  };
}

/** The recipe a run on `dataset` (read from `index`) uses: the table's, else the index's own. */
export function runRecipe(dataset: string, index: IndexFacts, indexPath: string): RunRecipe {
  const r = tableRecipe(dataset);
  if (r) return { size: r.size, mean: r.mean, std: r.std, family: r.family, from: 'table' };
  return recipeFromIndex(dataset, index, indexPath);
}

/** The pipeline of `kind` for a recipe, as a spec loader threads rebuild it from. */
export function pipelineSpec(recipe: RunRecipe, kind: PipelineKind): PipelineSpec {
  return { kind, size: recipe.size, mean: recipe.mean, std: recipe.std, family: recipe.family };
}
