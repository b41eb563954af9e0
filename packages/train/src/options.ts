/**
 * The training flags: one schema (flag, value type, default, one line of description, parser)
 * from which `pnpm train --help` is generated and by which every flag is parsed and validated.
 * `pnpm sweep` reuses it. The TrainConfig type, defaults and presets live in config.ts.
 */
import {
  CliError,
  Command,
  CommanderError,
  commanderMessage,
  configureCommand,
  enumOption,
  intOption,
  numberOption,
  Option,
  pathOption,
} from '@maskcon/datasets';
import { ARCH_NAMES, METHOD_NAMES, METHODS } from '@maskcon/model';
import {
  DEFAULT_CONFIG,
  PRESETS,
  paperPreset,
  validateConfig,
  BACKEND_CHOICES,
  PIPELINE_KINDS,
  type TrainConfig,
} from './config.js';
import { tableRecipe } from './recipes.js';

export const PRESET_NAMES = Object.keys(PRESETS);

/** The preset of a run that names none: the paper's setting for its dataset and method. */
export const DEFAULT_PRESET = 'paper';

/** One training flag. */
export interface TrainOptionSpec {
  /** Long flag without dashes, e.g. `batch-size`. */
  flag: string;
  key: keyof TrainConfig;
  /** Placeholder of the value in help, e.g. `n`. */
  value: string;
  description: string;
  /** Parses and checks one value; errors name the flag. */
  parse: (raw: string) => unknown;
  /** Shown instead of DEFAULT_CONFIG[key] (e.g. `data/<dataset>.sqlite`). */
  defaultText?: string;
  /** Other spellings accepted but not listed in help (e.g. `--weight-decay` for `--wd`). */
  aliases?: string[];
  /** Value when the flag is given bare (e.g. `--skip-mismatched-stem` = 1). */
  bareValue?: string;
}

const int = (flag: string, min?: number) => intOption(`--${flag}`, { min });
const num = (flag: string) => numberOption(`--${flag}`);

const loaderWorkerCount = intOption('--loader-workers', { min: 0 });
const loaderWorkers = (raw: string): number => (raw === 'auto' ? -1 : loaderWorkerCount(raw));

const nonEmpty =
  (flag: string) =>
  (raw: string): string => {
    if (raw.trim() === '') throw new CliError(`${flag} takes a name, got an empty string.`);
    return raw;
  };

/**
 * Every flag `pnpm train` accepts, in help order. Ranges that depend on other flags (K a multiple
 * of the batch, w ∈ [0, 1], …) are checked by validateConfig once all flags are applied.
 */
