/**
 * The `native-memory` backend (tfjs's cpu backend on plain TypedArrays, with oneDNN for the heavy
 * kernels): each oneDNN kernel against tfjs's cpu backend over the shared shape/stride/padding
 * grids (kernel-cases.ts) plus pooling and BatchNorm grids, and a few MaskCon steps of ResNet-18
 * (standard stem: 7×7 conv, max-pool) matching the wasm backend. Where the addon is not built (or
 * MASKCON_NATIVE=0) only the loader's report is checked and the rest skips.
 */
import { loadNativeMemory } from '@maskcon/native';
import { Rng } from '@maskcon/random';
import * as tf from '@tensorflow/tfjs';
import { describe, expect, it } from 'vitest';
import { initBackend } from '../src/backend.js';
import { batchNormTrainFused } from '../src/kernels/batch-norm.js';
import {
  memoryImplementations,
  NATIVE_MEMORY,
  NATIVE_MEMORY_KERNEL_NAMES,
} from '../src/kernels/native-memory/index.js';
import { MaskConModel, type MocoConfig, type StepBatch } from '../src/index.js';
import { type ConvCase, convCases, matMulCases, maxAbs, maxAbsDiff, name } from './kernel-cases.js';
import { seededValues } from './tiny-net.js';

const TOL = 1e-3;
const memory = loadNativeMemory();
const quiet = (): void => {};

const count = (s: number[]): number => s.reduce((p, q) => p * q, 1);
const seeded = (shape: number[], seed: number): tf.Tensor =>
  tf.tensor(seededValues(count(shape), seed), shape);

async function use(backend: 'cpu' | 'wasm' | 'native-memory'): Promise<void> {
  await initBackend(backend, quiet, { threads: 1 });
}

/** Runs `fn` on `backend` with seeded inputs; returns every output's values and shape. */
async function runOn(
  backend: 'cpu' | 'native-memory',
  shapes: number[][],
  seed: number,
  fn: (...xs: tf.Tensor[]) => tf.Tensor | tf.Tensor[],
): Promise<{ data: Float32Array; shape: number[] }[]> {
  await use(backend);
  const xs = shapes.map((s, i) => seeded(s, seed + i));
  const r = fn(...xs);
  const outs = Array.isArray(r) ? r : [r];
  const res = [];
  for (const o of outs)
    res.push({ data: Float32Array.from((await o.data()) as Float32Array), shape: o.shape });
  tf.dispose([...xs, ...outs]);
  return res;
}

/** Same values on cpu and native-memory, and the oneDNN path ran (a new plan key for `kernel`). */
async function expectMatchesCpu(
  shapes: number[][],
  seed: number,
  fn: (...xs: tf.Tensor[]) => tf.Tensor | tf.Tensor[],
  kernel: string,
): Promise<void> {
  const ref = await runOn('cpu', shapes, seed, fn);
  const keys = (): number =>
    [...memoryImplementations().keys()].filter((k) => k.startsWith(kernel)).length;
  const before = keys();
  const got = await runOn('native-memory', shapes, seed, fn);
  expect(got.length).toBe(ref.length);
  ref.forEach((r, i) => {
    expect(got[i].shape).toEqual(r.shape);
    expect(maxAbs(r.data)).toBeGreaterThan(0);
    expect(maxAbsDiff(r.data, got[i].data), `output ${i}`).toBeLessThan(
      TOL * Math.max(1, maxAbs(r.data)),
    );
  });
  expect(keys(), `${kernel} ran on oneDNN`).toBeGreaterThan(before);
}

function convOut(c: ConvCase): number[] {
  return tf.backend_util.computeConv2DInfo(
    [c.b, c.h, c.w, c.ci],
    [c.k, c.k, c.ci, c.co],
    c.s,
    1,
    c.pad,
  ).outShape;
}

const convAttrs = (c: ConvCase): tf.NamedAttrMap =>
  ({ strides: c.s, pad: c.pad, dataFormat: 'NHWC' }) as unknown as tf.NamedAttrMap;

