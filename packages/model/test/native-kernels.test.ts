/**
 * The oneDNN kernels of @maskcon/native on the wasm heap, checked against tfjs's cpu backend over
 * the same shape/stride/padding grids as the wasm kernels (kernel-cases.ts). Where the addon is
 * not built (or MASKCON_NATIVE=0) only the loader's report is checked and the rest skips.
 */
import { loadNative } from '@maskcon/native';
import * as tf from '@tensorflow/tfjs';
import '@tensorflow/tfjs-backend-wasm';
import { afterAll, beforeAll, describe, expect, it, vi } from 'vitest';
import { batchNormTrainFused, registerWasmTrainingKernels } from '../src/kernels/index.js';
import {
  MOMENTUM_AVERAGE,
  SGD_MOMENTUM,
  momentumAverage,
  sgdMomentumUpdate,
} from '../src/kernels/updates.js';
import {
  NATIVE_KERNEL_NAMES,
  nativeImplementations,
  nativeKernelsRegistered,
  registerNativeKernels,
  unregisterNativeKernels,
} from '../src/kernels/native.js';
import { createTinyNetVars, seededValues, tinyNetLoss } from './tiny-net.js';
import { type ConvCase, convCases, matMulCases, maxAbs, maxAbsDiff, name } from './kernel-cases.js';

const TOL = 1e-3;
const native = loadNative();

async function use(backend: 'cpu' | 'wasm'): Promise<void> {
  expect(await tf.setBackend(backend)).toBe(true);
  await tf.ready();
}

const count = (s: number[]): number => s.reduce((p, q) => p * q, 1);
const seeded = (shape: number[], seed: number): tf.Tensor =>
  tf.tensor(seededValues(count(shape), seed), shape);

/** Runs `fn` on `backend` with seeded inputs of `shapes`; returns the output values and shape. */
async function runOn(
  backend: 'cpu' | 'wasm',
  shapes: number[][],
  seed: number,
  fn: (...xs: tf.Tensor[]) => tf.Tensor,
): Promise<{ data: Float32Array; shape: number[] }> {
  await use(backend);
  const xs = shapes.map((s, i) => seeded(s, seed + i));
  const out = fn(...xs);
  const data = Float32Array.from((await out.data()) as ArrayLike<number>);
  const shape = out.shape;
  tf.dispose([...xs, out]);
  return { data, shape };
}

/** Same values on cpu and on wasm+oneDNN, and the oneDNN path really ran (a new plan key). */
async function expectNativeMatchesCpu(
  shapes: number[][],
  seed: number,
  fn: (...xs: tf.Tensor[]) => tf.Tensor,
  kernel: string,
): Promise<void> {
  const ref = await runOn('cpu', shapes, seed, fn);
  const before = [...nativeImplementations().keys()].filter((k) => k.startsWith(kernel)).length;
  const got = await runOn('wasm', shapes, seed, fn);
  expect(got.shape).toEqual(ref.shape);
  expect(maxAbs(ref.data)).toBeGreaterThan(0);
  expect(maxAbsDiff(ref.data, got.data)).toBeLessThan(TOL);
  const after = [...nativeImplementations().keys()].filter((k) => k.startsWith(kernel)).length;
  // A shape seen before reuses its plan; every case here is new to the kernel.
  expect(after, `${kernel} ran on oneDNN`).toBe(before + 1);
}

function convAttrs(c: ConvCase): tf.NamedAttrMap {
  return { strides: c.s, pad: c.pad, dataFormat: 'NHWC' } as unknown as tf.NamedAttrMap;
}

function convOut(c: ConvCase): number[] {
  return tf.tidy(
    () =>
      tf.conv2d(
        tf.zeros([c.b, c.h, c.w, c.ci]) as tf.Tensor4D,
        tf.zeros([c.k, c.k, c.ci, c.co]) as tf.Tensor4D,
        c.s,
        c.pad,
      ).shape,
  );
}

describe('loadNative', () => {
  it('reports MASKCON_NATIVE=0 in one line instead of loading', () => {
    const prev = process.env.MASKCON_NATIVE;
    process.env.MASKCON_NATIVE = '0';
    try {
      const r = loadNative();
      expect(r.ok).toBe(false);
      if (!r.ok) expect(r.reason).toBe('disabled by MASKCON_NATIVE=0');
    } finally {
      if (prev == null) delete process.env.MASKCON_NATIVE;
      else process.env.MASKCON_NATIVE = prev;
    }
  });

  it('loads here, or says why in one line', () => {
    if (native.ok) expect(native.kernels.info().version).toMatch(/^\d+\.\d+\.\d+$/);
    else expect(native.reason).toMatch(/^[^\n]+$/);
  });
});

