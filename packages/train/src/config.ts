import {
  METHOD_NAMES,
  ARCH_NAMES,
  checkPretrainedFile,
  resolvePretrained,
  type MethodName,
  type ArchName,
} from '@maskcon/model';

export type BackendChoice =
  | 'auto'
  | 'tfjs-node-gpu'
  | 'tfjs-node'
  | 'native'
  | 'native-memory'
  | 'wasm'
  | 'cpu';
export type PipelineKind = 'strong' | 'weak' | 'test';

/** Everything that determines a training run. Same config + seed ⇒ same result. */
export interface TrainConfig {
  dataset: string;
  /** SQLite index to read (default: data/<dataset>.sqlite). */
  index?: string;
  method: MethodName;
  /** Which labels the method's target uses ('fine' = the SupFINE upper bound). */
  labels: 'coarse' | 'fine';
  arch: ArchName;
  /** resnet-mini stem width. */
  width: number;
  /** ResNet-18/34/50 base width (torchvision: 64). */
  baseWidth: number;
  /** 'auto' = small stem for images ≤ 64 px, standard otherwise. */
  stem: 'auto' | 'small' | 'standard';
  /** Backbone weights in torchvision's names (.pth or .safetensors), or 'imagenet' (torchvision's, from the cache). */
  pretrained?: string;
  /** Load a pretrained file whose conv1 does not fit the stem, keeping conv1 freshly initialised. */
  skipMismatchedStem: number;
  epochs: number;
  batchSize: number;
  lr: number;
  weightDecay: number;
  warmupEpochs: number;
  /** MaskCon/Grafit weight w. */
  w: number;
  /** MaskCon temperature τ. */
  t: number;
  /** Contrastive temperature τ0. */
  t0: number;
  /** Queue size K. */
  K: number;
  /** Key encoder momentum m. */
  m: number;
  bnSplits: number;
  /**
   * Images per forward/backward pass of a replica (gradient accumulation over whole BN groups:
   * same result, less memory). 0 = automatic: the replica's whole share when it is small
   * (share × H × W ≤ 65,536 pixels, e.g. 64 images of 32×32), else as many BN groups as fit.
   */
  microBatch: number;
  augQ: PipelineKind;
  augK: PipelineKind;
  /** Use only this many (seeded random) training images; 0 = all. */
  trainSubset: number;
  /** Evaluate on only this many (seeded random) test images; 0 = all. */
  testSubset: number;
  evalEvery: number;
  seed: number;
  backend: BackendChoice;
  /** Data-parallel worker threads (one replica each); 0 = as many as the machine has cores
   * (the largest count that divides the batch size and --bn-splits). */
  workers: number;
  /**
   * Augmentation threads (BatchLoader) that prepare the next batches while the model trains;
   * 0 = each replica augments its own share at the start of its step (same pixels either way);
   * -1 (`auto`, the default) = the cores the training workers leave free, at most 4. On CPU the
   * training workers use every core, and a loader thread beside them slows the step (measured:
   * Fashion-MNIST quick preset on 2 cores, 396 images/s inline vs 335 with one loader thread).
   */
  loaderWorkers: number;
  /** Write a checkpoint every this many epochs (and always after the last). */
  checkpointEvery: number;
  /** Runs database path. */
  runsDb: string;
}

export const DEFAULT_CONFIG: TrainConfig = {
  dataset: 'fashion_mnist',
  method: 'maskcon',
  labels: 'coarse',
  arch: 'resnet-mini',
  width: 32,
  baseWidth: 64,
  stem: 'auto',
  skipMismatchedStem: 0,
  epochs: 200,
  batchSize: 128,
  lr: 0.02,
  weightDecay: 5e-4,
  warmupEpochs: 5,
  w: 1,
  t: 0.1,
  t0: 0.1,
  K: 8192,
  m: 0.99,
  bnSplits: 4,
  microBatch: 0,
  augQ: 'strong',
  augK: 'weak',
  trainSubset: 0,
  testSubset: 0,
  evalEvery: 10,
  seed: 0,
  backend: 'auto',
  workers: 0,
  loaderWorkers: -1,
  checkpointEvery: 1,
  runsDb: process.env.MASKCON_RUNS ?? 'runs/runs.sqlite',
};

/**
 * Named presets. `quick` is the README's default job: a few minutes on two CPU cores,
 * still long enough for MaskCon to pull ahead of SelfCon on Fashion-MNIST.
 */
export const PRESETS: Record<string, Partial<TrainConfig>> = {
  // The dataset's own paper setting (recipes.ts: network, schedule, w/τ) is applied over this.
  paper: { epochs: 200, batchSize: 128, lr: 0.02, warmupEpochs: 5, K: 8192, arch: 'resnet18' },
  quick: {
    epochs: 4,
    batchSize: 128,
    lr: 0.05,
    warmupEpochs: 1,
    K: 4096,
    width: 16,
    trainSubset: 20000,
    testSubset: 5000,
    evalEvery: 0,
  },
  tiny: {
    epochs: 1,
    batchSize: 32,
    lr: 0.05,
    warmupEpochs: 0,
    K: 256,
    width: 4,
    trainSubset: 512,
    testSubset: 256,
    evalEvery: 0,
    bnSplits: 2,
  },
};

