/**
 * Loader and typed surface of the oneDNN addon (build/Release/maskcon_native.node, compiled at
 * `pnpm install` by scripts/build.mjs). The addon works on memory the caller owns: a typed-array
 * view of a heap (the tfjs wasm heap) plus byte offsets, so no tensor is copied.
 *
 * `loadNative()` never throws: it returns the addon, or the one-line reason it is unavailable
 * (disabled with MASKCON_NATIVE=0, not built on this platform, libdnnl missing, load error).
 */
import { DISABLED_REASON, nativeDisabled, requireAddon } from './load-addon.js';

/** Which convolution a `conv` call computes. */
export const ConvKind = { forward: 0, backwardData: 1, backwardWeights: 2 } as const;
export type ConvKind = (typeof ConvKind)[keyof typeof ConvKind];

/** Activation fused into a forward convolution. */
export const Activation = { linear: 0, relu: 1 } as const;

/**
 * Convolution geometry in TensorFlow's terms (x NHWC [n,h,w,ci], filter HWIO [kh,kw,ci,co],
 * y NHWC [n,oh,ow,co]); dilations as tfjs counts them (1 = dense), explicit pads.
 */
export interface ConvGeometry {
  n: number;
  h: number;
  w: number;
  ci: number;
  kh: number;
  kw: number;
  co: number;
  oh: number;
  ow: number;
  strides: [number, number];
  dilations: [number, number];
  /** [top, bottom, left, right] */
  pads: [number, number, number, number];
}

export interface NativeInfo {
  version: string;
  cpuRuntime: string;
  isa: string;
  threads: number;
  cachedPlans: number;
  arenaBytes: number;
}

/** The raw addon functions (see src/addon.cc). Offsets are byte offsets into `heap`; -1 = absent. */
interface Addon {
  conv(kind: number, heap: ArrayBufferView, offsets: number[], shape: number[]): string;
  matmul(heap: ArrayBufferView, offsets: number[], shape: number[]): string;
  batchNorm(
    kind: number,
    heap: ArrayBufferView,
    offsets: number[],
    shape: number[],
    eps: number,
  ): string;
  sgdMomentum(
    heap: ArrayBufferView,
    offsets: number[],
    n: number,
    lr: number,
    momentum: number,
    weightDecay: number,
  ): void;
  momentumAverage(heap: ArrayBufferView, offsets: number[], n: number, m: number): void;
  setThreads(n: number): void;
  threads(): number;
  clearCache(): void;
  peakGflops(size?: number, reps?: number): number;
  info(): NativeInfo;
}

/** Byte offsets of a convolution's operands in the heap. */
export interface ConvOperands {
  /** x, or dx for backwardData */
  x: number;
  /** filter, or dw for backwardWeights */
  filter: number;
  /** y, or dy for the backward kinds */
  y: number;
  /** bias [co], forward only */
  bias?: number;
}

/** Which batch normalization a `batchNorm` call computes. */
export const BatchNormKind = { forward: 0, backward: 1 } as const;

/** NHWC batch [n, h, w, c] normalised per group of n / groups consecutive images (split BN). */
export interface BatchNormShape {
  n: number;
  h: number;
  w: number;
  c: number;
  groups: number;
  eps: number;
}

/** Byte offsets of a training-mode batch normalization's operands in the heap. */
export type BatchNormOperands =
  | {
      kind: 'forward';
      /** in: x [n,h,w,c], gamma [c], beta [c]; out: y [n,h,w,c], mean and variance [groups, c] */
      x: number;
      gamma: number;
      beta: number;
      y: number;
      mean: number;
      variance: number;
    }
  | {
      kind: 'backward';
      /** in: dy, x, gamma, beta, the forward's mean and variance; out: dx, dgamma and dbeta [c] */
      dy: number;
      x: number;
      gamma: number;
      beta: number;
      mean: number;
      variance: number;
      dx: number;
      dgamma: number;
      dbeta: number;
    };

