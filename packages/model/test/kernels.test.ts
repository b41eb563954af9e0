import * as tf from '@tensorflow/tfjs';
import '@tensorflow/tfjs-backend-wasm';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import {
  WASM_TRAINING_KERNEL_NAMES,
  registerWasmTrainingKernels,
  unregisterWasmTrainingKernels,
  wasmTrainingKernelsRegistered,
} from '../src/kernels/index.js';
import { setBackpropFilterChunk } from '../src/kernels/conv2d-backprop-filter.js';
import { batchNormTrainFused } from '../src/kernels/batch-norm.js';
import { forceBatchMatMulOrientation } from '../src/kernels/batch-mat-mul.js';
import { createTinyNetVars, seededValues, tinyNetLoss, type TinyNetConfig } from './tiny-net.js';
import { type ConvCase, convCases, matMulCases, maxAbs, maxAbsDiff, name } from './kernel-cases.js';

const TOL = 1e-3;

async function use(backend: 'cpu' | 'wasm'): Promise<void> {
  expect(await tf.setBackend(backend)).toBe(true);
  await tf.ready();
  expect(tf.getBackend()).toBe(backend);
}

function convOutShape(c: ConvCase): number[] {
  const x = tf.zeros([c.b, c.h, c.w, c.ci]) as tf.Tensor4D;
  const f = tf.zeros([c.k, c.k, c.ci, c.co]) as tf.Tensor4D;
  const y = tf.conv2d(x, f, c.s, c.pad);
  const shape = y.shape;
  tf.dispose([x, f, y]);
  return shape;
}

/** Runs one of the conv gradient kernels directly on `backend` with seeded inputs. */
async function runKernelOn(
  backend: 'cpu' | 'wasm',
  kernel: 'Conv2DBackpropFilter' | 'Conv2DBackpropInput',
  c: ConvCase,
  seed: number,
): Promise<Float32Array> {
  await use(backend);
  const dyShape = convOutShape(c);
  const n = (s: number[]): number => s.reduce((p, q) => p * q, 1);
  const dy = tf.tensor(seededValues(n(dyShape), seed), dyShape);
  let out: tf.Tensor;
  if (kernel === 'Conv2DBackpropFilter') {
    const xs = [c.b, c.h, c.w, c.ci];
    const x = tf.tensor(seededValues(n(xs), seed + 1), xs);
    out = tf.engine().runKernel(kernel, { x, dy }, {
      strides: c.s,
      pad: c.pad,
      dataFormat: 'NHWC',
      filterShape: [c.k, c.k, c.ci, c.co],
    } as unknown as tf.NamedAttrMap) as tf.Tensor;
    expect(out.shape).toEqual([c.k, c.k, c.ci, c.co]);
    x.dispose();
  } else {
    const fs = [c.k, c.k, c.ci, c.co];
    const filter = tf.tensor(seededValues(n(fs), seed + 2), fs);
    out = tf.engine().runKernel(kernel, { dy, filter }, {
      strides: c.s,
      pad: c.pad,
      dataFormat: 'NHWC',
      inputShape: [c.b, c.h, c.w, c.ci],
    } as unknown as tf.NamedAttrMap) as tf.Tensor;
    expect(out.shape).toEqual([c.b, c.h, c.w, c.ci]);
    filter.dispose();
  }
  const data = (await out.data()) as Float32Array;
  tf.dispose([dy, out]);
  return data;
}

beforeAll(async () => {
  registerWasmTrainingKernels();
  await use('wasm');
});

afterAll(() => {
  // leave the registry as we found it for other suites in this worker
  registerWasmTrainingKernels();
});

