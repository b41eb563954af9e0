/**
 * oneDNN kernels of the `native-memory` backend. Each reads its inputs' Float32Arrays from the
 * backend's storage and writes a fresh Float32Array output in place (@maskcon/native's
 * memory-ops): Conv2D, FusedConv2D (bias + linear/ReLU), Conv2DBackpropInput/Filter,
 * BatchMatMul, MaxPool and MaxPoolGrad, and the training BatchNorm pair used by
 * kernels/batch-norm.ts. Anything they do not cover (dtype, layout, activation, geometry oneDNN
 * refuses) runs tfjs's JS kernel of the cpu backend instead.
 */
import * as tf from '@tensorflow/tfjs';
import type { NativeMemoryOps, PoolGeometry } from '@maskcon/native';
import type { MathBackendCPU } from '@tensorflow/tfjs-backend-cpu';
import { BATCH_NORM_GRAD, BATCH_NORM_TRAIN, type BatchNormAttrs } from '../batch-norm.js';
import { convGeometry as geometry, convKey, oneDnnAttempts, sizeOf } from '../onednn-common.js';

type Info = tf.TensorInfo;
type Args = { inputs: tf.NamedTensorInfoMap; attrs?: tf.NamedAttrMap; backend: unknown };

const Kind = { forward: 0, backwardData: 1, backwardWeights: 2 } as const;

let ops: NativeMemoryOps | null = null;
/** The cpu backend's kernel per name: the fallback. */
const cpuKernels = new Map<string, tf.KernelConfig>();
/** oneDNN's implementation per kernel and shape run so far. */
const implementations = new Map<string, string>();

export function setOps(o: NativeMemoryOps): void {
  ops = o;
}

export function setCpuKernel(config: tf.KernelConfig): void {
  cpuKernels.set(config.kernelName, config);
}

export function memoryImplementations(): ReadonlyMap<string, string> {
  return implementations;
}

function cpu(name: string, args: Args): Info | Info[] {
  const k = cpuKernels.get(name);
  if (k == null) throw new Error(`native-memory: no cpu '${name}' kernel to fall back to`);
  return k.kernelFunc(args as Parameters<tf.KernelFunc>[0]);
}

function values(backend: MathBackendCPU, t: Info): Float32Array {
  const v = backend.data.get(t.dataId).values;
  if (!(v instanceof Float32Array)) throw new Error('native-memory: expected float32 storage');
  return v;
}

function output(backend: MathBackendCPU, shape: number[]): { info: Info; v: Float32Array } {
  const v = new Float32Array(sizeOf(shape));
  return { info: backend.makeTensorInfo(shape, 'float32', v), v };
}

const tryNative = oneDnnAttempts('native-memory', 'JS', implementations);

const nhwc = (dataFormat: unknown): boolean => dataFormat == null || dataFormat === 'NHWC';
const f32 = (...ts: Info[]): boolean => ts.every((t) => t.dtype === 'float32');

function conv2dInfo(x: number[], f: number[], a: tf.Conv2DAttrs): tf.backend_util.Conv2DInfo {
  return tf.backend_util.computeConv2DInfo(
    x as [number, number, number, number],
    f as [number, number, number, number],
    a.strides,
    a.dilations ?? 1,
    a.pad,
    a.dimRoundingMode,
    false,
    'channelsLast',
  );
}

function forward(name: string, args: Args, bias: Info | null, act: 'linear' | 'relu'): Info {
  const backend = args.backend as MathBackendCPU;
  const { x, filter } = args.inputs as { x: Info; filter: Info };
  const attrs = args.attrs as unknown as tf.Conv2DAttrs;
  if (ops == null || !f32(x, filter) || !nhwc(attrs.dataFormat) || x.shape.length !== 4)
    return cpu(name, args) as Info;
  const info = conv2dInfo(x.shape, filter.shape, attrs);
  const g = geometry(info);
  if (sizeOf(info.outShape) === 0 || sizeOf(x.shape) === 0) return cpu(name, args) as Info;
  const out = output(backend, info.outShape);
  const o = ops;
  const t = {
    x: values(backend, x),
    filter: values(backend, filter),
    y: out.v,
    bias: bias ? values(backend, bias) : undefined,
  };
  if (
    tryNative(name, convKey(name, g, bias ? ` +bias ${act}` : ` ${act}`), () =>
      o.conv(Kind.forward, t, g, act),
    )
  )
    return out.info;
  backend.disposeData(out.info.dataId);
  return cpu(name, args) as Info;
}

