import { describe, expect, it, beforeAll } from 'vitest';
import { copyFileSync, existsSync, mkdirSync, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { readSafetensors, readTorchStateDict } from '@maskcon/model';
import { parseTrainArgs, train } from '@maskcon/train';
import { buildTinyFashionIndex } from './fixtures.js';

const repo = resolve(import.meta.dirname, '..');
const fixture = join(repo, 'packages/model/test/fixtures/resnet18-w8-small.safetensors');
const work = mkdtempSync(join(tmpdir(), 'maskcon-pre-'));
let index = '';

beforeAll(async () => {
  index = await buildTinyFashionIndex(work, 8, 4, 3);
});

describe('training from pretrained torchvision weights', () => {
  it('starts ResNet-18 from the file (RGB conv1 folded for grey images) and trains', async () => {
    const logs: string[] = [];
    const cfg = parseTrainArgs([
      '--preset',
      'tiny',
      '--index',
      index,
      '--arch',
      'resnet18',
      '--base-width',
      '8',
      '--pretrained',
      fixture,
      '--K',
      '32',
      '--batch-size',
      '16',
      '--epochs',
      '1',
      '--lr',
      '1e-12',
      '--wd',
      '0',
      '--train-subset',
      '0',
      '--test-subset',
      '0',
      '--workers',
      '1',
      '--backend',
      'wasm',
      '--runs-db',
      join(work, 'runs.sqlite'),
    ]);
    const r = await train(cfg, { log: (m) => logs.push(m), snapshot: true });
    expect(logs.join('\n')).toMatch(
      /pretrained: 100 tensors from .*RGB conv1 summed over channels/,
    );
    const file = readSafetensors(fixture).tensors;
    // With a negligible learning rate the weights are still the file's (layout OIHW → HWIO).
    const w = file.get('layer2.0.conv1.weight')!; // [16, 8, 3, 3]
    const mine = r.params!.get('layer2.0.conv1.weight')!; // [3, 3, 8, 16]
    const [o, i] = [w.shape[0], w.shape[1]];
    let maxErr = 0;
    for (let a = 0; a < o; a++)
      for (let b = 0; b < i; b++)
        for (let y = 0; y < 3; y++)
          for (let x = 0; x < 3; x++) {
            const theirs = (w.data as Float32Array)[((a * i + b) * 3 + y) * 3 + x];
            const ours = mine[((y * 3 + x) * i + b) * o + a];
            maxErr = Math.max(maxErr, Math.abs(theirs - ours));
          }
    expect(maxErr).toBeLessThan(1e-6);
    const c1 = file.get('conv1.weight')!; // [8, 3, 3, 3] → summed over input channels
    const mineC1 = r.params!.get('conv1.weight')!; // [3, 3, 1, 8]
    const d = c1.data as Float32Array;
    const summed = (oc: number, y: number, x: number) =>
      [0, 1, 2].reduce((s, ch) => s + d[((oc * 3 + ch) * 3 + y) * 3 + x], 0);
    expect(mineC1[(1 * 3 + 2) * 8 + 5]).toBeCloseTo(summed(5, 1, 2), 5);
    expect(r.recall.map((x) => x.k)).toEqual([1, 2, 5, 10]);
  });

  it('refuses a .pth whose pickle calls os.system before any work, naming the global; nothing runs', () => {
    const hostile = join(repo, 'packages/model/test/fixtures/hostile-os-system.pth');
    const marker = '/tmp/maskcon-pth-hostile-ran'; // what its payload would touch
    rmSync(marker, { force: true });
    expect(() =>
      parseTrainArgs(['--index', index, '--arch', 'resnet18', '--pretrained', hostile]),
    ).toThrow(
      /hostile-os-system\.pth.*refers to the Python global 'os\.system'.*nothing in it was run/s,
    );
    expect(existsSync(marker)).toBe(false);
  });

  it('refuses a pretrained file that does not exist, before any work', () => {
    expect(() => parseTrainArgs(['--pretrained', join(work, 'nope.safetensors')])).toThrow(
      /--pretrained file .*nope\.safetensors does not exist/,
    );
  });

  it('--pretrained imagenet: stops before any work with the fetch command, then trains from the cached .pth', async () => {
    const cache = join(work, 'cache');
    const saved = process.env.MASKCON_CACHE;
    process.env.MASKCON_CACHE = cache;
    try {
      const args = [
        '--preset',
        'tiny',
        '--index',
        index,
        '--arch',
        'resnet18',
        '--base-width',
        '8',
        '--stem',
        'standard',
        '--pretrained',
        'imagenet',
        '--K',
        '32',
        '--batch-size',
        '16',
        '--epochs',
        '1',
        '--lr',
        '1e-12',
        '--train-subset',
        '0',
        '--test-subset',
        '0',
        '--workers',
        '1',
        '--backend',
        'wasm',
        '--runs-db',
        join(work, 'runs-imagenet.sqlite'),
      ];
      expect(() => parseTrainArgs(args)).toThrow(
        /resnet18 ImageNet weights are not in the cache .*Fetch them first with: pnpm weights fetch resnet18/,
      );
      // Stand-in for torchvision's file: the w8 ResNet-18 fixture written by torch.save.
      const cached = join(cache, 'weights', 'resnet18-f37072fd.pth');
      mkdirSync(join(cache, 'weights'), { recursive: true });
      copyFileSync(join(repo, 'packages/model/test/fixtures/resnet18-w8-standard.pth'), cached);
      const cfg = parseTrainArgs(args);
      expect(cfg.pretrained).toBe('imagenet');
      const logs: string[] = [];
      const r = await train(cfg, { log: (m) => logs.push(m), snapshot: true });
      expect(logs.join('\n')).toContain(`pretrained: 100 tensors from ${cached}`);
      const file = readTorchStateDict(cached);
      const w = file.get('layer3.1.conv2.weight')!; // [32, 32, 3, 3] OIHW
      const mine = r.params!.get('layer3.1.conv2.weight')!; // [3, 3, 32, 32] HWIO
      expect(mine[((1 * 3 + 2) * 32 + 4) * 32 + 7]).toBeCloseTo(
        (w.data as Float32Array)[((7 * 32 + 4) * 3 + 1) * 3 + 2],
        6,
      );
    } finally {
      if (saved === undefined) delete process.env.MASKCON_CACHE;
      else process.env.MASKCON_CACHE = saved;
    }
  });
});
