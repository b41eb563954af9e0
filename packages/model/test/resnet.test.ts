import { beforeAll, describe, expect, it } from 'vitest';
import * as tf from '@tensorflow/tfjs';
import { readFileSync } from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import {
  ARCH_NAMES,
  backbone,
  backboneFeatureDim,
  classifier,
  createNetwork,
  embed,
  initBackend,
  isBackboneParam,
  stemForImageSize,
  stemOf,
  updateRunningStats,
  type ForwardContext,
  type NetworkSpec,
} from '../src/index.js';

interface Layout {
  archs: Record<
    string,
    { feature_dim: number; trainable_without_fc: number; state: [string, number[]][] }
  >;
}
const LAYOUT = JSON.parse(
  readFileSync(
    path.join(path.dirname(fileURLToPath(import.meta.url)), 'fixtures', 'torchvision-layout.json'),
    'utf8',
  ),
) as Layout;

/** HWIO → OIHW, [in, out] → [out, in]. */
const torchShape = (s: readonly number[]): number[] =>
  s.length === 4 ? [s[3], s[2], s[0], s[1]] : s.length === 2 ? [s[1], s[0]] : [...s];

const net = (arch: NetworkSpec['arch'], extra: Partial<NetworkSpec> = {}): NetworkSpec => ({
  arch,
  width: 4,
  inChannels: 3,
  projHidden: 512,
  projDim: 128,
  ...extra,
});

beforeAll(async () => {
  await initBackend('wasm', () => {});
});