export const TRAIN_OPTIONS: readonly TrainOptionSpec[] = [
  {
    flag: 'dataset',
    key: 'dataset',
    value: 'name',
    description: 'dataset to train on (its index is data/<name>.sqlite)',
    parse: nonEmpty('--dataset'),
  },
  {
    flag: 'index',
    key: 'index',
    value: 'file',
    description: 'SQLite index to read instead of the dataset default',
    parse: pathOption('--index'),
    defaultText: 'data/<dataset>.sqlite',
  },
  {
    flag: 'method',
    key: 'method',
    value: 'name',
    description: `training method: ${METHOD_NAMES.join(', ')}`,
    parse: enumOption('--method', METHOD_NAMES),
  },
  {
    flag: 'labels',
    key: 'labels',
    value: 'kind',
    description: "labels the method's target uses: coarse, or fine (the SupFINE upper bound)",
    parse: enumOption('--labels', ['coarse', 'fine'] as const),
  },
  {
    flag: 'arch',
    key: 'arch',
    value: 'name',
    description: `backbone: ${ARCH_NAMES.join(', ')}`,
    parse: enumOption('--arch', ARCH_NAMES),
  },
  {
    flag: 'width',
    key: 'width',
    value: 'n',
    description: 'resnet-mini stem width',
    parse: int('width', 1),
  },
  {
    flag: 'base-width',
    key: 'baseWidth',
    value: 'n',
    description: 'ResNet-18/34/50 base width (torchvision: 64)',
    parse: int('base-width', 1),
  },
  {
    flag: 'stem',
    key: 'stem',
    value: 'kind',
    description: 'auto (small for images ≤ 64 px), small (3×3 stride 1, no max-pool) or standard',
    parse: enumOption('--stem', ['auto', 'small', 'standard'] as const),
  },
  {
    flag: 'pretrained',
    key: 'pretrained',
    value: 'file',
    description:
      "backbone weights in torchvision names (.pth or .safetensors) to start from, 'imagenet' for torchvision's (pnpm weights fetch ARCH), or 'none' for random init",
    parse: pathOption('--pretrained'),
    defaultText: "the preset's (paper: imagenet)",
  },
  {
    flag: 'skip-mismatched-stem',
    key: 'skipMismatchedStem',
    value: '0|1',
    description: 'with --pretrained: keep conv1 freshly initialised when it does not fit the stem',
    parse: intOption('--skip-mismatched-stem', { min: 0, max: 1 }),
    bareValue: '1',
  },
  {
    flag: 'epochs',
    key: 'epochs',
    value: 'n',
    description: 'training epochs',
    parse: int('epochs', 1),
  },
  {
    flag: 'batch-size',
    key: 'batchSize',
    value: 'n',
    description: 'images per step (all workers together)',
    parse: int('batch-size', 1),
  },
  {
    flag: 'lr',
    key: 'lr',
    value: 'x',
    description: 'peak learning rate (SGD, cosine schedule after warm-up)',
    parse: num('lr'),
  },
  {
    flag: 'wd',
    key: 'weightDecay',
    value: 'x',
    description: 'weight decay (also --weight-decay)',
    parse: num('wd'),
    aliases: ['weight-decay'],
  },
  {
    flag: 'warmup-epochs',
    key: 'warmupEpochs',
    value: 'n',
    description: 'linear learning-rate warm-up epochs',
    parse: num('warmup-epochs'),
  },
  {
    flag: 'w',
    key: 'w',
    value: 'x',
    description: 'MaskCon / Grafit / CoIns weight w ∈ [0, 1]',
    parse: num('w'),
  },
  {
    flag: 't',
    key: 't',
    value: 'x',
    description: 'MaskCon temperature τ > 0',
    parse: num('t'),
  },
  {
    flag: 't0',
    key: 't0',
    value: 'x',
    description: 'contrastive temperature τ0 > 0',
    parse: num('t0'),
  },
  {
    flag: 'K',
    key: 'K',
    value: 'n',
    description: 'queue size K, a multiple of --batch-size (also --k)',
    parse: int('K', 1),
    aliases: ['k'],
  },
  {
    flag: 'm',
    key: 'm',
    value: 'x',
    description: 'key encoder momentum m ∈ [0, 1)',
    parse: num('m'),
  },
  {
    flag: 'bn-splits',
    key: 'bnSplits',
    value: 'n',
    description: 'BatchNorm groups per batch (shuffle-BN across groups)',
    parse: int('bn-splits', 1),
  },
  {
    flag: 'micro-batch',
    key: 'microBatch',
    value: 'n',
    description: 'images per forward/backward pass (whole BN groups); 0 = automatic',
    parse: int('micro-batch', 0),
  },
  {
    flag: 'aug-q',
    key: 'augQ',
    value: 'kind',
    description: `query view pipeline: ${PIPELINE_KINDS.join(', ')}`,
    parse: enumOption('--aug-q', PIPELINE_KINDS),
  },
  {
    flag: 'aug-k',
    key: 'augK',
    value: 'kind',
    description: `key view pipeline: ${PIPELINE_KINDS.join(', ')}`,
    parse: enumOption('--aug-k', PIPELINE_KINDS),
  },
  {
    flag: 'train-subset',
    key: 'trainSubset',
    value: 'n',
    description: 'train on this many seeded-random images; 0 = all',
    parse: int('train-subset', 0),
  },
  {
    flag: 'test-subset',
    key: 'testSubset',
    value: 'n',
    description: 'evaluate on this many seeded-random test images; 0 = all',
    parse: int('test-subset', 0),
  },
  {
    flag: 'eval-every',
    key: 'evalEvery',
    value: 'n',
    description: 'Recall@K every n epochs (and after the last); 0 = only after the last',
    parse: int('eval-every', 0),
  },
  {
    flag: 'seed',
    key: 'seed',
    value: 'n',
    description: 'seed of initialisation, data order and augmentation',
    parse: int('seed'),
  },
  {
    flag: 'backend',
    key: 'backend',
    value: 'name',
    description: `compute backend: ${BACKEND_CHOICES.join(', ')}`,
    parse: enumOption('--backend', BACKEND_CHOICES),
  },
  {
    flag: 'workers',
    key: 'workers',
    value: 'n',
    description: 'data-parallel training threads; 0 = one per core (dividing batch and BN groups)',
    parse: int('workers', 0),
  },
  {
    flag: 'loader-workers',
    key: 'loaderWorkers',
    value: 'n|auto',
    description: 'augmentation threads; 0 = inside the training workers, auto = free cores (≤ 4)',
    parse: loaderWorkers,
    defaultText: 'auto',
  },
  {
    flag: 'checkpoint-every',
    key: 'checkpointEvery',
    value: 'n',
    description: 'write a checkpoint every n epochs (and after the last)',
    parse: int('checkpoint-every', 1),
  },
  {
    flag: 'runs-db',
    key: 'runsDb',
    value: 'file',
    description: 'runs database ($MASKCON_RUNS)',
    parse: pathOption('--runs-db'),
  },
];