describe('registration', () => {
  it('registers the listed kernels for wasm, idempotently, and unregisters cleanly', () => {
    expect([...WASM_TRAINING_KERNEL_NAMES].sort()).toEqual([
      'BatchMatMul',
      'Conv2DBackpropFilter',
      'Conv2DBackpropInput',
      'Identity',
      'Mean',
      'Sum',
    ]);
    const before = tf.getKernelsForBackend('wasm').length;
    expect(registerWasmTrainingKernels()).toEqual(WASM_TRAINING_KERNEL_NAMES);
    registerWasmTrainingKernels();
    expect(tf.getKernelsForBackend('wasm').length).toBe(before);
    expect(wasmTrainingKernelsRegistered()).toBe(true);

    unregisterWasmTrainingKernels();
    expect(wasmTrainingKernelsRegistered()).toBe(false);
    expect(tf.getKernel('Conv2DBackpropFilter', 'wasm')).toBeUndefined();
    // tfjs's own (slow) wasm kernels come back, and work
    for (const k of ['Conv2DBackpropInput', 'BatchMatMul', 'Sum', 'Mean'])
      expect(tf.getKernel(k, 'wasm'), k).toBeDefined();
    const restored = tf.tidy(() =>
      tf.sum(tf.matMul(tf.ones([2, 3]), tf.ones([4, 3]), false, true), 0).arraySync(),
    );
    expect(restored).toEqual([6, 6, 6, 6]);
    unregisterWasmTrainingKernels(); // second call is harmless

    registerWasmTrainingKernels();
    expect(wasmTrainingKernelsRegistered()).toBe(true);
  });
});

describe('Identity (the clone tfjs makes of every tensor saved for a gradient)', () => {
  it('shares the buffer instead of copying, and frees it with the last reference', async () => {
    await use('wasm');
    const backend = tf.backend() as unknown as { getMemoryOffset(id: object): number };
    const before = tf.engine().backend.numDataIds();
    const x = tf.tensor([1, -2, 3, 4.5], [2, 2]);
    const y = tf.clone(x);
    expect(y.dataId).toBe(x.dataId);
    expect(backend.getMemoryOffset(y.dataId)).toBe(backend.getMemoryOffset(x.dataId));
    expect(tf.engine().backend.numDataIds()).toBe(before + 1);
    x.dispose();
    expect(Array.from(await y.data())).toEqual([1, -2, 3, 4.5]);
    y.dispose();
    expect(tf.engine().backend.numDataIds()).toBe(before);
    // gradients that rely on saved clones (Relu keeps its output, Mul its inputs) are unchanged
    const v = tf.tensor([-1, 2, 3]);
    const g = tf.grad((t: tf.Tensor) => tf.sum(tf.mul(tf.relu(t), t)))(v);
    expect(Array.from(await g.data())).toEqual([0, 4, 6]);
    tf.dispose([v, g]);
  });
});

describe.each([
  'Conv2DBackpropFilter',
  'Conv2DBackpropInput',
] as const)('%s on wasm matches cpu', (kernel) => {
  it.each(convCases().map((c, i) => [name(c), c, i] as const))('%s', async (_n, c, i) => {
    const ref = await runKernelOn('cpu', kernel, c, 100 + i);
    const got = await runKernelOn('wasm', kernel, c, 100 + i);
    const err = maxAbsDiff(ref, got);
    expect(maxAbs(ref)).toBeGreaterThan(0);
    expect(err).toBeLessThan(TOL);
  });
});

describe('Conv2DBackpropFilter with small reduction chunks (bands of rows, ranges of columns)', () => {
  const cases: ConvCase[] = [
    { b: 3, h: 9, w: 7, ci: 4, co: 5, k: 3, s: 1, pad: 'same' },
    { b: 2, h: 8, w: 8, ci: 3, co: 6, k: 3, s: 1, pad: 'valid' },
    { b: 4, h: 6, w: 11, ci: 2, co: 3, k: 1, s: 1, pad: 'same' },
    { b: 1, h: 12, w: 10, ci: 8, co: 4, k: 7, s: 1, pad: 2 },
    // Stride 2 on even widths: phase-split columns (odd widths use the dilated convolution).
    { b: 3, h: 10, w: 8, ci: 4, co: 5, k: 3, s: 2, pad: 1 },
    { b: 2, h: 9, w: 12, ci: 3, co: 4, k: 1, s: 2, pad: 'same' },
    { b: 2, h: 12, w: 12, ci: 3, co: 8, k: 7, s: 2, pad: 'same' },
    { b: 1, h: 11, w: 10, ci: 2, co: 3, k: 3, s: 2, pad: 'valid' },
  ];
  it.each(
    cases.flatMap((c, i) =>
      [1, 5, 13, 64].map((chunk) => [`${name(c)} chunk ${chunk}`, c, i, chunk] as const),
    ),
  )('%s', async (_n, c, i, chunk) => {
    const ref = await runKernelOn('cpu', 'Conv2DBackpropFilter', c, 700 + i);
    const prev = setBackpropFilterChunk(chunk);
    try {
      const got = await runKernelOn('wasm', 'Conv2DBackpropFilter', c, 700 + i);
      expect(maxAbs(ref)).toBeGreaterThan(0);
      expect(maxAbsDiff(ref, got)).toBeLessThan(TOL);
    } finally {
      setBackpropFilterChunk(prev);
    }
  });
});