describe('torchvision ResNets', () => {
  it('knows the architectures and picks the stem from the image size', () => {
    expect(ARCH_NAMES).toEqual(['resnet-mini', 'resnet18', 'resnet34', 'resnet50']);
    expect(stemForImageSize(28)).toBe('small');
    expect(stemForImageSize(64)).toBe('small');
    expect(stemForImageSize(65)).toBe('standard');
    expect(stemForImageSize(224)).toBe('standard');
    expect(backboneFeatureDim(net('resnet18'))).toBe(512);
    expect(backboneFeatureDim(net('resnet34'))).toBe(512);
    expect(backboneFeatureDim(net('resnet50'))).toBe(2048);
    expect(backboneFeatureDim(net('resnet50', { baseWidth: 2 }))).toBe(64);
    expect(backboneFeatureDim(net('resnet-mini'))).toBe(16);
  });

  // One full-size network per architecture (initialising 23.5M parameters is the slow part):
  // torchvision's names/shapes/count, then the forward pass on tiny inputs with both stems
  // (the small-stem variant swaps in a 3×3 conv1; everything else is shared).
  for (const arch of ['resnet18', 'resnet34', 'resnet50'] as const) {
    it(`${arch}: torchvision's names, shapes and parameter count; forward shapes for both stems`, () => {
      const ref = LAYOUT.archs[arch];
      const p = createNetwork(net(arch, { stem: 'standard', classifierClasses: 5 }), 1);
      const ours = [...p.trainable, ...p.buffers].filter(([n]) => isBackboneParam(n));
      expect(new Map(ours.map(([n, v]) => [n, torchShape(v.shape)]))).toEqual(new Map(ref.state));
      const backboneParams = [...p.trainable]
        .filter(([n]) => isBackboneParam(n))
        .reduce((a, [, v]) => a + v.size, 0);
      expect(backboneParams).toBe(ref.trainable_without_fc);
      expect(backboneParams).toBe(
        { resnet18: 11_176_512, resnet34: 21_284_672, resnet50: 23_508_032 }[arch],
      );
      const feat = ref.feature_dim;
      expect(feat).toBe(arch === 'resnet50' ? 2048 : 512);
      expect(p.countTrainable()).toBe(
        backboneParams + (feat * 512 + 512) + (512 * 128 + 128) + (feat * 5 + 5),
      );
      expect(stemOf(p)).toBe('standard');
      // init: BN weight 1 / bias 0 / running var 1; Kaiming-normal fan_out convs
      expect(Array.from(p.get('layer1.0.bn1.weight').dataSync()).every((v) => v === 1)).toBe(true);
      expect(Array.from(p.get('layer1.0.bn1.bias').dataSync()).every((v) => v === 0)).toBe(true);
      expect(Array.from(p.get('layer3.1.bn2.running_var').dataSync()).every((v) => v === 1)).toBe(
        true,
      );
      const w = p.get('layer3.1.conv2.weight');
      const std = tf.tidy(() => Math.sqrt(tf.moments(w).variance.dataSync()[0]));
      expect(std / Math.sqrt(2 / (w.shape[3]! * 9))).toBeCloseTo(1, 1);

      const forward = (px: number): void => {
        const x = tf.randomUniform([2, px, px, 3], -1, 1, 'float32', 3) as tf.Tensor4D;
        const f = backbone(p, x, { training: false, bnSplits: 1 });
        expect(f.shape).toEqual([2, feat]);
        expect(Array.from(f.dataSync()).every(Number.isFinite)).toBe(true);
        const logits = classifier(p, f);
        expect(logits.shape).toEqual([2, 5]);
        tf.dispose([f, logits, x]);
      };
      forward(33); // standard stem: 33 → 17 → 9 → 9, 5, 3, 2
      p.get('conv1.weight').dispose();
      p.trainable.set(
        'conv1.weight',
        tf.variable(tf.randomNormal([3, 3, 3, 64], 0, 0.1, 'float32', 4)),
      );
      expect(stemOf(p)).toBe('small');
      forward(8); // small stem: 8, 8, 4, 2, 1
      p.dispose();
    });
  }

  it('small stem: 3×3 conv1, otherwise identical names', () => {
    const p = createNetwork(net('resnet50', { stem: 'small', baseWidth: 2 }), 1);
    expect(p.get('conv1.weight').shape).toEqual([3, 3, 3, 2]);
    expect(stemOf(p)).toBe('small');
    const q = createNetwork(net('resnet50', { stem: 'standard', baseWidth: 2 }), 1);
    expect(q.get('conv1.weight').shape).toEqual([7, 7, 3, 2]);
    expect([...p.trainable.keys()]).toEqual([...q.trainable.keys()]);
    expect(q.get('layer4.2.conv3.weight').shape).toEqual([1, 1, 16, 64]);
    expect(q.get('layer2.0.conv2.weight').shape).toEqual([3, 3, 4, 4]);
    expect(q.get('layer2.0.conv1.weight').shape).toEqual([1, 1, 8, 4]);
    p.dispose();
    q.dispose();
  });

  it('training mode records every BN layer with the right element counts', () => {
    // resnet18 baseWidth 2, standard stem, 2×20×20: conv1 → 10×10, max-pool → 5×5, layer2 3×3, layer3 2×2, layer4 1×1
    const p = createNetwork(
      net('resnet18', { stem: 'standard', baseWidth: 2, projHidden: 8, projDim: 4 }),
      4,
    );
    const x = tf.randomUniform([4, 20, 20, 3], -1, 1, 'float32', 5) as tf.Tensor4D;
    const bnStats: NonNullable<ForwardContext['bnStats']> = [];
    const e = embed(p, x, { training: true, bnSplits: 2, bnStats });
    expect(e.shape).toEqual([4, 4]);
    expect(bnStats.length).toBe(20);
    const count = Object.fromEntries(bnStats.map((s) => [s.name, s.count]));
    expect(count['bn1']).toBe(2 * 10 * 10);
    expect(count['layer1.0.bn1']).toBe(2 * 5 * 5);
    expect(count['layer2.0.downsample.1']).toBe(2 * 3 * 3);
    expect(count['layer3.1.bn2']).toBe(2 * 2 * 2);
    expect(count['layer4.0.bn1']).toBe(2 * 1 * 1);
    updateRunningStats(p, bnStats);
    expect(Array.from(p.get('bn1.running_var').dataSync()).some((v) => v !== 1)).toBe(true);
    tf.dispose([e, x]);
    p.dispose();
  });

  it('max-pool padding ignores padded cells like PyTorch (−∞ padding), on cpu and wasm', async () => {
    for (const b of ['cpu', 'wasm'] as const) {
      await initBackend(b, () => {});
      const x = tf.randomUniform([2, 7, 6, 3], -5, -1, 'float32', 1) as tf.Tensor4D;
      const a = tf.maxPool(x, 3, 2, 1);
      const ref = tf.maxPool(
        tf.pad(
          x,
          [
            [0, 0],
            [1, 1],
            [1, 1],
            [0, 0],
          ],
          -Infinity,
        ),
        3,
        2,
        'valid',
      );
      expect(a.shape).toEqual([2, 4, 3, 3]);
      expect(Array.from(a.dataSync())).toEqual(Array.from(ref.dataSync()));
      tf.dispose([x, a, ref]);
    }
    await initBackend('wasm', () => {});
  });

  it('gradients flow through the standard stem and Bottlenecks on wasm', () => {
    const p = createNetwork(
      net('resnet50', { stem: 'standard', baseWidth: 2, projHidden: 8, projDim: 4 }),
      6,
    );
    const x = tf.randomUniform([2, 18, 18, 3], -1, 1, 'float32', 7) as tf.Tensor4D;
    const vars = [...p.trainable.values()];
    const { value, grads } = tf.variableGrads(
      () => tf.sum(tf.square(embed(p, x, { training: true, bnSplits: 1 }))) as tf.Scalar,
      vars,
    );
    const g = grads[p.get('conv1.weight').name];
    expect(g.shape).toEqual([7, 7, 3, 2]);
    expect(Array.from(g.dataSync()).every(Number.isFinite)).toBe(true);
    expect(Object.keys(grads).length).toBe(vars.length);
    tf.dispose([value, x, ...Object.values(grads)]);
    p.dispose();
  });
});