const BY_KEY = new Map(TRAIN_OPTIONS.map((o) => [o.key, o]));

/** The flag of a TrainConfig key, e.g. `batchSize` → `--batch-size`. */
export function flagOf(key: keyof TrainConfig): string {
  const o = BY_KEY.get(key);
  if (!o) throw new Error(`No training flag for ${String(key)}.`);
  return `--${o.flag}`;
}

function defaultText(o: TrainOptionSpec): string {
  if (o.defaultText !== undefined) return o.defaultText;
  const v = DEFAULT_CONFIG[o.key];
  return typeof v === 'string' ? v : String(v);
}

/** commander's attribute name of a flag (`batch-size` → `batchSize`, `K` → `K`). */
function attributeName(flag: string): string {
  return flag.replace(/-([a-z])/g, (_, c: string) => c.toUpperCase());
}

/** One line per registered method, from the methods registry. */
const methodText = METHOD_NAMES.map(
  (name) => `  ${name.padEnd(8)} ${METHODS[name].description}`,
).join('\n');

const presetText = Object.entries(PRESETS)
  .map(
    ([name, p]) =>
      `  ${name.padEnd(6)} ${Object.entries(p)
        .map(([k, v]) => `${flagOf(k as keyof TrainConfig)} ${v}`)
        .join(', ')}`,
  )
  .join('\n');

/**
 * Adds the training flags (and `--preset`) to a command. `except` leaves out flags the command
 * defines itself (e.g. sweep's list-valued --w and --t).
 */
export function addTrainOptions(cmd: Command, except: readonly string[] = []): Command {
  cmd.addOption(
    new Option(
      '--preset <name>',
      `start from a preset (${PRESET_NAMES.join(', ')}; paper — the default — is the authors' setting for the dataset: ResNet-18, ImageNet weights, the paper's w/τ per method); flags override it`,
    ).argParser(enumOption('--preset', PRESET_NAMES)),
  );
  for (const o of TRAIN_OPTIONS) {
    if (except.includes(o.flag)) continue;
    const value = o.bareValue !== undefined ? `[${o.value}]` : `<${o.value}>`;
    const opt = new Option(
      `--${o.flag} ${value}`,
      `${o.description} (default: ${defaultText(o)})`,
    ).argParser(o.parse);
    if (o.bareValue !== undefined) opt.preset(o.bareValue);
    cmd.addOption(opt);
    for (const alias of o.aliases ?? [])
      cmd.addOption(new Option(`--${alias} ${value}`).argParser(o.parse).hideHelp());
  }
  cmd.addHelpText(
    'after',
    `\nMethods (--method):\n${methodText}\n\nPresets (applied first; every flag overrides them):\n${presetText}\n`,
  );
  return cmd;
}

