import { spawnSync } from 'node:child_process';
import { existsSync, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { formatPlan } from '../src/progress.js';

const repo = resolve(import.meta.dirname, '../../..');
const work = mkdtempSync(join(tmpdir(), 'maskcon-plan-'));
afterAll(() => rmSync(work, { recursive: true, force: true }));

const n = (x: number) => x.toLocaleString('en');

describe('run plan line', () => {
  it('states epochs × whole-batch images, the estimate at a measured rate, and the levers past a day', () => {
    // 59,551 training images, batch 128 → 465 batches = 59,520
    expect(formatPlan(200, 59551, 128)).toBe(
      'plan: 200 epochs × 59,520 images = 11,904,000 images',
    );
    // 11,904,000 / 10 img/s = 1,190,400 s = 330 h 40 min
    expect(formatPlan(200, 59551, 128, 10)).toBe(
      'plan: 200 epochs × 59,520 images = 11,904,000 images; at 10.0 img/s the run takes about 330h40m\n' +
        'plan: over a day — shorten it with --backend tfjs-node-gpu, --epochs, --train-subset',
    );
    // 4 × 19,968 = 79,872 images at 400 img/s = 199.68 s: no levers
    expect(formatPlan(4, 20000, 128, 400)).toBe(
      'plan: 4 epochs × 19,968 images = 79,872 images; at 400.0 img/s the run takes about 3m20s',
    );
  });
});

describe('pnpm train --plan', () => {
  /** `pnpm train ARGS` with an empty data folder and weights cache. */
  const train = (args: string[]) =>
    spawnSync(process.execPath, ['--import', 'tsx', 'packages/train/src/cli.ts', ...args], {
      cwd: repo,
      encoding: 'utf8',
      env: {
        ...process.env,
        MASKCON_DATA: join(work, 'data'),
        MASKCON_CACHE: join(work, 'cache'),
        MASKCON_DEBUG: '',
      },
    });

  it('sop_split2 before its index exists: the paper setting, the published train count × epochs, the build and fetch commands; no run', () => {
    const runsDb = join(work, 'runs', 'runs.sqlite');
    const r = train(['--dataset', 'sop_split2', '--plan', '--runs-db', runsDb]);
    expect(r.status, r.stderr).toBe(0);
    // The resolved paper setting: ResNet-18 with the standard stem at 224 px, ImageNet weights.
    expect(r.stdout).toContain('  data     sop_split2, 224×224 px,');
    expect(r.stdout).toContain(
      '  network  resnet18 base width 64, stem standard, pretrained imagenet,',
    );
    expect(r.stdout).toContain(
      `index: ${join(work, 'data', 'sop_split2.sqlite')} is missing — build it with: pnpm datasets:build sop_split2 --root DIR;`,
    );
    expect(r.stdout).toMatch(/^pretrained: .*Fetch them first with: pnpm weights fetch resnet18$/m);
    // SOP split 2 (packages/datasets/README.md): 1,498 products × 10 train images; batch 128
    // drops the last partial batch of each epoch; the paper trains 200 epochs.
    const trainImages = 1498 * 10;
    const perEpoch = Math.floor(trainImages / 128) * 128;
    expect(r.stdout).toContain(`the published ${n(trainImages)} train images of sop_split2`);
    expect(r.stdout).toContain(
      `plan: 200 epochs × ${n(perEpoch)} images = ${n(200 * perEpoch)} images\n`,
    );
    expect(r.stdout).toContain(
      'before the run can start: build the index and the pretrained weights (see above).',
    );
    expect(r.stdout).toContain('no run was created (--plan).');
    expect(existsSync(runsDb)).toBe(false);
    expect(existsSync(join(work, 'runs'))).toBe(false);
  });

  it('flags shape the plan (epochs, subset, batch), and an unknown dataset without an index is an error', () => {
    const runsDb = join(work, 'runs.sqlite');
    const r = train([
      '--dataset',
      'cars196',
      '--plan',
      '--epochs',
      '3',
      '--train-subset',
      '1000',
      '--batch-size',
      '64',
      '--K',
      '512',
      '--pretrained',
      'none',
      '--runs-db',
      runsDb,
    ]);
    expect(r.status, r.stderr).toBe(0);
    // 1,000 of Cars196's 8,144 train images, 15 batches of 64 = 960 per epoch.
    expect(r.stdout).toContain('(--train-subset 1000: 1,000)');
    expect(r.stdout).toContain(`plan: 3 epochs × 960 images = ${n(3 * 960)} images\n`);
    expect(r.stdout).not.toContain('pretrained:');
    expect(existsSync(runsDb)).toBe(false);

    const bad = train(['--dataset', 'my_shoes', '--plan', '--runs-db', runsDb]);
    expect(bad.status).not.toBe(0);
    expect(bad.stderr).toMatch(
      /^error: No index at .*my_shoes\.sqlite, and 'my_shoes' is not a published dataset.*pnpm datasets:build csv --name my_shoes/m,
    );
    expect(bad.stdout).not.toContain('plan:');
    expect(existsSync(runsDb)).toBe(false);
  });
});