/** Runs `fn` on `backend` with seeded inputs of `shapes` and returns the output values and shape. */
async function runOn(
  backend: 'cpu' | 'wasm',
  shapes: number[][],
  seed: number,
  fn: (...xs: tf.Tensor[]) => tf.Tensor,
): Promise<{ data: Float32Array; shape: number[] }> {
  await use(backend);
  const xs = shapes.map((s, i) =>
    tf.tensor(
      seededValues(
        s.reduce((p, q) => p * q, 1),
        seed + i,
      ),
      s,
    ),
  );
  const out = fn(...xs);
  const data = Float32Array.from((await out.data()) as ArrayLike<number>);
  const shape = out.shape;
  tf.dispose([...xs, out]);
  return { data, shape };
}

describe.each([
  'cost model',
  'direct',
  'swapped',
] as const)('BatchMatMul on wasm matches cpu (%s orientation)', (orientation) => {
  it.each(
    matMulCases().map(
      (c, i) => [`${c.a}${c.tA ? 'ᵀ' : ''} · ${c.b}${c.tB ? 'ᵀ' : ''}`, c, i] as const,
    ),
  )('%s', async (_n, c, i) => {
    const f = (a: tf.Tensor, b: tf.Tensor): tf.Tensor => tf.matMul(a, b, c.tA, c.tB);
    const ref = await runOn('cpu', [c.a, c.b], 300 + 2 * i, f);
    forceBatchMatMulOrientation(orientation === 'cost model' ? null : orientation);
    try {
      const got = await runOn('wasm', [c.a, c.b], 300 + 2 * i, f);
      expect(got.shape).toEqual(ref.shape);
      expect(maxAbs(ref.data)).toBeGreaterThan(0);
      expect(maxAbsDiff(ref.data, got.data)).toBeLessThan(TOL);
    } finally {
      forceBatchMatMulOrientation(null);
    }
  });
});

interface ReduceCase {
  shape: number[];
  axis: number | number[];
  keepDims: boolean;
}

function reduceCases(): ReduceCase[] {
  return [
    { shape: [4, 5, 6, 7], axis: [0, 1, 2], keepDims: false }, // BatchNorm statistics
    { shape: [4, 5, 6, 7], axis: [0, 1, 2], keepDims: true },
    { shape: [2, 3, 5, 6, 4], axis: [1, 2, 3], keepDims: true }, // split BatchNorm (G groups)
    { shape: [3, 8, 8, 16], axis: [1, 2], keepDims: false }, // global average pool
    { shape: [9, 11], axis: 0, keepDims: false },
    { shape: [9, 11], axis: [-2], keepDims: true },
    { shape: [5, 1, 3], axis: [0, 1], keepDims: false },
    { shape: [1000, 3], axis: 0, keepDims: false },
    { shape: [6, 7, 2], axis: [1], keepDims: false },
    // tfjs's original kernel: innermost, non-contiguous, all axes, size-1 block
    { shape: [9, 11], axis: 1, keepDims: true },
    { shape: [4, 5, 6], axis: [0, 2], keepDims: false },
    { shape: [4, 5, 6], axis: [0, 1, 2], keepDims: false },
    { shape: [1, 5, 6], axis: [0], keepDims: false },
  ];
}

describe.each(['sum', 'mean'] as const)('%s on wasm matches cpu', (op) => {
  it.each(
    reduceCases().map(
      (c, i) =>
        [`[${c.shape}] axis ${JSON.stringify(c.axis)} keepDims ${c.keepDims}`, c, i] as const,
    ),
  )('%s', async (_n, c, i) => {
    const f = (x: tf.Tensor): tf.Tensor => tf[op](x, c.axis, c.keepDims);
    const ref = await runOn('cpu', [c.shape], 500 + i, f);
    const got = await runOn('wasm', [c.shape], 500 + i, f);
    expect(got.shape).toEqual(ref.shape);
    expect(maxAbs(ref.data)).toBeGreaterThan(0);
    expect(maxAbsDiff(ref.data, got.data)).toBeLessThan(TOL);
  });

  it('keeps int32 inputs working (original kernel)', async () => {
    await use('wasm');
    const x = tf.tensor2d([1, 2, 3, 4, 5, 6], [3, 2], 'int32');
    const y = tf[op](x, 0);
    expect(Array.from(await y.data())).toEqual(op === 'sum' ? [9, 12] : [3, 4]);
    tf.dispose([x, y]);
  });
});