describe('loadNativeMemory', () => {
  it('reports MASKCON_NATIVE=0 in one line instead of loading', () => {
    const prev = process.env.MASKCON_NATIVE;
    process.env.MASKCON_NATIVE = '0';
    try {
      const r = loadNativeMemory();
      expect(r.ok).toBe(false);
      if (!r.ok) expect(r.reason).toBe('disabled by MASKCON_NATIVE=0');
    } finally {
      if (prev == null) delete process.env.MASKCON_NATIVE;
      else process.env.MASKCON_NATIVE = prev;
    }
  });

  it('loads here, or initBackend says why in one line', async () => {
    if (memory.ok) {
      await use('native-memory');
      expect(tf.getBackend()).toBe(NATIVE_MEMORY);
    } else {
      await expect(initBackend('native-memory', quiet)).rejects.toThrow(
        /^Backend 'native-memory' is not available: [^\n]+ Use --backend wasm/,
      );
    }
  });
});

describe.skipIf(!memory.ok)('oneDNN kernels on native memory', () => {
  it('replaces exactly the heavy kernels; everything else is the cpu kernel', async () => {
    await use('native-memory');
    expect([...NATIVE_MEMORY_KERNEL_NAMES].sort()).toEqual([
      'Add',
      'BatchMatMul',
      'Conv2D',
      'Conv2DBackpropFilter',
      'Conv2DBackpropInput',
      'FusedConv2D',
      'MaskconBatchNormGrad',
      'MaskconBatchNormTrain',
      'MaxPool',
      'MaxPoolGrad',
      'Multiply',
      'Relu',
      'Step',
      'Sub',
    ]);
    expect(tf.getKernel('Conv2D', NATIVE_MEMORY)?.kernelFunc).not.toBe(
      tf.getKernel('Conv2D', 'cpu')?.kernelFunc,
    );
    expect(tf.getKernel('Exp', NATIVE_MEMORY)?.kernelFunc).toBe(
      tf.getKernel('Exp', 'cpu')?.kernelFunc,
    );
    expect(tf.getKernelsForBackend(NATIVE_MEMORY).length).toBe(
      tf.getKernelsForBackend('cpu').length + 2,
    );
  });

  describe('Conv2D', () => {
    it.each(convCases().map((c, i) => [name(c), c, i] as const))('%s', async (_n, c, i) => {
      await expectMatchesCpu(
        [
          [c.b, c.h, c.w, c.ci],
          [c.k, c.k, c.ci, c.co],
        ],
        500 + 2 * i,
        (x, f) => tf.conv2d(x as tf.Tensor4D, f as tf.Tensor4D, c.s, c.pad),
        'Conv2D[',
      );
    });

    it('with dilation 2', async () => {
      await expectMatchesCpu(
        [
          [2, 11, 9, 3],
          [3, 3, 3, 5],
        ],
        90,
        (x, f) => tf.conv2d(x as tf.Tensor4D, f as tf.Tensor4D, 1, 'same', 'NHWC', 2),
        'Conv2D[',
      );
    });
  });

  describe('Conv2DBackpropInput', () => {
    it.each(convCases().map((c, i) => [name(c), c, i] as const))('%s', async (_n, c, i) => {
      await expectMatchesCpu(
        [convOut(c), [c.k, c.k, c.ci, c.co]],
        100 + 2 * i,
        (dy, filter) =>
          tf
            .engine()
            .runKernel(
              'Conv2DBackpropInput',
              { dy, filter },
              { ...convAttrs(c), inputShape: [c.b, c.h, c.w, c.ci] },
            ) as tf.Tensor,
        'Conv2DBackpropInput[',
      );
    });
  });

  describe('Conv2DBackpropFilter', () => {
    it.each(convCases().map((c, i) => [name(c), c, i] as const))('%s', async (_n, c, i) => {
      await expectMatchesCpu(
        [[c.b, c.h, c.w, c.ci], convOut(c)],
        300 + 2 * i,
        (x, dy) =>
          tf
            .engine()
            .runKernel(
              'Conv2DBackpropFilter',
              { x, dy },
              { ...convAttrs(c), filterShape: [c.k, c.k, c.ci, c.co] },
            ) as tf.Tensor,
        'Conv2DBackpropFilter[',
      );
    });
  });

  describe('FusedConv2D', () => {
    const c: ConvCase = { b: 2, h: 9, w: 8, ci: 4, co: 6, k: 3, s: 2, pad: 'same' };
    for (const [activation, withBias] of [
      ['relu', true],
      ['linear', true],
      ['relu', false],
    ] as const) {
      it(`${activation}${withBias ? ' + bias' : ''}`, async () => {
        await expectMatchesCpu(
          [[c.b, c.h, c.w, c.ci], [c.k, c.k, c.ci, c.co], [c.co]],
          40,
          (x, filter, bias) =>
            tf.fused.conv2d({
              x: x as tf.Tensor4D,
              filter: filter as tf.Tensor4D,
              strides: c.s,
              pad: c.pad,
              bias: withBias ? bias : undefined,
              activation,
            }),
          'FusedConv2D[',
        );
      });
    }
  });

  describe('BatchMatMul', () => {
    const cases = [
      ...matMulCases().filter((c) => !(c.a.length === 3 && c.a[0] !== c.b[0] && c.b[0] !== 1)),
      { a: [3, 7, 5], b: [3, 5, 4], tA: false, tB: false },
      { a: [4, 5, 6], b: [5, 3], tA: true, tB: false },
    ];
    it.each(
      cases.map((c, i) => [`${c.a}${c.tA ? 'ᵀ' : ''} · ${c.b}${c.tB ? 'ᵀ' : ''}`, c, i] as const),
    )('%s', async (_n, c, i) => {
      await expectMatchesCpu(
        [c.a, c.b],
        700 + 2 * i,
        (a, b) => tf.matMul(a, b, c.tA, c.tB),
        'BatchMatMul',
      );
    });
  });

  describe('MaxPool and its gradient', () => {
    // [batch, size, channels, window, stride, pad]; the stem's 3×3/2 pad 1 first.
    const cases: [number, number, number, number, number, 'same' | 'valid' | number][] = [
      [2, 12, 8, 3, 2, 1],
      [1, 11, 3, 3, 2, 1],
      [3, 9, 5, 2, 2, 'valid'],
      [2, 10, 16, 3, 1, 'same'],
      [1, 7, 4, 3, 2, 'same'],
    ];
    it.each(cases.map((c) => [c.join(' '), c] as const))('%s', async (_n, c) => {
      const [b, h, ch, k, s, pad] = c;
      // After a ReLU (as in the stem): many windows tie at 0, and the gradient must still go to
      // the same cell as tfjs's (the first maximum).
      const f = (x: tf.Tensor): tf.Tensor[] => {
        const xr = tf.relu(x) as tf.Tensor4D;
        const w = seeded(tf.maxPool(xr, k, s, pad).shape, 77);
        const loss = (xi: tf.Tensor): tf.Tensor =>
          tf.sum(tf.mul(tf.maxPool(xi as tf.Tensor4D, k, s, pad), w));
        return [tf.maxPool(xr, k, s, pad), tf.grad(loss)(xr)];
      };
      await expectMatchesCpu([[b, h, h, ch]], 60 + h, f, 'MaxPoolGrad[');
      await expectMatchesCpu([[b, h + 1, h, ch]], 61 + h, f, 'MaxPool[');
    });
  });

  describe('BatchNorm (training, split groups) and its gradient', () => {
    // [batch, size, channels, groups]
    const cases = [
      [4, 5, 8, 1],
      [4, 6, 16, 2],
      [6, 3, 3, 3],
      [8, 4, 64, 4],
    ] as const;
    it.each(cases.map((c) => [c.join(' '), c] as const))('%s', async (_n, c) => {
      const [b, h, ch, groups] = c;
      const f = (x: tf.Tensor, gamma: tf.Tensor, beta: tf.Tensor, w: tf.Tensor): tf.Tensor[] => {
        const x4 = tf.add(tf.mul(x, 3), 0.5) as tf.Tensor4D; // mean and scale away from 0 and 1
        const r = batchNormTrainFused(x4, tf.add(gamma, 1), beta, 1e-5, groups);
        const loss = (xi: tf.Tensor, g: tf.Tensor, bb: tf.Tensor): tf.Scalar => {
          const q = batchNormTrainFused(xi as tf.Tensor4D, g, bb, 1e-5, groups);
          tf.dispose([q.mean, q.variance]);
          return tf.sum(tf.mul(q.y, w));
        };
        const grads = tf.grads(loss)([x4, tf.add(gamma, 1), beta]);
        return [r.y, r.mean, r.variance, ...grads];
      };
      await expectMatchesCpu(
        [[b, h, h, ch], [ch], [ch], [b, h, h, ch]],
        900 + ch,
        f,
        'BatchNormTrainGrad',
      );
    });
  });
});