function conv2d(args: Args): Info {
  return forward(tf.Conv2D, args, null, 'linear');
}

function fusedConv2d(args: Args): Info {
  const { filter, bias, preluActivationWeights } = args.inputs as {
    filter: Info;
    bias?: Info;
    preluActivationWeights?: Info;
  };
  const act = (args.attrs as unknown as tf.FusedConv2DAttrs).activation ?? 'linear';
  if (
    (act !== 'linear' && act !== 'relu') ||
    preluActivationWeights != null ||
    (bias != null && (bias.dtype !== 'float32' || sizeOf(bias.shape) !== filter.shape[3]))
  )
    return cpu(tf.FusedConv2D, args) as Info;
  return forward(tf.FusedConv2D, args, bias ?? null, act);
}

function backward(
  name: string,
  kind: 1 | 2,
  args: Args,
  xShape: number[],
  filterShape: number[],
  dy: Info,
  other: Info,
): Info {
  const backend = args.backend as MathBackendCPU;
  const attrs = args.attrs as unknown as tf.Conv2DAttrs;
  if (ops == null || !f32(dy, other) || !nhwc(attrs.dataFormat)) return cpu(name, args) as Info;
  const g = geometry(conv2dInfo(xShape, filterShape, { ...attrs, dilations: 1 }));
  if (
    dy.shape[1] !== g.oh ||
    dy.shape[2] !== g.ow ||
    sizeOf(dy.shape) === 0 ||
    sizeOf(xShape) === 0 ||
    sizeOf(filterShape) === 0
  )
    return cpu(name, args) as Info;
  const out = output(backend, kind === Kind.backwardData ? xShape : filterShape);
  const o = ops;
  const t =
    kind === Kind.backwardData
      ? { x: out.v, filter: values(backend, other), y: values(backend, dy) }
      : { x: values(backend, other), filter: out.v, y: values(backend, dy) };
  if (tryNative(name, convKey(name, g), () => o.conv(kind, t, g))) return out.info;
  backend.disposeData(out.info.dataId);
  return cpu(name, args) as Info;
}

function conv2dBackpropInput(args: Args): Info {
  const { dy, filter } = args.inputs as { dy: Info; filter: Info };
  const attrs = args.attrs as unknown as tf.Conv2DBackpropInputAttrs;
  return backward(
    tf.Conv2DBackpropInput,
    Kind.backwardData,
    args,
    [...attrs.inputShape],
    filter.shape,
    dy,
    filter,
  );
}

function conv2dBackpropFilter(args: Args): Info {
  const { x, dy } = args.inputs as { x: Info; dy: Info };
  const attrs = args.attrs as unknown as tf.Conv2DBackpropFilterAttrs;
  if (x.shape.length !== 4) return cpu(tf.Conv2DBackpropFilter, args) as Info;
  return backward(
    tf.Conv2DBackpropFilter,
    Kind.backwardWeights,
    args,
    x.shape,
    [...attrs.filterShape],
    dy,
    x,
  );
}

function batchMatMul(args: Args): Info {
  const backend = args.backend as MathBackendCPU;
  const { a, b } = args.inputs as { a: Info; b: Info };
  const attrs = (args.attrs ?? {}) as unknown as tf.BatchMatMulAttrs;
  const ra = a.shape.length;
  const rb = b.shape.length;
  if (ops == null || !f32(a, b) || ra < 2 || rb < 2) return cpu(tf.BatchMatMul, args) as Info;
  const tA = !!attrs.transposeA;
  const tB = !!attrs.transposeB;
  const m = tA ? a.shape[ra - 1] : a.shape[ra - 2];
  const k = tA ? a.shape[ra - 2] : a.shape[ra - 1];
  const kb = tB ? b.shape[rb - 1] : b.shape[rb - 2];
  const n = tB ? b.shape[rb - 2] : b.shape[rb - 1];
  const batchA = sizeOf(a.shape.slice(0, -2));
  const batchB = sizeOf(b.shape.slice(0, -2));
  // Only a whole-batch broadcast maps onto oneDNN's batch dimension directly.
  const sameBatch =
    ra === rb && a.shape.slice(0, -2).every((d, i) => d === b.shape[i]) && batchA === batchB;
  if (k !== kb || !(sameBatch || batchA === 1 || batchB === 1) || m * n === 0 || k === 0)
    return cpu(tf.BatchMatMul, args) as Info;
  const outBatch = tf.broadcast_util.assertAndGetBroadcastShape(
    a.shape.slice(0, -2),
    b.shape.slice(0, -2),
  );
  const out = output(backend, [...outBatch, m, n]);
  const o = ops;
  const t = { a: values(backend, a), b: values(backend, b), c: out.v };
  const key = `BatchMatMul [${batchA},${m},${k}]x[${batchB},${k},${n}] t${+tA}${+tB}`;
  if (
    tryNative(tf.BatchMatMul, key, () =>
      o.matmul(t, { batchA, batchB, m, k, n, transposeA: tA, transposeB: tB }),
    )
  )
    return out.info;
  backend.disposeData(out.info.dataId);
  return cpu(tf.BatchMatMul, args) as Info;
}