describe('resnet-mini and heads', () => {
  it('resnet-mini keeps its layout (3 stages of one BasicBlock, feature 4w)', () => {
    const p = createNetwork(
      { arch: 'resnet-mini', width: 2, inChannels: 1, projHidden: 8, projDim: 4 },
      3,
    );
    expect([...p.trainable.keys()].filter(isBackboneParam).length).toBe(3 + 3 * 6 + 2 * 3);
    expect(p.get('conv1.weight').shape).toEqual([3, 3, 1, 2]);
    expect(p.get('layer3.0.conv2.weight').shape).toEqual([3, 3, 8, 8]);
    expect(p.trainable.has('layer4.0.conv1.weight')).toBe(false);
    expect(p.trainable.has('classifier.weight')).toBe(false);
    const f = backbone(p, tf.zeros([1, 8, 8, 1]) as tf.Tensor4D, { training: false, bnSplits: 1 });
    expect(f.shape).toEqual([1, 8]);
    expect(() => classifier(p, f)).toThrow(/no classifier head/);
    f.dispose();
    p.dispose();
  });

  it('adding a classifier leaves the other initial weights unchanged; PyTorch Linear init bounds', () => {
    const spec: NetworkSpec = {
      arch: 'resnet18',
      width: 0,
      baseWidth: 2,
      inChannels: 3,
      projHidden: 8,
      projDim: 4,
    };
    const a = createNetwork(spec, 9);
    const b = createNetwork({ ...spec, classifierClasses: 7 }, 9);
    for (const [n, v] of a.snapshot())
      expect(Array.from(b.get(n).dataSync())).toEqual(Array.from(v));
    expect(b.get('classifier.weight').shape).toEqual([16, 7]);
    expect(b.get('classifier.bias').shape).toEqual([7]);
    const bound = 1 / Math.sqrt(16);
    for (const n of ['classifier.weight', 'classifier.bias']) {
      const d = Array.from(b.get(n).dataSync());
      expect(Math.max(...d.map(Math.abs))).toBeLessThanOrEqual(bound);
      expect(new Set(d).size).toBe(d.length);
    }
    const logits = tf.tidy(() => classifier(b, tf.ones([2, 16]) as tf.Tensor2D));
    const w = b.get('classifier.weight').arraySync() as number[][];
    const bias = b.get('classifier.bias').dataSync();
    const want = bias.map((bb, j) => bb + w.reduce((s, row) => s + row[j], 0));
    expect(
      Array.from(logits.dataSync())
        .slice(0, 7)
        .map((v, j) => Math.abs(v - want[j])),
    ).toSatisfy((e: number[]) => e.every((x) => x < 1e-5));
    logits.dispose();
    a.dispose();
    b.dispose();
  });

  it('rejects invalid specs', () => {
    expect(() => createNetwork(net('resnet99' as never), 1)).toThrow(
      /Unknown architecture resnet99; known: resnet-mini, resnet18, resnet34, resnet50/,
    );
    expect(() => createNetwork(net('resnet18', { stem: 'huge' as never }), 1)).toThrow(
      /Unknown stem 'huge'/,
    );
    expect(() => createNetwork(net('resnet18', { baseWidth: 0 }), 1)).toThrow(
      /baseWidth must be a positive integer/,
    );
    expect(() => createNetwork(net('resnet18', { classifierClasses: 1.5 }), 1)).toThrow(
      /classifierClasses must be a positive integer/,
    );
    expect(() => createNetwork(net('resnet-mini', { width: 0 }), 1)).toThrow(
      /--width must be a positive integer/,
    );
  });
});