export { paperPreset } from './recipes.js';

export const BACKEND_CHOICES: readonly BackendChoice[] = [
  'auto',
  'tfjs-node-gpu',
  'tfjs-node',
  'native',
  'native-memory',
  'wasm',
  'cpu',
];
export const PIPELINE_KINDS: readonly PipelineKind[] = ['strong', 'weak', 'test'];

/**
 * Checks every hyperparameter before any work; throws a sentence naming the bad value. Then the
 * pretrained file, unless `checkFiles` is false (a plan reports a missing file instead).
 */
export function validateConfig(cfg: TrainConfig, { checkFiles = true } = {}): void {
  const bad = (msg: string) => {
    throw new Error(`Invalid configuration: ${msg}`);
  };
  if (!METHOD_NAMES.includes(cfg.method))
    bad(`unknown --method ${cfg.method}; known: ${METHOD_NAMES.join(', ')}.`);
  if (!ARCH_NAMES.includes(cfg.arch))
    bad(`unknown --arch ${cfg.arch}; known: ${ARCH_NAMES.join(', ')}.`);
  if (!BACKEND_CHOICES.includes(cfg.backend))
    bad(`unknown --backend ${cfg.backend}; known: ${BACKEND_CHOICES.join(', ')}.`);
  if (!PIPELINE_KINDS.includes(cfg.augQ) || !PIPELINE_KINDS.includes(cfg.augK))
    bad(`--aug-q/--aug-k must be one of ${PIPELINE_KINDS.join(', ')}.`);
  if (cfg.labels !== 'coarse' && cfg.labels !== 'fine')
    bad(`--labels must be coarse or fine, got ${cfg.labels}.`);
  const posInt = (name: string, v: number) => {
    if (!(Number.isInteger(v) && v > 0)) bad(`${name} must be a positive integer, got ${v}.`);
  };
  posInt('--epochs', cfg.epochs);
  posInt('--batch-size', cfg.batchSize);
  posInt('--width', cfg.width);
  posInt('--base-width', cfg.baseWidth);
  if (!['auto', 'small', 'standard'].includes(cfg.stem))
    bad(`--stem must be auto, small or standard, got ${cfg.stem}.`);
  posInt('--K', cfg.K);
  posInt('--bn-splits', cfg.bnSplits);
  if (!(cfg.w >= 0 && cfg.w <= 1)) bad(`--w must be in [0, 1], got ${cfg.w}.`);
  if (!(cfg.t > 0)) bad(`--t (τ) must be > 0, got ${cfg.t}.`);
  if (!(cfg.t0 > 0)) bad(`--t0 (τ0) must be > 0, got ${cfg.t0}.`);
  if (!(cfg.lr > 0)) bad(`--lr must be > 0, got ${cfg.lr}.`);
  if (!(cfg.weightDecay >= 0)) bad(`--wd must be ≥ 0, got ${cfg.weightDecay}.`);
  if (!(cfg.m >= 0 && cfg.m < 1)) bad(`--m must be in [0, 1), got ${cfg.m}.`);
  if (!(cfg.warmupEpochs >= 0)) bad(`--warmup-epochs must be ≥ 0, got ${cfg.warmupEpochs}.`);
  if (cfg.K % cfg.batchSize !== 0)
    bad(`--K ${cfg.K} must be a multiple of --batch-size ${cfg.batchSize}.`);
  if (cfg.batchSize % cfg.bnSplits !== 0)
    bad(`--batch-size ${cfg.batchSize} must be divisible by --bn-splits ${cfg.bnSplits}.`);
  if (!(Number.isInteger(cfg.microBatch) && cfg.microBatch >= 0))
    bad(`--micro-batch must be a non-negative integer (0 = automatic), got ${cfg.microBatch}.`);
  const group = cfg.batchSize / cfg.bnSplits;
  if (
    cfg.microBatch > 0 &&
    (cfg.microBatch % group !== 0 || cfg.batchSize % cfg.microBatch !== 0)
  ) {
    bad(
      `--micro-batch ${cfg.microBatch} must be a multiple of the BN group size (${group} = --batch-size / --bn-splits) that divides --batch-size ${cfg.batchSize}.`,
    );
  }
  if (!(Number.isInteger(cfg.trainSubset) && cfg.trainSubset >= 0))
    bad(`--train-subset must be a non-negative integer, got ${cfg.trainSubset}.`);
  if (!(Number.isInteger(cfg.testSubset) && cfg.testSubset >= 0))
    bad(`--test-subset must be a non-negative integer, got ${cfg.testSubset}.`);
  if (!(Number.isInteger(cfg.evalEvery) && cfg.evalEvery >= 0))
    bad(`--eval-every must be a non-negative integer, got ${cfg.evalEvery}.`);
  if (!(Number.isInteger(cfg.workers) && cfg.workers >= 0))
    bad(`--workers must be a non-negative integer (0 = one per core), got ${cfg.workers}.`);
  if (cfg.workers > 0 && cfg.batchSize % cfg.workers !== 0)
    bad(`--batch-size ${cfg.batchSize} must be divisible by --workers ${cfg.workers}.`);
  if (cfg.workers > 0 && cfg.bnSplits % cfg.workers !== 0)
    bad(
      `--bn-splits ${cfg.bnSplits} must be a multiple of --workers ${cfg.workers} (each worker holds whole BatchNorm groups).`,
    );
  if (!(Number.isInteger(cfg.loaderWorkers) && cfg.loaderWorkers >= -1))
    bad(
      `--loader-workers must be auto or a non-negative integer (0 = augment inside the training workers), got ${cfg.loaderWorkers}.`,
    );
  if (!(Number.isInteger(cfg.checkpointEvery) && cfg.checkpointEvery > 0))
    bad(`--checkpoint-every must be a positive integer (epochs), got ${cfg.checkpointEvery}.`);
  if (!Number.isInteger(cfg.seed)) bad(`--seed must be an integer, got ${cfg.seed}.`);
  // Files last: a mistyped number is reported before missing weights (which take a download).
  if (checkFiles && cfg.pretrained !== undefined) {
    try {
      // 'imagenet' needs its cached file (fetch first); a .pth's pickle is checked now, so a
      // hostile or broken file stops the run before any model is built.
      checkPretrainedFile(resolvePretrained(cfg.pretrained, cfg.arch));
    } catch (error) {
      bad((error as Error).message);
    }
  }
}