describe('fused BatchNorm (customGrad) matches the composed formula', () => {
  /** The composed split-BN of resnet.ts. */
  function composed(
    x: tf.Tensor4D,
    g: tf.Tensor,
    b: tf.Tensor,
    eps: number,
    groups: number,
  ): tf.Tensor4D {
    const [n, h, w, c] = x.shape;
    const xg = tf.reshape(x, [groups, n / groups, h, w, c]);
    const { mean, variance } = tf.moments(xg, [1, 2, 3], true);
    const y = tf.mul(tf.sub(xg, mean), tf.rsqrt(tf.add(variance, eps)));
    return tf.add(tf.mul(tf.reshape(y, [n, h, w, c]), g), b) as tf.Tensor4D;
  }

  async function run(
    backend: 'cpu' | 'wasm',
    fused: boolean,
    shape: number[],
    groups: number,
    seed: number,
  ): Promise<Float32Array[]> {
    await use(backend);
    const c = shape[3];
    const x = tf
      .tensor(
        seededValues(
          shape.reduce((p, q) => p * q, 1),
          seed,
        ),
        shape,
      )
      .mul(3)
      .add(0.5) as tf.Tensor4D;
    const g = tf.tensor(seededValues(c, seed + 1)).add(1.5);
    const b = tf.tensor(seededValues(c, seed + 2));
    const wts = tf.tensor(seededValues(x.size, seed + 3), shape);
    const stats: tf.Tensor[] = [];
    const f = (xi: tf.Tensor, gi: tf.Tensor, bi: tf.Tensor): tf.Scalar => {
      let y: tf.Tensor4D;
      if (fused) {
        const r = batchNormTrainFused(xi as tf.Tensor4D, gi, bi, 1e-5, groups);
        stats.push(r.mean, r.variance);
        y = r.y;
      } else {
        y = composed(xi as tf.Tensor4D, gi, bi, 1e-5, groups);
      }
      return tf.sum(tf.mul(tf.relu(y), wts)) as tf.Scalar;
    };
    const { value, grads } = tf.valueAndGrads(f)([x, g, b]);
    const out = [value, ...grads].map((t) => Float32Array.from(t.dataSync()));
    if (fused) {
      // statistics: mean and biased variance per group
      const ref = tf.tidy(() => tf.moments(tf.reshape(x, [groups, -1, c]), 1));
      expect(maxAbsDiff(stats[0].dataSync(), ref.mean.dataSync())).toBeLessThan(TOL);
      expect(maxAbsDiff(stats[1].dataSync(), ref.variance.dataSync())).toBeLessThan(TOL * 10);
      tf.dispose([ref.mean, ref.variance]);
    }
    tf.dispose([x, g, b, wts, value, ...grads, ...stats]);
    return out;
  }

  it.each([
    [[4, 5, 6, 3], 1],
    [[4, 3, 3, 2], 2],
    [[8, 2, 2, 5], 4],
    [[6, 7, 7, 16], 1],
  ] as const)('shape %j groups %i: value, dx, dγ, dβ on cpu and wasm', async (shape, groups) => {
    const ref = await run('cpu', false, [...shape], groups, 900);
    for (const backend of ['cpu', 'wasm'] as const) {
      const got = await run(backend, true, [...shape], groups, 900);
      ['value', 'dx', 'dgamma', 'dbeta'].forEach((what, i) => {
        const scale = Math.max(1, maxAbs(ref[i]));
        expect(maxAbsDiff(ref[i], got[i]) / scale, `${backend} ${what}`).toBeLessThan(TOL);
      });
    }
  });

  it('does not leak tensors', async () => {
    await use('wasm');
    const x = tf.randomNormal([4, 3, 3, 2]) as tf.Tensor4D;
    const g = tf.ones([2]);
    const b = tf.zeros([2]);
    const step = (): void => {
      const { value, grads } = tf.valueAndGrads((xi: tf.Tensor) => {
        const r = batchNormTrainFused(xi as tf.Tensor4D, g, b, 1e-5, 2);
        tf.dispose([r.mean, r.variance]);
        return tf.sum(tf.square(r.y)) as tf.Scalar;
      })([x]);
      tf.dispose([value, ...grads]);
    };
    step();
    const before = tf.memory().numTensors;
    step();
    step();
    expect(tf.memory().numTensors).toBe(before);
    tf.dispose([x, g, b]);
  });
});

