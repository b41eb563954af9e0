/**
 * Conv2DBackpropFilter for the wasm backend, as XNNPACK GEMMs over cache-sized chunks of the
 * reduction, for any stride.
 *
 *   dW[i,j,c,co] = Σ_{b,oh,ow} x[b, oh·sh+i−pt, ow·sw+j−pl, c] · dy[b,oh,ow,co]
 *
 * is a GEMM with M = kh·kw·ci, N = co and a long reduction K = OH·OW·B.
 * XNNPACK does not block K, so one GEMM (or one dilated convolution, the
 * earlier formulation) with K in the tens of thousands streams its operands
 * from memory at about half the forward speed. Here the reduction is cut into
 * chunks of about `K_TARGET` terms — a band of dy rows oh ∈ [r0, r0+nb) × a
 * range of columns ow ∈ [o0, o1) × the whole batch — and each chunk is one
 * fully-connected GEMM (tfjs's XNNPACK BatchMatMul path) whose [M, co] result
 * is added into dW:
 *
 *   T[(i,j,c), (oh,ow,b)] = x[b, (r0+oh)·sh+i−pt, ow·sw+j−pl, c]     (zero outside x)
 *   F[(oh,ow,b), co]      = dy[b, r0+oh, ow, co]
 *   dW[(i,j,c), co]      += T · F
 *
 * x is transposed once to [c, H, sw, W/sw, B] (its columns split by phase
 * w mod sw), so that for a fixed tap j the input columns ow·sw+j−pl of
 * consecutive ow are consecutive entries of one phase: every (row of T, oh)
 * is one contiguous copy of (o1−o0)·B floats, for stride 1 and 2 alike. F is a
 * contiguous block of dy transposed once to [OH, OW, B, co]; it is the operand
 * XNNPACK packs, reused by all M rows, so packing stays cheap next to the product.
 * (Widths not divisible by the stride use one dilated convolution instead.)
 */
import * as tf from '@tensorflow/tfjs';
import {
  conv2DBackpropFilterDilated,
  parseBackpropFilterArgs,
  type BackpropFilterArgs,
} from './conv2d-backprop-filter-dilated.js';
import { Scratch, type Info, type WasmBackend } from './wasm-ops.js';

/** Reduction terms per convolution (operands of a 6×8 GEMM tile stay in L1/L2). */
let K_TARGET = 2048;

/** For benchmarks: sets the reduction chunk size (returns the previous value). */
export function setBackpropFilterChunk(k: number): number {
  const prev = K_TARGET;
  K_TARGET = Math.max(1, Math.floor(k));
  return prev;
}

function heapF32(backend: WasmBackend): Float32Array {
  return new Float32Array((backend.wasm as unknown as { HEAPU8: Uint8Array }).HEAPU8.buffer);
}

/**
 * [c, H, W, B] → [c, H, sw, W/sw, B] (columns grouped by phase w mod sw) with one copy of B
 * floats per column (tfjs's wasm Transpose has no fast path for rank 5). Identity for sw = 1.
 */
function phaseSplitColumns(s: Scratch, xT: Info, sw: number): Info {
  if (sw === 1) return xT;
  const backend = s.backend;
  const [c, H, W, B] = xT.shape;
  const W2 = W / sw;
  const out = s.keep(backend.makeOutput([c, H, sw, W2, B], 'float32'));
  const heap = heapF32(backend);
  const src = backend.getMemoryOffset(xT.dataId) / 4;
  const dst = backend.getMemoryOffset(out.dataId) / 4;
  for (let row = 0; row < c * H; row++) {
    const a = src + row * W * B;
    const d = dst + row * W * B;
    for (let w = 0; w < W; w++) {
      const p = w % sw;
      const o = d + (p * W2 + (w - p) / sw) * B;
      heap.copyWithin(o, a + w * B, a + (w + 1) * B);
    }
  }
  return out;
}