/** Checks that depend on the data: K no larger than the training set, a full batch exists. */
export function validateAgainstData(cfg: TrainConfig, trainSize: number): void {
  if (cfg.K > trainSize)
    throw new Error(
      `Invalid configuration: --K ${cfg.K} is larger than the training set (${trainSize} images); lower --K.`,
    );
  if (cfg.batchSize > trainSize)
    throw new Error(
      `Invalid configuration: --batch-size ${cfg.batchSize} is larger than the training set (${trainSize} images).`,
    );
}

/** Loader threads of a run: --loader-workers, or for auto (-1) the cores left free by `trainingWorkers` (≤ 4). */
export function resolveLoaderWorkers(
  cfg: TrainConfig,
  cores: number,
  trainingWorkers: number,
): number {
  return cfg.loaderWorkers >= 0
    ? cfg.loaderWorkers
    : Math.max(0, Math.min(4, cores - trainingWorkers));
}

/** The worker count a run uses: --workers, or for 0 the most cores that divide batch and BN groups. */
export function resolveWorkers(cfg: TrainConfig, cores: number): number {
  if (cfg.workers > 0) return cfg.workers;
  for (let w = Math.max(1, cores); w > 1; w--)
    if (cfg.batchSize % w === 0 && cfg.bnSplits % w === 0) return w;
  return 1;
}

/** Largest pass that keeps activations small: see TrainConfig.microBatch. */
export const AUTO_PASS_PIXELS = 65536;

/**
 * Images per pass of a replica holding `share` images in groups of `group`, for images of
 * `size`×`size`: `microBatch` when set, else the largest multiple of the group dividing the
 * share with at most AUTO_PASS_PIXELS pixels per pass (at least one group).
 */
export function resolveMicroBatch(
  microBatch: number,
  share: number,
  group: number,
  size: number,
  fits: (images: number) => boolean = () => true,
): number {
  if (microBatch > 0) {
    if (share % microBatch !== 0)
      throw new Error(
        `Invalid configuration: --micro-batch ${microBatch} must divide each worker's share of the batch (${share} images).`,
      );
    return microBatch;
  }
  let best = group;
  for (let m = group; m <= share; m += group)
    if (share % m === 0 && m * size * size <= AUTO_PASS_PIXELS && fits(m)) best = m;
  return best;
}

/**
 * Approximate peak memory (MB, process RSS) of one training pass of `images` images on the
 * wasm backend, from measurements of this project's step (2026-11, ResNet-18/34/50, small stem
 * at 32×32 and standard stem at 224×224, peak RSS over two steps): about 600 MB plus 16 bytes
 * per parameter (both encoders, momentum, gradients), plus a per-architecture cost per pixel
 * after the stem (32×32 small stem: 1,024; 224×224 standard stem: 56² = 3,136) and image, 30 %
 * lower behind the small stem. Null for resnet-mini (small at any size the project trains it on).
 */
export function estimatePassMB(
  arch: TrainConfig['arch'],
  stemPixels: number,
  images: number,
  params: number,
  stem: 'small' | 'standard' = 'standard',
): number | null {
  const kbPerStemPixel: Partial<Record<TrainConfig['arch'], number>> = {
    resnet18: 36,
    resnet34: 50,
    resnet50: 140,
  };
  const k = kbPerStemPixel[arch];
  if (k === undefined) return null;
  return (
    600 + (params * 16) / 1e6 + (images * stemPixels * k * (stem === 'small' ? 0.7 : 1)) / 1000
  );
}

/** What one wasm heap (4 GB address space) holds in process RSS, with room for JS. */
export const WASM_PASS_BUDGET_MB = 3900;