describe.skipIf(!native.ok)('oneDNN kernels on the wasm heap', () => {
  beforeAll(async () => {
    if (!native.ok) return;
    registerWasmTrainingKernels();
    registerNativeKernels(native.kernels);
    native.kernels.setThreads(1);
    await use('wasm');
  });

  afterAll(() => {
    unregisterNativeKernels();
  });

  it('registers on top of the wasm kernels and unregisters cleanly', async () => {
    expect([...NATIVE_KERNEL_NAMES].sort()).toEqual([
      'BatchMatMul',
      'Conv2D',
      'Conv2DBackpropFilter',
      'Conv2DBackpropInput',
      'FusedConv2D',
      'MaskconBatchNormGrad',
      'MaskconBatchNormTrain',
      'MaskconMomentumAverage',
      'MaskconSgdMomentum',
    ]);
    expect(nativeKernelsRegistered()).toBe(true);
    const wasmConv = tf.getKernel('Conv2D', 'wasm');
    unregisterNativeKernels();
    expect(nativeKernelsRegistered()).toBe(false);
    expect(tf.getKernel('Conv2D', 'wasm')).not.toBe(wasmConv);
    // the previous (XNNPACK) kernel is back and computes
    const y = tf.tidy(() =>
      tf
        .conv2d(
          tf.ones([1, 5, 5, 2]) as tf.Tensor4D,
          tf.ones([3, 3, 2, 1]) as tf.Tensor4D,
          1,
          'same',
        )
        .dataSync(),
    );
    expect(y[6]).toBe(18);
    if (native.ok) registerNativeKernels(native.kernels);
    expect(nativeKernelsRegistered()).toBe(true);
  });

  describe('Conv2D', () => {
    it.each(convCases().map((c, i) => [name(c), c, i] as const))('%s', async (_n, c, i) => {
      await expectNativeMatchesCpu(
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
      await expectNativeMatchesCpu(
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
      await expectNativeMatchesCpu(
        [convOut(c), [c.k, c.k, c.ci, c.co]],
        100 + 2 * i,
        (dy, filter) =>
          tf.engine().runKernel(
            'Conv2DBackpropInput',
            { dy, filter },
            {
              ...convAttrs(c),
              inputShape: [c.b, c.h, c.w, c.ci],
            },
          ) as tf.Tensor,
        'Conv2DBackpropInput[',
      );
    });
  });

  describe('Conv2DBackpropFilter', () => {
    it.each(convCases().map((c, i) => [name(c), c, i] as const))('%s', async (_n, c, i) => {
      await expectNativeMatchesCpu(
        [[c.b, c.h, c.w, c.ci], convOut(c)],
        300 + 2 * i,
        (x, dy) =>
          tf.engine().runKernel(
            'Conv2DBackpropFilter',
            { x, dy },
            {
              ...convAttrs(c),
              filterShape: [c.k, c.k, c.ci, c.co],
            },
          ) as tf.Tensor,
        'Conv2DBackpropFilter[',
      );
    });
  });

  describe('FusedConv2D', () => {
    const c: ConvCase = { b: 2, h: 9, w: 8, ci: 4, co: 6, k: 3, s: 2, pad: 'same' };
    for (const [activation, withBias, onNative] of [
      ['relu', true, true],
      ['linear', true, true],
      ['relu', false, true],
      ['elu', true, false], // not fused by oneDNN here: the wasm kernel runs
    ] as const) {
      it(`${activation}${withBias ? ' + bias' : ''}`, async () => {
        const shapes = [[c.b, c.h, c.w, c.ci], [c.k, c.k, c.ci, c.co], [c.co]];
        const fn = (x: tf.Tensor, filter: tf.Tensor, bias: tf.Tensor): tf.Tensor =>
          tf.fused.conv2d({
            x: x as tf.Tensor4D,
            filter: filter as tf.Tensor4D,
            strides: c.s,
            pad: c.pad,
            bias: withBias ? bias : undefined,
            activation,
          });
        const ref = await runOn('cpu', shapes, 40, fn);
        const got = await runOn('wasm', shapes, 40, fn);
        expect(maxAbs(ref.data)).toBeGreaterThan(0);
        if (activation === 'relu') expect(Math.min(...ref.data)).toBe(0);
        expect(maxAbsDiff(ref.data, got.data)).toBeLessThan(TOL);
        const fusedKeys = [...nativeImplementations().keys()].filter(
          (k) =>
            k.startsWith('FusedConv2D[') &&
            k.endsWith(withBias ? `+bias ${activation}` : ` ${activation}`),
        );
        expect(fusedKeys.length > 0).toBe(onNative);
      });
    }
  });

  describe('BatchMatMul', () => {
    const cases = [
      ...matMulCases(),
      // batches oneDNN takes directly: equal batches and a broadcast single matrix
      { a: [3, 7, 5], b: [3, 5, 4], tA: false, tB: false },
      { a: [2, 3, 6, 5], b: [2, 3, 4, 5], tA: false, tB: true },
      { a: [4, 5, 6], b: [5, 3], tA: true, tB: false },
    ];
    it.each(
      cases.map((c, i) => [`${c.a}${c.tA ? 'ᵀ' : ''} · ${c.b}${c.tB ? 'ᵀ' : ''}`, c, i] as const),
    )('%s', async (_n, c, i) => {
      const f = (a: tf.Tensor, b: tf.Tensor): tf.Tensor => tf.matMul(a, b, c.tA, c.tB);
      const ref = await runOn('cpu', [c.a, c.b], 700 + 2 * i, f);
      const got = await runOn('wasm', [c.a, c.b], 700 + 2 * i, f);
      expect(got.shape).toEqual(ref.shape);
      expect(maxAbsDiff(ref.data, got.data)).toBeLessThan(TOL);
    });
  });

  describe('split BatchNorm (training) forward and backward', () => {
    // [n, h, w, c, groups]: one and several groups, channels off the 16-lane blocks, 1×1 maps.
    const cases: [number, number, number, number, number][] = [
      [4, 5, 6, 3, 1],
      [4, 5, 6, 3, 2],
      [8, 3, 3, 16, 4],
      [6, 4, 4, 17, 3],
      [2, 1, 1, 7, 1],
      [3, 7, 5, 33, 1],
    ];
    it.each(cases.map((c) => [c.join('×'), c] as const))('%s', async (_n, c) => {
      const [n, h, w, ch, groups] = c;
      /** y, mean, variance and the gradients of Σ y·r for seeded r, as flat arrays. */
      const run = async (backend: 'cpu' | 'wasm'): Promise<Float32Array[]> => {
        await use(backend);
        const x = tf.add(seeded([n, h, w, ch], 21), 0.5) as tf.Tensor4D;
        const gamma = tf.add(seeded([ch], 22), 1);
        const beta = seeded([ch], 23);
        const r = seeded([n, h, w, ch], 24);
        const tensors = tf.memory().numTensors;
        const outs: tf.Tensor[] = [];
        const g = tf.grads((xi: tf.Tensor, gi: tf.Tensor, bi: tf.Tensor) => {
          const res = batchNormTrainFused(xi as tf.Tensor4D, gi, bi, 1e-5, groups);
          outs.push(tf.keep(res.y.clone()), res.mean, res.variance);
          return tf.sum(tf.mul(res.y, r));
        })([x, gamma, beta]);
        const all = [...outs, ...g];
        const data = await Promise.all(all.map(async (t) => Float32Array.from(await t.data())));
        tf.dispose(all);
        expect(tf.memory().numTensors).toBe(tensors);
        tf.dispose([x, gamma, beta, r]);
        return data;
      };
      const ref = await run('cpu');
      const before = [...nativeImplementations().keys()].filter((k) => k.startsWith('BatchNorm'));
      const got = await run('wasm');
      const after = [...nativeImplementations().keys()].filter((k) => k.startsWith('BatchNorm'));
      expect(after.length, 'forward and backward ran on oneDNN').toBe(before.length + 2);
      const names = ['y', 'mean', 'variance', 'dx', 'dgamma', 'dbeta'];
      expect(ref[1]).toHaveLength(groups * ch);
      for (let i = 0; i < names.length; i++) {
        expect(got[i], names[i]).toHaveLength(ref[i].length);
        expect(maxAbs(ref[i]), names[i]).toBeGreaterThan(0);
        expect(maxAbsDiff(ref[i], got[i]), names[i]).toBeLessThan(TOL);
      }
    });
  });

  describe('parameter updates: one pass, the same float32 operations as the tfjs composition', () => {
    /** Elements that differ bit for bit (or in length). */
    const mismatches = (a: Float32Array, b: Float32Array): number => {
      let d = Math.abs(a.length - b.length);
      for (let i = 0; i < Math.min(a.length, b.length); i++) if (!Object.is(a[i], b[i])) d++;
      return d;
    };
    // 70,000 floats take the OpenMP-parallel loop; 37 the short one.
    const cases = [
      { n: 37, first: true, weightDecay: 0 },
      { n: 37, first: false, weightDecay: 1e-4 },
      { n: 70_000, first: false, weightDecay: 5e-4 },
      { n: 70_000, first: true, weightDecay: 5e-4 },
    ];
    it.each(
      cases.map((c) => [`SGD momentum n=${c.n} first=${c.first} wd=${c.weightDecay}`, c] as const),
    )('%s', async (_n, c) => {
      const h = { lr: 0.03, momentum: 0.9, weightDecay: c.weightDecay };
      const shape = [c.n];
      // cpu: the composition (no fused kernel there); wasm: the oneDNN backend's kernel itself.
      const run = async (backend: 'cpu' | 'wasm'): Promise<Float32Array[]> => {
        await use(backend);
        const [p, g, b] = [seeded(shape, 31), seeded(shape, 32), seeded(shape, 33)];
        const out =
          backend === 'cpu'
            ? sgdMomentumUpdate(p, g, c.first ? null : b, h)
            : (() => {
                const [pNew, bNew] = tf
                  .engine()
                  .runKernel(
                    SGD_MOMENTUM,
                    c.first ? { p, g } : { p, g, b },
                    h as unknown as tf.NamedAttrMap,
                  ) as tf.Tensor[];
                return { p: pNew, b: bNew };
              })();
        const data = [Float32Array.from(await out.p.data()), Float32Array.from(await out.b.data())];
        tf.dispose([p, g, b, out.p, out.b]);
        return data;
      };
      const ref = await run('cpu');
      const got = await run('wasm');
      expect(maxAbs(ref[0])).toBeGreaterThan(0);
      expect(got[0]).toEqual(ref[0]);
      expect(got[1]).toEqual(ref[1]);
      // and the op itself takes the kernel on the native backend
      await use('wasm');
      const spy = vi.spyOn(tf.engine(), 'runKernel');
      const [p, g] = [seeded(shape, 31), seeded(shape, 32)];
      const viaOp = sgdMomentumUpdate(p, g, null, h);
      expect(spy.mock.calls.some(([k]) => k === SGD_MOMENTUM)).toBe(true);
      spy.mockRestore();
      tf.dispose([p, g, viaOp.p, viaOp.b]);
    });

    it.each([37, 70_000])('momentum average n=%i', async (n) => {
      const run = async (backend: 'cpu' | 'wasm'): Promise<Float32Array> => {
        await use(backend);
        const [k, q] = [seeded([n], 41), seeded([n], 42)];
        const out =
          backend === 'cpu'
            ? momentumAverage(k, q, 0.999)
            : (tf.engine().runKernel(MOMENTUM_AVERAGE, { k, q }, { m: 0.999 }) as tf.Tensor);
        const data = Float32Array.from(await out.data());
        tf.dispose([k, q, out]);
        return data;
      };
      const ref = await run('cpu');
      expect(maxAbs(ref)).toBeGreaterThan(0);
      expect(mismatches(await run('wasm'), ref)).toBe(0);
    });
  });

  it('the tiny network gives the same loss and gradients as cpu, without leaking', async () => {
    const cfg = { inChannels: 3, width: 8, hidden: 16, dim: 8, queue: 12 };
    const grads = async (
      backend: 'cpu' | 'wasm',
    ): Promise<{ loss: number; g: Record<string, Float32Array> }> => {
      await use(backend);
      const vars = createTinyNetVars(cfg, 7);
      const x = seeded([4, 10, 10, 3], 11) as tf.Tensor4D;
      const queue = seeded([cfg.queue, cfg.dim], 12) as tf.Tensor2D;
      const targets = tf.tidy(() =>
        tf.softmax(tf.mul(seeded([4, cfg.queue], 13), 3)),
      ) as tf.Tensor2D;
      const tensors = tf.memory().numTensors;
      const { value, grads: gs } = tf.variableGrads(() => tinyNetLoss(vars, x, queue, targets));
      const g: Record<string, Float32Array> = {};
      const byVar = new Map(Object.entries(vars).map(([k, v]) => [v.name, k]));
      for (const [k, v] of Object.entries(gs))
        g[byVar.get(k) ?? k] = (await v.data()) as Float32Array;
      const loss = (await value.data())[0];
      tf.dispose([value, ...Object.values(gs)]);
      expect(tf.memory().numTensors).toBe(tensors);
      tf.dispose([x, queue, targets, ...Object.values(vars)]);
      return { loss, g };
    };
    const ref = await grads('cpu');
    const got = await grads('wasm');
    expect(Math.abs(ref.loss - got.loss)).toBeLessThan(TOL);
    const names = Object.keys(ref.g).sort();
    expect(names).toHaveLength(15);
    expect(Object.keys(got.g).sort()).toEqual(names);
    for (const n of names) {
      expect(maxAbs(ref.g[n]), n).toBeGreaterThan(0);
      expect(maxAbsDiff(ref.g[n], got.g[n]), n).toBeLessThan(TOL);
    }
  });
});
