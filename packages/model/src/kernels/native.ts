/**
 * oneDNN kernels (@maskcon/native) registered for the wasm backend: Conv2D, FusedConv2D (bias and
 * linear/ReLU), Conv2DBackpropInput, Conv2DBackpropFilter and BatchMatMul read their operands
 * from the wasm heap and write their output into a tensor allocated there, in place (the addon
 * gets a view of the heap plus byte offsets), so every other op stays on wasm untouched.
 *
 * A case the addon does not take (another dtype or data format, a fused activation other than
 * linear/ReLU, a batch broadcast it cannot express, a geometry oneDNN rejects) runs the kernel that
 * was registered before ours (tfjs's, or this project's wasm gradient kernel).
 */
import * as tf from '@tensorflow/tfjs';
import type { NativeKernels, ConvKind } from '@maskcon/native';
import { ConvKind as Kind } from '@maskcon/native';
import type { Info, WasmBackend } from './wasm-ops.js';
import { BATCH_NORM_GRAD, BATCH_NORM_TRAIN, type BatchNormAttrs } from './batch-norm.js';
import { MOMENTUM_AVERAGE, SGD_MOMENTUM, type SgdMomentumAttrs } from './updates.js';
import {
  convGeometry as geometry,
  convKey as keyOf,
  oneDnnAttempts,
  sizeOf,
} from './onednn-common.js';

/** The kernels ours replace, by name (tfjs's or this project's wasm kernels). */
const previous = new Map<string, tf.KernelConfig>();
let addon: NativeKernels | null = null;
/** oneDNN implementation chosen per kernel and shape, for benchmarks and logs. */
const implementations = new Map<string, string>();

type KernelArgs = { inputs: tf.NamedTensorInfoMap; backend: unknown; attrs?: tf.NamedAttrMap };

function callPrevious(name: string, args: KernelArgs): Info {
  const k = previous.get(name);
  if (k == null) throw new Error(`native kernels: no previous '${name}' kernel to fall back to`);
  const out = k.kernelFunc(args as Parameters<tf.KernelFunc>[0]);
  if (Array.isArray(out)) throw new Error(`wasm kernel '${name}' returned several outputs`);
  return out;
}

function heapOf(backend: WasmBackend): Uint8Array {
  // Taken after the output is allocated: growing the wasm memory replaces its buffer.
  return (backend.wasm as unknown as { HEAPU8: Uint8Array }).HEAPU8;
}

const offsetOf = (backend: WasmBackend, info: Info): number => backend.getMemoryOffset(info.dataId);

const tryNative = oneDnnAttempts('native', 'wasm', implementations);

function nhwc(dataFormat: unknown): boolean {
  return dataFormat == null || dataFormat === 'NHWC';
}

function conv2dInfo(
  xShape: number[],
  filterShape: number[],
  attrs: tf.Conv2DAttrs,
): tf.backend_util.Conv2DInfo {
  return tf.backend_util.computeConv2DInfo(
    xShape as [number, number, number, number],
    filterShape as [number, number, number, number],
    attrs.strides,
    attrs.dilations ?? 1,
    attrs.pad,
    attrs.dimRoundingMode,
    false,
    'channelsLast',
  );
}

/** Forward convolution, optionally with bias and ReLU (FusedConv2D). */
function forward(name: string, args: KernelArgs, bias: Info | null, act: 'linear' | 'relu'): Info {
  const backend = args.backend as WasmBackend;
  const { x, filter } = args.inputs as { x: Info; filter: Info };
  const attrs = args.attrs as unknown as tf.Conv2DAttrs;
  if (
    addon == null ||
    x.dtype !== 'float32' ||
    filter.dtype !== 'float32' ||
    !nhwc(attrs.dataFormat) ||
    x.shape.length !== 4
  )
    return callPrevious(name, args);
  const info = conv2dInfo(x.shape, filter.shape, attrs);
  const g = geometry(info);
  if (sizeOf(info.outShape) === 0 || sizeOf(x.shape) === 0) return callPrevious(name, args);
  const out = backend.makeOutput(info.outShape, 'float32');
  const k = addon;
  const ok = tryNative(name, keyOf(name, g, bias ? ` +bias ${act}` : ` ${act}`), () =>
    k.conv(
      Kind.forward,
      heapOf(backend),
      {
        x: offsetOf(backend, x),
        filter: offsetOf(backend, filter),
        y: offsetOf(backend, out),
        bias: bias ? offsetOf(backend, bias) : undefined,
      },
      g,
      act,
    ),
  );
  if (ok) return out;
  backend.disposeData(out.dataId);
  return callPrevious(name, args);
}

