/**
 * Loader and typed surface of the oneDNN ops on separately owned tensors
 * (build/Release/maskcon_native_memory.node, src/memory-ops.cc): every operand is its own
 * Float32Array, read and written in place (napi_get_typedarray_info gives the pointer: no copy).
 * The `native-memory` tfjs backend of @maskcon/model keeps its tensors this way, outside any wasm
 * heap, so a step is not capped at 4 GB.
 *
 * `loadNativeMemory()` never throws: it returns the ops, or the one-line reason they are
 * unavailable (MASKCON_NATIVE=0, not built on this platform, libdnnl missing, load error).
 */
import { DISABLED_REASON, nativeDisabled, requireAddon } from './load-addon.js';
import type { ConvGeometry, ConvKind } from './index.js';

/** Max-pool geometry on NHWC tensors; padded cells never win. */
export interface PoolGeometry {
  n: number;
  h: number;
  w: number;
  c: number;
  kh: number;
  kw: number;
  oh: number;
  ow: number;
  strides: [number, number];
  /** [top, bottom, left, right] */
  pads: [number, number, number, number];
}

/** Training BatchNorm over groups: x viewed as [groups, rows, channels]. */
export interface BatchNormShape {
  groups: number;
  rows: number;
  channels: number;
}

interface MemoryAddon {
  conv(
    kind: number,
    x: Float32Array,
    filter: Float32Array,
    y: Float32Array,
    bias: Float32Array | null,
    shape: number[],
  ): string;
  matmul(a: Float32Array, b: Float32Array, c: Float32Array, shape: number[]): string;
  batchNormForward(
    x: Float32Array,
    gamma: Float32Array,
    beta: Float32Array,
    y: Float32Array,
    mean: Float32Array,
    variance: Float32Array,
    shape: number[],
    eps: number,
  ): string;
  batchNormBackward(
    x: Float32Array,
    dy: Float32Array,
    gamma: Float32Array,
    mean: Float32Array,
    variance: Float32Array,
    dx: Float32Array,
    dgamma: Float32Array,
    dbeta: Float32Array,
    shape: number[],
    eps: number,
  ): string;
  maxPool(x: Float32Array, y: Float32Array, shape: number[]): string;
  maxPoolBackward(x: Float32Array, dy: Float32Array, dx: Float32Array, shape: number[]): string;
  reluBackward(dy: Float32Array, x: Float32Array, dx: Float32Array, length: number): void;
  elementwise(
    op: number,
    a: Float32Array,
    b: Float32Array | null,
    out: Float32Array,
    length: number,
  ): void;
  setThreads(n: number): void;
  clearCache(): void;
  arenaBytes(): number;
}

/** Each op writes its output arrays in place and returns oneDNN's implementation name. */
export interface NativeMemoryOps {
  /**
   * forward: y = conv(x, filter) (+ bias, ReLU); backwardData: x ← dx from y = dy;
   * backwardWeights: filter ← dw from x and y = dy.
   */
  conv(
    kind: ConvKind,
    t: { x: Float32Array; filter: Float32Array; y: Float32Array; bias?: Float32Array },
    g: ConvGeometry,
    activation?: 'linear' | 'relu',
  ): string;
  /** C[b] = op(A[b])·op(B[b]), row-major, a batch of 1 broadcasts (see NativeKernels.matmul). */
  matmul(
    t: { a: Float32Array; b: Float32Array; c: Float32Array },
    s: {
      batchA: number;
      batchB: number;
      m: number;
      k: number;
      n: number;
      transposeA: boolean;
      transposeB: boolean;
    },
  ): string;
  /** y = (x − μ_g)/√(σ²_g + eps)·γ + β; writes y, mean and biased variance (G×C). */
  batchNormForward(
    t: {
      x: Float32Array;
      gamma: Float32Array;
      beta: Float32Array;
      y: Float32Array;
      mean: Float32Array;
      variance: Float32Array;
    },
    s: BatchNormShape,
    eps: number,
  ): string;
  /** dx, dγ, dβ of batchNormForward given dy and the forward's statistics. */
  batchNormBackward(
    t: {
      x: Float32Array;
      dy: Float32Array;
      gamma: Float32Array;
      mean: Float32Array;
      variance: Float32Array;
      dx: Float32Array;
      dgamma: Float32Array;
      dbeta: Float32Array;
    },
    s: BatchNormShape,
    eps: number,
  ): string;
  maxPool(t: { x: Float32Array; y: Float32Array }, g: PoolGeometry): string;
  /** dx of max-pooling: dy routed to each window's (first) maximum of x. */
  maxPoolBackward(
    t: { x: Float32Array; dy: Float32Array; dx: Float32Array },
    g: PoolGeometry,
  ): string;
  /** dx = dy where x > 0, else 0 (first `length` elements). */
  reluBackward(t: { dy: Float32Array; x: Float32Array; dx: Float32Array }, length: number): void;
  /**
   * out = a + b, a − b, a · b (same length), max(0, a) or step(a) (1 where a > 0, else 0), over
   * the first `length` elements; NaN propagates as in tfjs.
   */
  elementwise(
    op: ElementwiseOp,
    t: { a: Float32Array; b?: Float32Array; out: Float32Array },
    length: number,
  ): void;
  /** OpenMP threads of the calling JS thread's primitives. */
  setThreads(n: number): void;
  /** Drops the calling thread's cached primitives and their arena. */
  clearCache(): void;
  /** Bytes of the calling thread's reorder/scratchpad arena. */
  arenaBytes(): number;
}