describe.skipIf(!memory.ok)('elementwise kernels on native memory', () => {
  // 2·16384 elements (above the size where the addon takes over), with NaN, ±0 and ±Inf planted.
  const n = 2 * 16384;
  const special = (v: Float32Array): Float32Array => {
    v.set([Number.NaN, -0, 0, Number.POSITIVE_INFINITY, Number.NEGATIVE_INFINITY, -1e-30], 5);
    return v;
  };
  /** First index where the bits differ (any NaN equals any NaN: V8 may flip its sign); −1 if none. */
  const sameBits = (a: Float32Array, b: Float32Array): number => {
    const ua = new Uint32Array(a.buffer);
    const ub = new Uint32Array(b.buffer);
    expect(a.length).toBe(b.length);
    return ua.findIndex((u, i) => u !== ub[i] && !(Number.isNaN(a[i]) && Number.isNaN(b[i])));
  };
  const on = async (
    backend: 'cpu' | 'native-memory',
    f: (a: tf.Tensor, b: tf.Tensor) => tf.Tensor,
  ) => {
    await use(backend);
    const a = tf.tensor(special(seededValues(n, 3)), [8, 64, 64]);
    const b = tf.tensor(seededValues(n, 4), [8, 64, 64]);
    const out = f(a, b);
    const v = Float32Array.from((await out.data()) as Float32Array);
    tf.dispose([a, b, out]);
    return v;
  };
  for (const [label, f] of [
    ['Add', (a: tf.Tensor, b: tf.Tensor) => tf.add(a, b)],
    ['Sub', (a: tf.Tensor, b: tf.Tensor) => tf.sub(a, b)],
    ['Multiply', (a: tf.Tensor, b: tf.Tensor) => tf.mul(a, b)],
    ['Relu', (a: tf.Tensor) => tf.relu(a)],
    ['Step', (a: tf.Tensor) => tf.step(a)],
  ] as const) {
    it(`${label}: bit-identical to the cpu kernel (NaN, ±0, ±Inf included)`, async () => {
      const ref = await on('cpu', f);
      const got = await on('native-memory', f);
      expect(sameBits(got, ref)).toBe(-1);
      expect(ref.some((x) => Number.isNaN(x))).toBe(true);
    });
  }

  it('broadcasts and small tensors stay on the cpu kernels and agree', async () => {
    const f = (a: tf.Tensor, b: tf.Tensor) =>
      tf.add(
        tf.mul(a, tf.slice(b, [0, 0, 0], [1, 1, 64])),
        tf.relu(tf.slice(a, [0, 0, 0], [1, 1, 64])),
      );
    const ref = await on('cpu', f);
    const got = await on('native-memory', f);
    expect(new Uint32Array(got.buffer)).toEqual(new Uint32Array(ref.buffer));
  });
});