function poolGeometry(info: tf.backend_util.Conv2DInfo): PoolGeometry {
  const p = info.padInfo;
  return {
    n: info.batchSize,
    h: info.inHeight,
    w: info.inWidth,
    c: info.inChannels,
    kh: info.filterHeight,
    kw: info.filterWidth,
    oh: info.outHeight,
    ow: info.outWidth,
    strides: [info.strideHeight, info.strideWidth],
    pads: [p.top, p.bottom, p.left, p.right],
  };
}

function poolInfo(xShape: number[], a: tf.MaxPoolAttrs): tf.backend_util.Conv2DInfo {
  return tf.backend_util.computePool2DInfo(
    xShape as [number, number, number, number],
    a.filterSize,
    a.strides,
    1,
    a.pad,
    a.dimRoundingMode,
  );
}

const poolKey = (kernel: string, g: PoolGeometry): string =>
  `${kernel}[${g.n},${g.h},${g.w},${g.c}] k${g.kh},${g.kw} s${g.strides} p${g.pads}`;

function maxPool(args: Args): Info {
  const backend = args.backend as MathBackendCPU;
  const { x } = args.inputs as { x: Info };
  const attrs = args.attrs as unknown as tf.MaxPoolAttrs;
  if (ops == null || !f32(x) || x.shape.length !== 4) return cpu(tf.MaxPool, args) as Info;
  const info = poolInfo(x.shape, attrs);
  const g = poolGeometry(info);
  if (sizeOf(info.outShape) === 0) return cpu(tf.MaxPool, args) as Info;
  const out = output(backend, info.outShape);
  const o = ops;
  const t = { x: values(backend, x), y: out.v };
  if (tryNative(tf.MaxPool, poolKey(tf.MaxPool, g), () => o.maxPool(t, g))) return out.info;
  backend.disposeData(out.info.dataId);
  return cpu(tf.MaxPool, args) as Info;
}

function maxPoolGrad(args: Args): Info {
  const backend = args.backend as MathBackendCPU;
  const { dy, input } = args.inputs as { dy: Info; input: Info };
  const attrs = args.attrs as unknown as tf.MaxPoolGradAttrs;
  if (ops == null || !f32(dy, input) || input.shape.length !== 4)
    return cpu(tf.MaxPoolGrad, args) as Info;
  const g = poolGeometry(poolInfo(input.shape, attrs));
  if (dy.shape[1] !== g.oh || dy.shape[2] !== g.ow || sizeOf(input.shape) === 0)
    return cpu(tf.MaxPoolGrad, args) as Info;
  const out = output(backend, [...input.shape]);
  const o = ops;
  const t = { x: values(backend, input), dy: values(backend, dy), dx: out.v };
  if (tryNative(tf.MaxPoolGrad, poolKey(tf.MaxPoolGrad, g), () => o.maxPoolBackward(t, g)))
    return out.info;
  backend.disposeData(out.info.dataId);
  return cpu(tf.MaxPoolGrad, args) as Info;
}

/** x N×H×W×C (any rank, channels last), γ, β [C] → y like x, mean and variance [groups, C]. */
function batchNormTrain(args: Args): Info[] {
  const backend = args.backend as MathBackendCPU;
  const { x, gamma, beta } = args.inputs as { x: Info; gamma: Info; beta: Info };
  const { groups, eps } = args.attrs as unknown as BatchNormAttrs;
  const c = x.shape[x.shape.length - 1];
  const s = { groups, rows: sizeOf(x.shape) / c / groups, channels: c };
  if (ops == null) throw new Error('native-memory: oneDNN ops not loaded');
  const y = output(backend, [...x.shape]);
  const mean = output(backend, [groups, c]);
  const variance = output(backend, [groups, c]);
  const gv = values(backend, gamma);
  const bv = values(backend, beta);
  const key = `BatchNormTrain [${groups},${s.rows},${c}]`;
  implementations.set(
    key,
    ops.batchNormForward(
      { x: values(backend, x), gamma: gv, beta: bv, y: y.v, mean: mean.v, variance: variance.v },
      s,
      eps,
    ),
  );
  return [y.info, mean.info, variance.info];
}