describe('tiny network training step', () => {
  const cfg: TinyNetConfig = { inChannels: 3, width: 8, hidden: 16, dim: 8, queue: 12 };
  const batch = 4;
  const size = 10;

  async function gradsOn(
    backend: 'cpu' | 'wasm',
  ): Promise<{ loss: number; grads: Record<string, Float32Array> }> {
    await use(backend);
    const vars = createTinyNetVars(cfg, 7);
    const x = tf.tensor(seededValues(batch * size * size * cfg.inChannels, 11), [
      batch,
      size,
      size,
      cfg.inChannels,
    ]) as tf.Tensor4D;
    const queue = tf.tensor(seededValues(cfg.queue * cfg.dim, 12), [
      cfg.queue,
      cfg.dim,
    ]) as tf.Tensor2D;
    const targets = tf.tidy(() =>
      tf.softmax(tf.mul(tf.tensor(seededValues(batch * cfg.queue, 13), [batch, cfg.queue]), 3)),
    ) as tf.Tensor2D;
    const { value, grads } = tf.variableGrads(() => tinyNetLoss(vars, x, queue, targets));
    const out: Record<string, Float32Array> = {};
    const byVar = new Map(Object.entries(vars).map(([k, v]) => [v.name, k]));
    for (const [varName, g] of Object.entries(grads))
      out[byVar.get(varName) ?? varName] = (await g.data()) as Float32Array;
    const loss = (await value.data())[0];
    tf.dispose([value, ...Object.values(grads), x, queue, targets, ...Object.values(vars)]);
    return { loss, grads: out };
  }

  it('gives the same gradients for every variable on wasm and cpu', async () => {
    const ref = await gradsOn('cpu');
    const got = await gradsOn('wasm');
    expect(Math.abs(ref.loss - got.loss)).toBeLessThan(TOL);
    const names = Object.keys(ref.grads).sort();
    expect(names).toHaveLength(15);
    expect(Object.keys(got.grads).sort()).toEqual(names);
    for (const n of names) {
      expect(maxAbs(ref.grads[n]), n).toBeGreaterThan(0);
      expect(maxAbsDiff(ref.grads[n], got.grads[n]), n).toBeLessThan(TOL);
    }
  });

  it('does not leak tensors or wasm buffers over repeated SGD steps', async () => {
    await use('wasm');
    const vars = createTinyNetVars(cfg, 3);
    const x = tf.tensor(seededValues(batch * size * size * cfg.inChannels, 21), [
      batch,
      size,
      size,
      cfg.inChannels,
    ]) as tf.Tensor4D;
    const queue = tf.tensor(seededValues(cfg.queue * cfg.dim, 22), [
      cfg.queue,
      cfg.dim,
    ]) as tf.Tensor2D;
    const targets = tf.tidy(() =>
      tf.softmax(tf.tensor(seededValues(batch * cfg.queue, 23), [batch, cfg.queue])),
    ) as tf.Tensor2D;
    const opt = tf.train.sgd(0.05);
    const step = (): number => {
      const { value, grads } = tf.variableGrads(() => tinyNetLoss(vars, x, queue, targets));
      opt.applyGradients(grads);
      const loss = value.dataSync()[0];
      tf.dispose([value, ...Object.values(grads)]);
      return loss;
    };
    const first = step(); // warm-up (optimizer state, kernel setup)
    const tensors = tf.memory().numTensors;
    const dataIds = tf.backend().numDataIds();
    let last = first;
    for (let i = 0; i < 5; i++) last = step();
    expect(tf.memory().numTensors).toBe(tensors);
    // also catches intermediates our kernels create outside the engine
    expect(tf.backend().numDataIds()).toBe(dataIds);
    expect(last).toBeLessThan(first); // it actually trains
    opt.dispose();
    tf.dispose([x, queue, targets, ...Object.values(vars)]);
  });
});