export const ELEMENTWISE_OPS = { add: 0, sub: 1, mul: 2, relu: 3, step: 4 } as const;
export type ElementwiseOp = keyof typeof ELEMENTWISE_OPS;

export type NativeMemoryLoad = { ok: true; ops: NativeMemoryOps } | { ok: false; reason: string };

let loaded: NativeMemoryLoad | null = null;

const poolShape = (g: PoolGeometry): number[] => [
  g.n,
  g.h,
  g.w,
  g.c,
  g.kh,
  g.kw,
  g.oh,
  g.ow,
  g.strides[0],
  g.strides[1],
  ...g.pads,
];

function wrap(a: MemoryAddon): NativeMemoryOps {
  return {
    conv: (kind, t, g, activation = 'linear') =>
      a.conv(kind, t.x, t.filter, t.y, t.bias ?? null, [
        g.n,
        g.h,
        g.w,
        g.ci,
        g.kh,
        g.kw,
        g.co,
        g.oh,
        g.ow,
        g.strides[0],
        g.strides[1],
        g.dilations[0],
        g.dilations[1],
        ...g.pads,
        t.bias != null ? 1 : 0,
        activation === 'relu' ? 1 : 0,
      ]),
    matmul: (t, s) =>
      a.matmul(t.a, t.b, t.c, [
        s.batchA,
        s.batchB,
        s.m,
        s.k,
        s.n,
        s.transposeA ? 1 : 0,
        s.transposeB ? 1 : 0,
      ]),
    batchNormForward: (t, s, eps) =>
      a.batchNormForward(
        t.x,
        t.gamma,
        t.beta,
        t.y,
        t.mean,
        t.variance,
        [s.groups, s.rows, s.channels],
        eps,
      ),
    batchNormBackward: (t, s, eps) =>
      a.batchNormBackward(
        t.x,
        t.dy,
        t.gamma,
        t.mean,
        t.variance,
        t.dx,
        t.dgamma,
        t.dbeta,
        [s.groups, s.rows, s.channels],
        eps,
      ),
    maxPool: (t, g) => a.maxPool(t.x, t.y, poolShape(g)),
    maxPoolBackward: (t, g) => a.maxPoolBackward(t.x, t.dy, t.dx, poolShape(g)),
    reluBackward: (t, length) => a.reluBackward(t.dy, t.x, t.dx, length),
    elementwise: (op, t, length) =>
      a.elementwise(ELEMENTWISE_OPS[op], t.a, t.b ?? null, t.out, length),
    setThreads: (n) => a.setThreads(n),
    clearCache: () => a.clearCache(),
    arenaBytes: () => a.arenaBytes(),
  };
}

/** Loads the ops once (cached); returns why they are unavailable instead of throwing. */
export function loadNativeMemory(): NativeMemoryLoad {
  if (nativeDisabled()) return { ok: false, reason: DISABLED_REASON };
  if (loaded != null) return loaded;
  const r = requireAddon<MemoryAddon>('maskcon_native_memory.node');
  loaded = r.ok ? { ok: true, ops: wrap(r.addon) } : r;
  return loaded;
}