export interface NativeKernels {
  /** Runs one convolution in place on `heap`; returns oneDNN's implementation name. */
  conv(
    kind: ConvKind,
    heap: ArrayBufferView,
    at: ConvOperands,
    g: ConvGeometry,
    activation?: 'linear' | 'relu',
  ): string;
  /**
   * C[b] = op(A[b]) · op(B[b]) with A [batchA, m, k] (or [batchA, k, m] when transposeA), B
   * [batchB, k, n] (or [batchB, n, k]), C [max(batchA, batchB), m, n]; a batch of 1 broadcasts.
   */
  matmul(
    heap: ArrayBufferView,
    at: { a: number; b: number; c: number },
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
  /**
   * Training-mode batch normalization (biased variance, statistics per group) forward or
   * backward, in place on `heap`; returns oneDNN's implementation name.
   */
  batchNorm(heap: ArrayBufferView, at: BatchNormOperands, s: BatchNormShape): string;
  /**
   * One SGD-with-momentum step on `n` floats (torch.optim.SGD: d = g + wd·p, b' = μ·b + d or d
   * on the first step (`b` absent), p' = p − lr·b'), written to `pOut` and `bOut`.
   */
  sgdMomentum(
    heap: ArrayBufferView,
    at: { p: number; g: number; b?: number; pOut: number; bOut: number },
    n: number,
    h: { lr: number; momentum: number; weightDecay: number },
  ): void;
  /** out = k·m + q·(1 − m) on `n` floats (MoCo's key-encoder update). */
  momentumAverage(
    heap: ArrayBufferView,
    at: { k: number; q: number; out: number },
    n: number,
    m: number,
  ): void;
  /** OpenMP threads for the calling JS thread's primitives (main thread or one worker). */
  setThreads(n: number): void;
  threads(): number;
  /** Drops the calling thread's cached primitives and their arena. */
  clearCache(): void;
  /** Best sgemm rate (GFLOP/s) on square matrices of side `size` with the current threads. */
  peakGflops(size?: number, reps?: number): number;
  info(): NativeInfo;
}

export type NativeLoad = { ok: true; kernels: NativeKernels } | { ok: false; reason: string };

let loaded: NativeLoad | null = null;

function wrap(addon: Addon): NativeKernels {
  return {
    conv(kind, heap, at, g, activation = 'linear') {
      return addon.conv(
        kind,
        heap,
        [at.x, at.filter, at.y, at.bias ?? -1],
        [
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
          g.pads[0],
          g.pads[1],
          g.pads[2],
          g.pads[3],
          at.bias != null ? 1 : 0,
          Activation[activation],
        ],
      );
    },
    matmul(heap, at, s) {
      return addon.matmul(
        heap,
        [at.a, at.b, at.c],
        [s.batchA, s.batchB, s.m, s.k, s.n, s.transposeA ? 1 : 0, s.transposeB ? 1 : 0],
      );
    },
    batchNorm(heap, at, s) {
      const offsets =
        at.kind === 'forward'
          ? [at.x, at.gamma, at.beta, at.y, at.mean, at.variance]
          : [at.dy, at.x, at.gamma, at.beta, at.mean, at.variance, at.dx, at.dgamma, at.dbeta];
      return addon.batchNorm(
        BatchNormKind[at.kind],
        heap,
        offsets,
        [s.n, s.h, s.w, s.c, s.groups],
        s.eps,
      );
    },
    sgdMomentum(heap, at, n, h) {
      addon.sgdMomentum(
        heap,
        [at.p, at.g, at.b ?? -1, at.pOut, at.bOut],
        n,
        h.lr,
        h.momentum,
        h.weightDecay,
      );
    },
    momentumAverage(heap, at, n, m) {
      addon.momentumAverage(heap, [at.k, at.q, at.out], n, m);
    },
    setThreads: (n) => addon.setThreads(n),
    threads: () => addon.threads(),
    clearCache: () => addon.clearCache(),
    peakGflops: (size, reps) => addon.peakGflops(size, reps),
    info: () => addon.info(),
  };
}

/**
 * Loads the addon once per thread (cached). Returns why it is unavailable instead of throwing.
 * MASKCON_NATIVE=0 disables it.
 */
export function loadNative(): NativeLoad {
  if (nativeDisabled()) return { ok: false, reason: DISABLED_REASON };
  if (loaded != null) return loaded;
  const r = requireAddon<Addon>('maskcon_native.node');
  loaded = r.ok ? { ok: true, kernels: wrap(r.addon) } : r;
  return loaded;
}
export * from './memory.js';