function conv2dNative(args: KernelArgs): Info {
  return forward(tf.Conv2D, args, null, 'linear');
}

function fusedConv2dNative(args: KernelArgs): Info {
  const { filter, bias, preluActivationWeights } = args.inputs as {
    filter: Info;
    bias?: Info;
    preluActivationWeights?: Info;
  };
  const attrs = args.attrs as unknown as tf.FusedConv2DAttrs;
  const act = attrs.activation ?? 'linear';
  const co = filter.shape[3];
  if (
    (act !== 'linear' && act !== 'relu') ||
    preluActivationWeights != null ||
    (bias != null && (bias.dtype !== 'float32' || sizeOf(bias.shape) !== co))
  )
    return callPrevious(tf.FusedConv2D, args);
  return forward(tf.FusedConv2D, args, bias ?? null, act);
}

/** dx (backwardData) or dw (backwardWeights) of a convolution. */
function backward(
  name: string,
  kind: ConvKind,
  args: KernelArgs,
  xShape: number[],
  filterShape: number[],
  dy: Info,
  other: Info,
): Info {
  const backend = args.backend as WasmBackend;
  const attrs = args.attrs as unknown as tf.Conv2DAttrs;
  if (
    addon == null ||
    dy.dtype !== 'float32' ||
    other.dtype !== 'float32' ||
    !nhwc(attrs.dataFormat)
  )
    return callPrevious(name, args);
  const info = conv2dInfo(xShape, filterShape, { ...attrs, dilations: 1 });
  const g = geometry(info);
  if (
    dy.shape[1] !== g.oh ||
    dy.shape[2] !== g.ow ||
    sizeOf(dy.shape) === 0 ||
    sizeOf(xShape) === 0 ||
    sizeOf(filterShape) === 0
  )
    return callPrevious(name, args);
  const outShape = kind === Kind.backwardData ? xShape : filterShape;
  const out = backend.makeOutput(outShape, 'float32');
  const k = addon;
  const ok = tryNative(name, keyOf(name, g), () =>
    k.conv(
      kind,
      heapOf(backend),
      kind === Kind.backwardData
        ? { x: offsetOf(backend, out), filter: offsetOf(backend, other), y: offsetOf(backend, dy) }
        : { x: offsetOf(backend, other), filter: offsetOf(backend, out), y: offsetOf(backend, dy) },
      g,
    ),
  );
  if (ok) return out;
  backend.disposeData(out.dataId);
  return callPrevious(name, args);
}