export function conv2DBackpropFilterWasm(args: BackpropFilterArgs): Info {
  const { backend, x, dy, info, strides } = parseBackpropFilterArgs(args);
  const {
    batchSize: B,
    inHeight: H,
    inWidth: W,
    inChannels: ci,
    outHeight: OH,
    outWidth: OW,
    outChannels: co,
  } = info;
  const { filterHeight: kh, filterWidth: kw } = info;
  const [sh, sw] = strides;
  if (W % sw !== 0) return conv2DBackpropFilterDilated(args);
  if (dy.shape[0] !== B || dy.shape[1] !== OH || dy.shape[2] !== OW || dy.shape[3] !== co) {
    throw new Error(
      `Conv2DBackpropFilter: dy shape [${dy.shape}] does not match conv output [${B},${OH},${OW},${co}]`,
    );
  }
  const pt = info.padInfo.top;
  const pl = info.padInfo.left;
  const W2 = W / sw; // columns per phase

  const s = new Scratch(backend);
  try {
    // xT[c, h, p, w2, b] = x[b, h, w2·sw + p, c]
    const xT = phaseSplitColumns(s, s.transpose(x, [3, 1, 2, 0]), sw);
    const dyT = s.transpose(dy, [1, 2, 0, 3]); // [OH, OW, B, co]

    // Units: bands of nb rows × column ranges of owc columns, about K_TARGET terms each.
    const rowTerms = OW * B;
    const owc = rowTerms > K_TARGET ? Math.max(1, Math.floor(K_TARGET / B)) : OW;
    const nb = rowTerms > K_TARGET ? 1 : Math.max(1, Math.floor(K_TARGET / rowTerms));

    const out = s.keep(backend.makeOutput([kh, kw, ci, co], 'float32'));

    const M = kh * kw * ci;
    for (let r0 = 0; r0 < OH; r0 += nb) {
      const nr = Math.min(nb, OH - r0);
      for (let o0 = 0; o0 < OW; o0 += owc) {
        const o1 = Math.min(OW, o0 + owc);
        const run = (o1 - o0) * B;
        const K = nr * run;
        // F[(oh,ow,b), co] = dy[b, r0+oh, o0+ow, co]
        const f = s.keep(backend.makeOutput([K, co], 'float32'));
        // T[(i,j,c), (oh,ow,b)] = x[b, (r0+oh)·sh + i − pt, ow·sw + j − pl, c]
        const t = s.keep(backend.makeOutput([M, K], 'float32'));
        {
          const heap = heapF32(backend);
          let src = backend.getMemoryOffset(dyT.dataId) / 4;
          let dst = backend.getMemoryOffset(f.dataId) / 4;
          for (let r = 0; r < nr; r++) {
            const a = src + ((r0 + r) * OW + o0) * B * co;
            heap.copyWithin(dst + r * run * co, a, a + run * co);
          }
          src = backend.getMemoryOffset(xT.dataId) / 4;
          dst = backend.getMemoryOffset(t.dataId) / 4;
          heap.fill(0, dst, dst + M * K);
          for (let j = 0; j < kw; j++) {
            // Input column ow·sw + d = (ow + q)·sw + p: phase p, phase column ow + q.
            const d = j - pl;
            const q = Math.floor(d / sw);
            const p = d - q * sw;
            // Columns ow in [o0, o1) whose phase column lies inside [0, W2).
            const lo = Math.max(o0, -q);
            const hi = Math.min(o1, W2 - q);
            if (hi <= lo) continue;
            const w0 = lo + q; // first phase column
            const len = (hi - lo) * B;
            for (let i = 0; i < kh; i++) {
              for (let r = 0; r < nr; r++) {
                const h = (r0 + r) * sh + i - pt;
                if (h < 0 || h >= H) continue;
                for (let c = 0; c < ci; c++) {
                  const dd = dst + ((i * kw + j) * ci + c) * K + r * run + (lo - o0) * B;
                  const a = src + (((c * H + h) * sw + p) * W2 + w0) * B;
                  heap.copyWithin(dd, a, a + len);
                }
              }
            }
          }
        }
        const y = s.call('BatchMatMul', { a: t, b: f }, { transposeA: false, transposeB: false }); // [M, co]
        const heap = heapF32(backend);
        const ys = backend.getMemoryOffset(y.dataId) / 4;
        const od = backend.getMemoryOffset(out.dataId) / 4;
        if (r0 === 0 && o0 === 0) heap.copyWithin(od, ys, ys + M * co);
        else for (let m = 0; m < M * co; m++) heap[od + m] += heap[ys + m];
        backend.disposeData(t.dataId);
        backend.disposeData(f.dataId);
        backend.disposeData(y.dataId);
        s.forget([t, f, y]);
      }
    }
    s.dispose([out]);
    return out;
  } catch (e) {
    s.dispose();
    throw e;
  }
}

export const conv2DBackpropFilterConfig: tf.KernelConfig = {
  kernelName: tf.Conv2DBackpropFilter,
  backendName: 'wasm',
  kernelFunc: conv2DBackpropFilterWasm as unknown as tf.KernelFunc,
};