/**
 * The TrainConfig from a command's parsed options: defaults, then the preset (with the paper's
 * per-dataset values for `paper`), then every given flag; then validateConfig (with
 * `checkFiles: false`, the pretrained file is left to the caller, as `--plan` reports it).
 */
export function trainConfigFromOptions(
  opts: Record<string, unknown>,
  { checkFiles = true } = {},
): TrainConfig {
  const given = new Map<keyof TrainConfig, unknown>();
  for (const o of TRAIN_OPTIONS)
    for (const f of [o.flag, ...(o.aliases ?? [])]) {
      const v = opts[attributeName(f)];
      if (v !== undefined) given.set(o.key, v);
    }
  let cfg: TrainConfig = { ...DEFAULT_CONFIG };
  // No --preset means the paper's setting for the dataset (`--preset quick` is the demo).
  const preset = (opts.preset as string | undefined) ?? DEFAULT_PRESET;
  {
    const paper =
      preset === 'paper'
        ? paperPreset(
            (given.get('dataset') as string | undefined) ?? cfg.dataset,
            (given.get('method') as string | undefined) ?? cfg.method,
          )
        : {};
    cfg = { ...cfg, ...PRESETS[preset], ...paper };
  }
  const out = cfg as unknown as Record<string, unknown>;
  for (const [key, v] of given) out[key] = v;
  if (cfg.pretrained === 'none') delete cfg.pretrained;
  if (METHODS[cfg.method]?.labels === 'fine') cfg.labels = 'fine';
  validateConfig(cfg, { checkFiles });
  return cfg;
}

/**
 * The resolved configuration as one compact block (printed when a run starts): what the run
 * computes, grouped, every value after presets and flags.
 */
export function formatConfig(cfg: TrainConfig, preset: string = DEFAULT_PRESET): string {
  const net =
    cfg.arch === 'resnet-mini'
      ? `resnet-mini width ${cfg.width}`
      : `${cfg.arch} base width ${cfg.baseWidth}, stem ${cfg.stem}`;
  const init =
    cfg.pretrained === undefined
      ? 'random init'
      : `pretrained ${cfg.pretrained}${cfg.skipMismatchedStem ? ' (conv1 fresh if it does not fit)' : ''}`;
  const size = tableRecipe(cfg.dataset)?.size;
  const lines = [
    `config (preset ${preset}; flags override):`,
    `  data     ${cfg.dataset}${cfg.index ? ` (${cfg.index})` : ''}, ${size ? `${size}×${size} px` : 'image size from its index'}, labels ${cfg.labels}, train subset ${cfg.trainSubset || 'all'}, test subset ${cfg.testSubset || 'all'}`,
    `  network  ${net}, ${init}, projector 512 → 128`,
    `  method   ${cfg.method} w ${cfg.w} τ ${cfg.t} τ0 ${cfg.t0}, K ${cfg.K}, m ${cfg.m}, aug q/k ${cfg.augQ}/${cfg.augK}`,
    `  schedule ${cfg.epochs} epochs (${cfg.warmupEpochs} warm-up), batch ${cfg.batchSize}, lr ${cfg.lr}, wd ${cfg.weightDecay}, BN splits ${cfg.bnSplits}`,
    `  run      seed ${cfg.seed}, backend ${cfg.backend}, workers ${cfg.workers || 'auto'}, eval every ${cfg.evalEvery || 'end'}, runs DB ${cfg.runsDb}`,
  ];
  return lines.join('\n');
}

/** A command that only parses training flags (no output, errors thrown). */
function trainFlagsCommand(): Command {
  return addTrainOptions(configureCommand(new Command('train')))
    .configureOutput({ writeOut: () => {}, writeErr: () => {}, outputError: () => {} })
    .allowExcessArguments(false);
}

/**
 * Parses `--flag value` / `--flag=value` training arguments (as `pnpm train` does), applying
 * `--preset` first; throws a sentence naming the bad flag or value.
 */
export function parseTrainArgs(argv: readonly string[]): TrainConfig {
  const cmd = trainFlagsCommand();
  try {
    cmd.parse([...argv], { from: 'user' });
  } catch (err) {
    if (err instanceof CommanderError) throw new CliError(commanderMessage(err));
    throw err;
  }
  return trainConfigFromOptions(cmd.opts());
}
