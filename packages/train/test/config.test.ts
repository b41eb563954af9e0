import { copyFileSync, mkdirSync, mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { beforeAll, describe, expect, it } from 'vitest';
import { formatConfig } from '../src/options.js';
import {
  parseTrainArgs,
  resolveWorkers,
  validateAgainstData,
  DEFAULT_CONFIG,
} from '../src/index.js';

// The paper preset (the default) starts from `--pretrained imagenet`, which must be in the cache
// before any work: a cache holding the small committed .pth under torchvision's file name.
const noCache = mkdtempSync(join(tmpdir(), 'maskcon-nocache-'));
beforeAll(() => {
  const cache = mkdtempSync(join(tmpdir(), 'maskcon-cache-'));
  mkdirSync(join(cache, 'weights'));
  copyFileSync(
    join(import.meta.dirname, '../../model/test/fixtures/resnet18-w8-standard.pth'),
    join(cache, 'weights', 'resnet18-f37072fd.pth'),
  );
  process.env.MASKCON_CACHE = cache;
});

describe("paper presets (the authors' code: ResNet-18, ImageNet init, seed Table 1)", () => {
  it('no --preset means the paper setting for the dataset; quick stays the demo', () => {
    const small = ['cifar100', 'cifartoy_good', 'cifartoy_bad', 'imagenet32', 'fashion_mnist'];
    for (const dataset of small) {
      const c = parseTrainArgs(['--dataset', dataset]);
      expect(
        [c.arch, c.baseWidth, c.stem, c.pretrained, c.skipMismatchedStem, c.lr],
        dataset,
      ).toEqual(['resnet18', 64, 'small', 'imagenet', 1, 0.02]);
    }
    for (const dataset of ['sop_split1', 'sop_split2', 'cars196']) {
      const c = parseTrainArgs(['--dataset', dataset]);
      expect(
        [
          c.arch,
          c.baseWidth,
          c.stem,
          c.pretrained,
          c.skipMismatchedStem,
          c.epochs,
          c.batchSize,
          c.K,
        ],
        dataset,
      ).toEqual(['resnet18', 64, 'standard', 'imagenet', 0, 200, 128, 8192]);
    }
    // seed Table 1: w / τ per method on SOP-split1, SOP-split2, Cars196
    const table1: [string, string, number, number | undefined][] = [
      ['sop_split1', 'maskcon', 0.8, 0.1],
      ['sop_split2', 'maskcon', 0.5, 0.05],
      ['cars196', 'maskcon', 1, 0.1],
      ['sop_split1', 'grafit', 0.8, undefined],
      ['sop_split2', 'grafit', 0.8, undefined],
      ['cars196', 'grafit', 1, undefined],
      ['sop_split1', 'coins', 0.5, undefined],
      ['sop_split2', 'coins', 0.2, undefined],
      ['cars196', 'coins', 1, undefined],
    ];
    for (const [dataset, method, w, t] of table1) {
      const c = parseTrainArgs(['--dataset', dataset, '--method', method]);
      expect(c.w, `${method} on ${dataset}`).toBe(w);
      if (t !== undefined) expect(c.t, `${method} on ${dataset}`).toBe(t);
    }
    const inet = parseTrainArgs(['--dataset', 'imagenet32']);
    expect([inet.batchSize, inet.epochs, inet.K]).toEqual([256, 100, 16384]);
    // the demo preset is unchanged
    const quick = parseTrainArgs(['--preset', 'quick', '--dataset', 'fashion_mnist']);
    expect([quick.arch, quick.width, quick.epochs, quick.lr, quick.K, quick.pretrained]).toEqual([
      'resnet-mini',
      16,
      4,
      0.05,
      4096,
      undefined,
    ]);
    expect(parseTrainArgs(['--dataset', 'cars196', '--pretrained', 'none']).pretrained).toBe(
      undefined,
    );
  });

  it('stops before any work with the fetch command when the ImageNet weights are not cached', () => {
    const cache = process.env.MASKCON_CACHE;
    process.env.MASKCON_CACHE = noCache;
    try {
      expect(() => parseTrainArgs(['--dataset', 'sop_split2'])).toThrow(
        /ImageNet weights are not in the cache .*Fetch them first with: pnpm weights fetch resnet18/,
      );
    } finally {
      process.env.MASKCON_CACHE = cache;
    }
  });

  it('prints the resolved configuration as one compact block', () => {
    const text = formatConfig(parseTrainArgs(['--dataset', 'sop_split2', '--epochs', '3']));
    expect(text.split('\n')).toEqual([
      'config (preset paper; flags override):',
      '  data     sop_split2, 224×224 px, labels coarse, train subset all, test subset all',
      '  network  resnet18 base width 64, stem standard, pretrained imagenet, projector 512 → 128',
      '  method   maskcon w 0.5 τ 0.05 τ0 0.1, K 8192, m 0.99, aug q/k weak/weak',
      '  schedule 3 epochs (5 warm-up), batch 128, lr 0.02, wd 0.0005, BN splits 4',
      `  run      seed 0, backend auto, workers auto, eval every 10, runs DB ${DEFAULT_CONFIG.runsDb}`,
    ]);
  });
});

describe('training configuration', () => {
  it('applies the preset first and flags over it', () => {
    const c = parseTrainArgs(['--preset', 'quick', '--epochs', '7', '--w=0.5']);
    expect(c.epochs).toBe(7);
    expect(c.w).toBe(0.5);
    expect(c.width).toBe(16); // from the quick preset
    expect(c.K % c.batchSize).toBe(0);
  });

  it('takes the paper hyperparameters per dataset and method', () => {
    const sop = parseTrainArgs([
      '--preset',
      'paper',
      '--dataset',
      'sop_split2',
      '--method',
      'maskcon',
    ]);
    expect([sop.w, sop.t, sop.batchSize, sop.lr, sop.K, sop.epochs, sop.augQ, sop.augK]).toEqual([
      0.5,
      0.05,
      128,
      0.02,
      8192,
      200,
      'weak',
      'weak',
    ]);
    const grafit = parseTrainArgs([
      '--preset',
      'paper',
      '--dataset',
      'sop_split1',
      '--method',
      'grafit',
    ]);
    expect(grafit.w).toBe(0.8);
    const inet = parseTrainArgs(['--preset', 'paper', '--dataset', 'imagenet32']);
    expect([inet.batchSize, inet.epochs, inet.K]).toEqual([256, 100, 16384]);
    const cifar = parseTrainArgs(['--preset', 'paper', '--dataset', 'cifar100', '--t', '0.5']);
    expect([cifar.w, cifar.t]).toEqual([1, 0.5]);
  });

  it('rejects bad values with a sentence naming the flag and value', () => {
    expect(() => parseTrainArgs(['--w', '-0.1'])).toThrow('--w must be in [0, 1], got -0.1.');
    expect(() => parseTrainArgs(['--t', '0'])).toThrow('--t (τ) must be > 0, got 0.');
    expect(() => parseTrainArgs(['--K', '1000'])).toThrow(
      '--K 1000 must be a multiple of --batch-size 128.',
    );
    expect(() => parseTrainArgs(['--method', 'simclr'])).toThrow(
      '--method takes one of selfcon, maskcon, grafit, coins, supfine; got "simclr".',
    );
    expect(() => parseTrainArgs(['--epochs', 'ten'])).toThrow(
      '--epochs takes an integer ≥ 1, got "ten".',
    );
    expect(() => parseTrainArgs(['--epochs', '2.5'])).toThrow(
      '--epochs takes an integer ≥ 1, got "2.5".',
    );
    expect(() => parseTrainArgs(['--lr', ''])).toThrow('--lr takes a number, got "".');
    expect(() => parseTrainArgs(['--bogus', '1'])).toThrow("unknown option '--bogus'");
    expect(() => parseTrainArgs(['--epoch', '1'])).toThrow(
      "unknown option '--epoch'\n(Did you mean --epochs?)",
    );
    expect(() => parseTrainArgs(['--preset', 'huge'])).toThrow(
      '--preset takes one of paper, quick, tiny; got "huge".',
    );
    expect(() => parseTrainArgs(['--epochs'])).toThrow("option '--epochs <n>' argument missing");
    expect(() => validateAgainstData({ ...DEFAULT_CONFIG, K: 8192 }, 5000)).toThrow(
      '--K 8192 is larger than the training set (5000 images)',
    );
  });

  it('uses as many workers as cores that divide the batch and BN groups', () => {
    expect(resolveWorkers({ ...DEFAULT_CONFIG, workers: 0, batchSize: 128, bnSplits: 4 }, 2)).toBe(
      2,
    );
    expect(resolveWorkers({ ...DEFAULT_CONFIG, workers: 0, batchSize: 128, bnSplits: 4 }, 8)).toBe(
      4,
    );
    expect(resolveWorkers({ ...DEFAULT_CONFIG, workers: 0, batchSize: 96, bnSplits: 6 }, 5)).toBe(
      3,
    );
    expect(resolveWorkers({ ...DEFAULT_CONFIG, workers: 3, batchSize: 96, bnSplits: 6 }, 2)).toBe(
      3,
    );
    expect(resolveWorkers({ ...DEFAULT_CONFIG, workers: 0 }, 1)).toBe(1);
  });
});

describe('loader threads', () => {
  it('parses --loader-workers auto|N and gives the loader only the cores training leaves free', async () => {
    const { resolveLoaderWorkers } = await import('../src/config.js');
    expect(DEFAULT_CONFIG.loaderWorkers).toBe(-1);
    expect(parseTrainArgs(['--loader-workers', 'auto']).loaderWorkers).toBe(-1);
    expect(parseTrainArgs(['--loader-workers', '3']).loaderWorkers).toBe(3);
    expect(() => parseTrainArgs(['--loader-workers', '-2'])).toThrow(
      '--loader-workers takes an integer ≥ 0, got "-2".',
    );
    const auto = parseTrainArgs([]);
    expect(resolveLoaderWorkers(auto, 2, 2)).toBe(0); // every core trains
    expect(resolveLoaderWorkers(auto, 8, 2)).toBe(4); // at most 4
    expect(resolveLoaderWorkers(auto, 4, 1)).toBe(3);
    expect(resolveLoaderWorkers(parseTrainArgs(['--loader-workers', '1']), 2, 2)).toBe(1); // explicit wins
  });
});

describe('wasm pass memory estimate', () => {
  it('errs on the safe side of the peak RSS measured for ResNet-18/34/50 passes (≥ 90 %, ≤ 130 %; small stem 32×32, standard stem 224×224)', async () => {
    const { estimatePassMB } = await import('../src/config.js');
    const params = {
      resnet18: 11_689_512 - 513_000,
      resnet34: 21_797_672 - 513_000,
      resnet50: 25_557_032 - 2_049_000,
    };
    // [arch, stem pixels, stem, images per pass, measured peak RSS MB] (this project, wasm, lean gradients, 2026-11)
    const measured: [keyof typeof params, number, 'small' | 'standard', number, number][] = [
      ['resnet18', 1024, 'small', 32, 1464],
      ['resnet18', 1024, 'small', 64, 2248],
      ['resnet18', 3136, 'standard', 4, 1058],
      ['resnet18', 3136, 'standard', 8, 1499],
      ['resnet34', 3136, 'standard', 2, 1305],
      ['resnet34', 3136, 'standard', 4, 1612],
      ['resnet50', 3136, 'standard', 2, 1951],
      ['resnet50', 3136, 'standard', 4, 2808],
    ];
    for (const [arch, px, stem, n, rss] of measured) {
      const est = estimatePassMB(arch, px, n, params[arch], stem)!;
      expect(
        est / rss,
        `${arch} ${px} px × ${n}: estimate ${est.toFixed(0)} vs ${rss}`,
      ).toBeGreaterThan(0.9);
      expect(
        est / rss,
        `${arch} ${px} px × ${n}: estimate ${est.toFixed(0)} vs ${rss}`,
      ).toBeLessThan(1.3);
    }
    expect(estimatePassMB('resnet-mini', 784, 128, 100_000)).toBeNull();
  });
});

describe('training flags', () => {
  it('accept aliases, --flag=value, negative values and the bare --skip-mismatched-stem', () => {
    const c = parseTrainArgs([
      '--weight-decay=0.001',
      '--k',
      '256',
      '--batch-size',
      '32',
      '--seed',
      '-3',
      '--skip-mismatched-stem',
      '--aug-q',
      'weak',
    ]);
    expect([c.weightDecay, c.K, c.batchSize, c.seed, c.skipMismatchedStem, c.augQ]).toEqual([
      0.001,
      256,
      32,
      -3,
      1,
      'weak',
    ]);
    expect(parseTrainArgs(['--skip-mismatched-stem', '0']).skipMismatchedStem).toBe(0);
    expect(parseTrainArgs(['--method', 'supfine']).labels).toBe('fine');
  });

  it('map every TrainConfig key to exactly one listed flag', async () => {
    const { TRAIN_OPTIONS } = await import('../src/options.js');
    const keys = TRAIN_OPTIONS.map((o) => o.key).sort();
    expect(keys).toEqual(Object.keys(DEFAULT_CONFIG).concat(['index', 'pretrained']).sort());
  });
});