describe.skipIf(!memory.ok)('a MaskCon step on native-memory', () => {
  const cfg: MocoConfig = {
    method: 'maskcon',
    w: 1,
    t: 0.1,
    t0: 0.1,
    queueSize: 16,
    keyMomentum: 0.99,
    sgdMomentum: 0.9,
    weightDecay: 5e-4,
    bnSplits: 1,
    seed: 5,
    network: {
      arch: 'resnet18',
      width: 64,
      baseWidth: 8,
      stem: 'standard',
      inChannels: 3,
      projHidden: 16,
      projDim: 8,
    },
  };

  /**
   * Three steps of ResNet-18 (standard stem, 64 px, batch 8): the losses, the weights after two
   * updates, and the tensors left behind by the last two steps.
   */
  async function steps(backend: 'wasm' | 'native-memory') {
    await use(backend);
    const model = new MaskConModel(cfg);
    const x = seeded([8, 64, 64, 3], 21) as tf.Tensor4D;
    const xk = seeded([8, 64, 64, 3], 22) as tf.Tensor4D;
    const labels = Int32Array.from([0, 1, 2, 3, 0, 1, 2, 3]);
    const losses: number[] = [];
    const weights = new Map<string, Float32Array>();
    // Δθ over two updates (θ₀ is the same seeded initialisation on both backends)
    const initial = new Map<string, Float32Array>();
    for (const [n, v] of model.encoderQ.trainable)
      initial.set(n, Float32Array.from((await v.data()) as Float32Array));
    let tensors = 0;
    for (let s = 0; s < 3; s++) {
      if (s === 1) tensors = tf.memory().numTensors; // after the optimizer's first-step state
      const batch: StepBatch = {
        labels,
        shuffle: new Rng(40 + s).permutation(8),
        views: (positions, view) =>
          tf.tidy(() =>
            tf.gather(view === 'query' ? x : xk, tf.tensor1d(Int32Array.from(positions), 'int32')),
          ),
      };
      const loss = model.step(batch, 0.005);
      losses.push((await loss.data())[0]);
      loss.dispose();
      if (s === 1)
        for (const [n, v] of model.encoderQ.trainable)
          weights.set(
            n,
            Float32Array.from((await v.data()) as Float32Array, (w, i) => w - initial.get(n)![i]),
          );
    }
    const leaked = tf.memory().numTensors - tensors;
    tf.dispose([x, xk]);
    return { losses, weights, leaked };
  }

  // Tolerance: the losses within 1e-3 (they are ~2–7), each parameter's update Δθ over two steps
  // within 1e-3 of its largest entry (measured: ≤ 1.7e-4, the same as cpu vs wasm). With fewer
  // images per BN group (BN over 4 values in layer4 at 32 px) rounding is amplified so much that
  // cpu and wasm themselves differ by 9 %, hence 64 px and one BN group.
  it('matches the wasm backend: losses, updates of every parameter, no tensor leaked per step', async () => {
    const ref = await steps('wasm');
    const got = await steps('native-memory');
    expect(got.leaked).toBe(0);
    expect(ref.leaked).toBe(0);
    for (let s = 0; s < 3; s++) {
      expect(Number.isFinite(got.losses[s])).toBe(true);
      expect(Math.abs(got.losses[s] - ref.losses[s]), `loss ${s}`).toBeLessThan(1e-3);
    }
    expect([...got.weights.keys()]).toEqual([...ref.weights.keys()]);
    for (const [n, dw] of ref.weights) {
      expect(maxAbs(dw), n).toBeGreaterThan(0);
      expect(maxAbsDiff(dw, got.weights.get(n)!) / maxAbs(dw), n).toBeLessThan(1e-3);
    }
    // the standard stem ran on oneDNN: 7×7 conv, max-pool and its gradient
    const keys = [...memoryImplementations().keys()].join('\n');
    expect(keys).toMatch(/Conv2D\[8,64,64,3\]\*\[7,7,8\]/);
    expect(keys).toMatch(/MaxPoolGrad\[8,32,32,8\]/);
  }, 120_000);
});
