/**
 * Conv2DBackpropFilter for the wasm backend (stride 1; strided convolutions
 * use conv2d-backprop-filter-dilated.ts), as XNNPACK GEMMs over cache-sized
 * chunks of the reduction.
 *
 *   dW[i,j,c,co] = Σ_{b,oh,ow} x[b, oh+i−pt, ow+j−pl, c] · dy[b,oh,ow,co]
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
 *   T[(i,j,c), (oh,ow,b)] = x[b, r0+oh+i−pt, ow+j−pl, c]     (zero outside x)
 *   F[(oh,ow,b), co]      = dy[b, r0+oh, ow, co]
 *   dW[(i,j,c), co]      += T · F
 *
 * With x transposed once to [c, H, W, B], every (row of T, oh) is one
 * contiguous copy of (o1−o0)·B floats, and F is a contiguous block of dy
 * transposed once to [OH, OW, B, co]. F, the operand XNNPACK packs, is reused
 * by all M = kh·kw·ci rows, so packing stays cheap next to the product.
 */
import * as tf from '@tensorflow/tfjs';
import { conv2DBackpropFilterDilated, parseBackpropFilterArgs, type BackpropFilterArgs } from './conv2d-backprop-filter-dilated.js';
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

export function conv2DBackpropFilterWasm(args: BackpropFilterArgs): Info {
  const { backend, x, dy, info, strides } = parseBackpropFilterArgs(args);
  const { batchSize: B, inHeight: H, inWidth: W, inChannels: ci, outHeight: OH, outWidth: OW, outChannels: co } = info;
  const { filterHeight: kh, filterWidth: kw } = info;
  const [sh, sw] = strides;
  if (sh !== 1 || sw !== 1) {
    // Strided columns are not contiguous in [ci, H, W, B] and a phase-splitting
    // transpose costs more than it saves: one dilated convolution instead.
    return conv2DBackpropFilterDilated(args);
  }
  if (dy.shape[0] !== B || dy.shape[1] !== OH || dy.shape[2] !== OW || dy.shape[3] !== co) {
    throw new Error(`Conv2DBackpropFilter: dy shape [${dy.shape}] does not match conv output [${B},${OH},${OW},${co}]`);
  }
  const pt = info.padInfo.top;
  const pl = info.padInfo.left;

  const s = new Scratch(backend);
  try {
    const xT = s.transpose(x, [3, 1, 2, 0]); // [ci, H, W, B]
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
            // Columns ow in [o0, o1) whose input column ow·sw + j − pl lies inside [0, W).
            const lo = Math.max(o0, pl - j);
            const hi = Math.min(o1, W + pl - j);
            if (hi <= lo) continue;
            const w0 = lo + j - pl; // first input column
            const len = (hi - lo) * B;
            for (let i = 0; i < kh; i++) {
              for (let r = 0; r < nr; r++) {
                const h = r0 + r + i - pt;
                if (h < 0 || h >= H) continue;
                for (let c = 0; c < ci; c++) {
                  const d = dst + ((i * kw + j) * ci + c) * K + r * run + (lo - o0) * B;
                  const a = src + ((c * H + h) * W + w0) * B;
                  heap.copyWithin(d, a, a + len);
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