/** dy like x, with the forward's x, γ, (β: unused), mean, variance → dx, dγ, dβ. */
function batchNormTrainGrad(args: Args): Info[] {
  const backend = args.backend as MathBackendCPU;
  const { x, dy, gamma, mean, variance } = args.inputs as Record<string, Info>;
  const { groups, eps } = args.attrs as unknown as BatchNormAttrs;
  const c = x.shape[x.shape.length - 1];
  const s = { groups, rows: sizeOf(x.shape) / c / groups, channels: c };
  if (ops == null) throw new Error('native-memory: oneDNN ops not loaded');
  const dx = output(backend, [...x.shape]);
  const dgamma = output(backend, [c]);
  const dbeta = output(backend, [c]);
  const key = `BatchNormTrainGrad [${groups},${s.rows},${c}]`;
  implementations.set(
    key,
    ops.batchNormBackward(
      {
        x: values(backend, x),
        dy: values(backend, dy),
        gamma: values(backend, gamma),
        mean: values(backend, mean),
        variance: values(backend, variance),
        dx: dx.v,
        dgamma: dgamma.v,
        dbeta: dbeta.v,
      },
      s,
      eps,
    ),
  );
  return [dx.info, dgamma.info, dbeta.info];
}

/** Below this many elements the JS loop beats the call into the addon. */
const MIN_NATIVE_ELEMENTS = 1 << 14;

function sameShape(a: readonly number[], b: readonly number[]): boolean {
  return a.length === b.length && a.every((d, i) => d === b[i]);
}

/** Add/Sub/Multiply of two float32 tensors of one shape (no broadcast) on OpenMP threads. */
function binary(name: string, op: 'add' | 'sub' | 'mul'): (args: Args) => Info {
  return (args) => {
    const backend = args.backend as MathBackendCPU;
    const { a, b } = args.inputs as { a: Info; b: Info };
    const n = sizeOf(a.shape);
    if (ops == null || !f32(a, b) || !sameShape(a.shape, b.shape) || n < MIN_NATIVE_ELEMENTS)
      return cpu(name, args) as Info;
    const out = output(backend, [...a.shape]);
    ops.elementwise(op, { a: values(backend, a), b: values(backend, b), out: out.v }, n);
    return out.info;
  };
}

/** Relu, and Step with alpha 0 (ReLU's gradient is dy · step(x)). */
function unary(name: string, op: 'relu' | 'step'): (args: Args) => Info {
  return (args) => {
    const backend = args.backend as MathBackendCPU;
    const { x } = args.inputs as { x: Info };
    const alpha = (args.attrs as { alpha?: number } | undefined)?.alpha ?? 0;
    const n = sizeOf(x.shape);
    if (ops == null || !f32(x) || alpha !== 0 || n < MIN_NATIVE_ELEMENTS)
      return cpu(name, args) as Info;
    const out = output(backend, [...x.shape]);
    ops.elementwise(op, { a: values(backend, x), out: out.v }, n);
    return out.info;
  };
}

/** The kernels that replace the cpu backend's (or add to them), by name. */
export const MEMORY_KERNELS: ReadonlyArray<[string, (args: Args) => Info | Info[]]> = [
  [tf.Conv2D, conv2d],
  [tf.FusedConv2D, fusedConv2d],
  [tf.Conv2DBackpropInput, conv2dBackpropInput],
  [tf.Conv2DBackpropFilter, conv2dBackpropFilter],
  [tf.BatchMatMul, batchMatMul],
  [tf.MaxPool, maxPool],
  [tf.MaxPoolGrad, maxPoolGrad],
  [BATCH_NORM_TRAIN, batchNormTrain],
  [BATCH_NORM_GRAD, batchNormTrainGrad],
  [tf.Add, binary(tf.Add, 'add')],
  [tf.Sub, binary(tf.Sub, 'sub')],
  [tf.Multiply, binary(tf.Multiply, 'mul')],
  [tf.Relu, unary(tf.Relu, 'relu')],
  [tf.Step, unary(tf.Step, 'step')],
];