function conv2dBackpropInputNative(args: KernelArgs): Info {
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

function conv2dBackpropFilterNative(args: KernelArgs): Info {
  const { x, dy } = args.inputs as { x: Info; dy: Info };
  const attrs = args.attrs as unknown as tf.Conv2DBackpropFilterAttrs;
  if (x.shape.length !== 4) return callPrevious(tf.Conv2DBackpropFilter, args);
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

function batchMatMulNative(args: KernelArgs): Info {
  const backend = args.backend as WasmBackend;
  const { a, b } = args.inputs as { a: Info; b: Info };
  const attrs = (args.attrs ?? {}) as unknown as tf.BatchMatMulAttrs;
  const ra = a.shape.length;
  const rb = b.shape.length;
  if (addon == null || a.dtype !== 'float32' || b.dtype !== 'float32' || ra < 2 || rb < 2)
    return callPrevious(tf.BatchMatMul, args);
  const tA = !!attrs.transposeA;
  const tB = !!attrs.transposeB;
  const m = tA ? a.shape[ra - 1] : a.shape[ra - 2];
  const k = tA ? a.shape[ra - 2] : a.shape[ra - 1];
  const kb = tB ? b.shape[rb - 1] : b.shape[rb - 2];
  const n = tB ? b.shape[rb - 2] : b.shape[rb - 1];
  const batchA = sizeOf(a.shape.slice(0, -2));
  const batchB = sizeOf(b.shape.slice(0, -2));
  // Only a whole-batch broadcast (equal leading shapes, or one side a single matrix) maps to
  // oneDNN's batch dimension directly; anything else keeps the wasm kernel.
  const sameBatch =
    ra === rb && a.shape.slice(0, -2).every((d, i) => d === b.shape[i]) && batchA === batchB;
  if (k !== kb || !(sameBatch || batchA === 1 || batchB === 1) || m * n === 0 || k === 0)
    return callPrevious(tf.BatchMatMul, args);
  const outBatch = tf.broadcast_util.assertAndGetBroadcastShape(
    a.shape.slice(0, -2),
    b.shape.slice(0, -2),
  );
  const out = backend.makeOutput([...outBatch, m, n], 'float32');
  const addonNow = addon;
  const key = `BatchMatMul [${batchA},${m},${k}]x[${batchB},${k},${n}] t${+tA}${+tB}`;
  const ok = tryNative(tf.BatchMatMul, key, () =>
    addonNow.matmul(
      heapOf(backend),
      { a: offsetOf(backend, a), b: offsetOf(backend, b), c: offsetOf(backend, out) },
      { batchA, batchB, m, k, n, transposeA: tA, transposeB: tB },
    ),
  );
  if (ok) return out;
  backend.disposeData(out.dataId);
  return callPrevious(tf.BatchMatMul, args);
}

/**
 * Training-mode split BatchNorm forward (kernels/batch-norm.ts's BATCH_NORM_TRAIN): x [n,h,w,c],
 * gamma, beta [c] → y, mean [groups, c], biased variance [groups, c]. One oneDNN pass per group
 * instead of the ~10 elementwise wasm passes of the composed op.
 */
function batchNormTrainNative(args: KernelArgs): Info[] {
  const backend = args.backend as WasmBackend;
  const { x, gamma, beta } = args.inputs as { x: Info; gamma: Info; beta: Info };
  const { eps, groups } = args.attrs as unknown as BatchNormAttrs;
  const [n, h, w, c] = x.shape;
  if (addon == null) throw new Error('native kernels: the addon is not loaded');
  const y = backend.makeOutput(x.shape, 'float32');
  const mean = backend.makeOutput([groups, c], 'float32');
  const variance = backend.makeOutput([groups, c], 'float32');
  const key = `BatchNormTrain [${n},${h},${w},${c}] groups ${groups}`;
  implementations.set(
    key,
    addon.batchNorm(
      heapOf(backend),
      {
        kind: 'forward',
        x: offsetOf(backend, x),
        gamma: offsetOf(backend, gamma),
        beta: offsetOf(backend, beta),
        y: offsetOf(backend, y),
        mean: offsetOf(backend, mean),
        variance: offsetOf(backend, variance),
      },
      { n, h, w, c, groups, eps },
    ),
  );
  return [y, mean, variance];
}

/** Its backward: dy, x, gamma, beta, mean, variance → dx [n,h,w,c], dgamma, dbeta [c]. */
function batchNormGradNative(args: KernelArgs): Info[] {
  const backend = args.backend as WasmBackend;
  const { dy, x, gamma, beta, mean, variance } = args.inputs as Record<string, Info>;
  const { eps, groups } = args.attrs as unknown as BatchNormAttrs;
  const [n, h, w, c] = x.shape;
  if (addon == null) throw new Error('native kernels: the addon is not loaded');
  const dx = backend.makeOutput(x.shape, 'float32');
  const dgamma = backend.makeOutput([c], 'float32');
  const dbeta = backend.makeOutput([c], 'float32');
  const key = `BatchNormGrad [${n},${h},${w},${c}] groups ${groups}`;
  implementations.set(
    key,
    addon.batchNorm(
      heapOf(backend),
      {
        kind: 'backward',
        dy: offsetOf(backend, dy),
        x: offsetOf(backend, x),
        gamma: offsetOf(backend, gamma),
        beta: offsetOf(backend, beta),
        mean: offsetOf(backend, mean),
        variance: offsetOf(backend, variance),
        dx: offsetOf(backend, dx),
        dgamma: offsetOf(backend, dgamma),
        dbeta: offsetOf(backend, dbeta),
      },
      { n, h, w, c, groups, eps },
    ),
  );
  return [dx, dgamma, dbeta];
}

/** One SGD-with-momentum step (kernels/updates.ts): {p, g, b?} → [p', b']. */
function sgdMomentumNative(args: KernelArgs): Info[] {
  const backend = args.backend as WasmBackend;
  const { p, g, b } = args.inputs as { p: Info; g: Info; b?: Info };
  const h = args.attrs as unknown as SgdMomentumAttrs;
  if (addon == null) throw new Error('native kernels: the addon is not loaded');
  const n = sizeOf(p.shape);
  if (sizeOf(g.shape) !== n || (b != null && sizeOf(b.shape) !== n))
    throw new Error(`${SGD_MOMENTUM}: parameter, gradient and buffer sizes differ`);
  const pOut = backend.makeOutput(p.shape, 'float32');
  const bOut = backend.makeOutput(p.shape, 'float32');
  addon.sgdMomentum(
    heapOf(backend),
    {
      p: offsetOf(backend, p),
      g: offsetOf(backend, g),
      b: b != null ? offsetOf(backend, b) : undefined,
      pOut: offsetOf(backend, pOut),
      bOut: offsetOf(backend, bOut),
    },
    n,
    h,
  );
  return [pOut, bOut];
}

/** k·m + q·(1 − m) (kernels/updates.ts). */
function momentumAverageNative(args: KernelArgs): Info {
  const backend = args.backend as WasmBackend;
  const { k, q } = args.inputs as { k: Info; q: Info };
  const { m } = args.attrs as unknown as { m: number };
  if (addon == null) throw new Error('native kernels: the addon is not loaded');
  const n = sizeOf(k.shape);
  if (sizeOf(q.shape) !== n) throw new Error(`${MOMENTUM_AVERAGE}: operand sizes differ`);
  const out = backend.makeOutput(k.shape, 'float32');
  addon.momentumAverage(
    heapOf(backend),
    { k: offsetOf(backend, k), q: offsetOf(backend, q), out: offsetOf(backend, out) },
    n,
    m,
  );
  return out;
}

/** Kernels of this project's own ops (no tfjs kernel underneath to fall back to). */
const OWN_KERNELS: ReadonlyArray<[string, (args: KernelArgs) => Info | Info[]]> = [
  [BATCH_NORM_TRAIN, batchNormTrainNative],
  [BATCH_NORM_GRAD, batchNormGradNative],
  [SGD_MOMENTUM, sgdMomentumNative],
  [MOMENTUM_AVERAGE, momentumAverageNative],
];

const KERNELS: ReadonlyArray<[string, (args: KernelArgs) => Info]> = [
  [tf.Conv2D, conv2dNative],
  [tf.FusedConv2D, fusedConv2dNative],
  [tf.Conv2DBackpropInput, conv2dBackpropInputNative],
  [tf.Conv2DBackpropFilter, conv2dBackpropFilterNative],
  [tf.BatchMatMul, batchMatMulNative],
];

const configs: tf.KernelConfig[] = KERNELS.map(([kernelName, fn]) => ({
  kernelName,
  backendName: 'wasm',
  kernelFunc: fn as unknown as tf.KernelFunc,
  // The replaced kernel's setup (tfjs's cwrap) still has to run: ours falls back to it.
  setupFunc: (backend) => previous.get(kernelName)?.setupFunc?.(backend),
}));

const ownConfigs: tf.KernelConfig[] = OWN_KERNELS.map(([kernelName, fn]) => ({
  kernelName,
  backendName: 'wasm',
  kernelFunc: fn as unknown as tf.KernelFunc,
}));

/** Names of the kernels `registerNativeKernels` puts on the wasm backend. */
export const NATIVE_KERNEL_NAMES: readonly string[] = Object.freeze([
  ...KERNELS.map(([n]) => n),
  ...OWN_KERNELS.map(([n]) => n),
]);

/**
 * Registers the oneDNN kernels for 'wasm' on top of whatever is registered (call after
 * `registerWasmTrainingKernels`). Idempotent.
 */
export function registerNativeKernels(kernels: NativeKernels): readonly string[] {
  addon = kernels;
  for (const config of configs) {
    const existing = tf.getKernel(config.kernelName, 'wasm');
    if (existing === config) continue;
    if (existing == null)
      throw new Error(`native kernels: no wasm '${config.kernelName}' kernel to fall back to`);
    previous.set(config.kernelName, existing);
    tf.unregisterKernel(config.kernelName, 'wasm');
    tf.registerKernel(config);
  }
  for (const config of ownConfigs)
    if (tf.getKernel(config.kernelName, 'wasm') == null) tf.registerKernel(config);
  return NATIVE_KERNEL_NAMES;
}

/** Puts back the kernels ours replaced (safe to call at any time). */
export function unregisterNativeKernels(): void {
  for (const config of configs) {
    if (tf.getKernel(config.kernelName, 'wasm') !== config) continue;
    tf.unregisterKernel(config.kernelName, 'wasm');
    const prev = previous.get(config.kernelName);
    if (prev != null) tf.registerKernel(prev);
    previous.delete(config.kernelName);
  }
  for (const config of ownConfigs)
    if (tf.getKernel(config.kernelName, 'wasm') === config)
      tf.unregisterKernel(config.kernelName, 'wasm');
}

/** True when our oneDNN kernels are the active wasm kernels. */
export function nativeKernelsRegistered(): boolean {
  return [...configs, ...ownConfigs].every((c) => tf.getKernel(c.kernelName, 'wasm') === c);
}

/** oneDNN's implementation per kernel and shape run so far (e.g. 'brgconv:avx512_core'). */
export function nativeImplementations(): ReadonlyMap<string, string> {
  return implementations;
}
