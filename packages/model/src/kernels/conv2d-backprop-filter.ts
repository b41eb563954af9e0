/**
 * Conv2DBackpropFilter for the wasm backend, computed with forward (XNNPACK)
 * convolutions whose reduction runs over long contiguous rows.
 *
 *   dW[kh,kw,ci,co] = Σ_{b,oh,ow} x[b, oh·sh+kh−pt, ow·sw+kw−pl, ci] · dy[b,oh,ow,co]
 *
 * For one filter column kw, gather
 *   T[ci, h, 0, (ow,b)] = x[b, h, ow·sw+kw−pl, ci]        (zero outside x)
 * (one contiguous run of OW·B floats per (ci, h) when sw = 1), and lay dy out
 * as a filter F[oh, 0, (ow,b), co] = dy[b,oh,ow,co]. Then
 *   dW[:, kw, :, :] = conv2d(T, F, stride 1, dilation [sh, 1], pad top pt)   → [ci, kh, 1, co]
 * is a forward convolution with "batch" ci, a kh×1 output, an OH×1 window and
 * OW·B input channels: XNNPACK sees a GEMM with M = ci·kh, N = co and a
 * reduction of OH·OW·B split into OH runs of OW·B contiguous floats (instead of
 * OH·OW runs of B floats when the batch alone is the channel axis). All kw
 * columns share F, so XNNPACK packs it once (its operator cache is keyed on
 * the filter tensor).
 */
import * as tf from '@tensorflow/tfjs';
import { Scratch, assertNHWC, pair, type Info, type WasmBackend } from './wasm-ops.js';

function heapF32(backend: WasmBackend): Float32Array {
  return new Float32Array((backend.wasm as unknown as { HEAPU8: Uint8Array }).HEAPU8.buffer);
}

export function conv2DBackpropFilterWasm(args: {
  inputs: tf.NamedTensorInfoMap;
  backend: unknown;
  attrs?: tf.NamedAttrMap;
}): Info {
  const backend = args.backend as WasmBackend;
  const { x, dy } = args.inputs as { x: Info; dy: Info };
  const attrs = (args.attrs ?? {}) as unknown as tf.Conv2DBackpropFilterAttrs;
  assertNHWC(attrs.dataFormat, 'Conv2DBackpropFilter');
  const info = tf.backend_util.computeConv2DInfo(
    x.shape as [number, number, number, number],
    attrs.filterShape,
    attrs.strides,
    1,
    attrs.pad,
    attrs.dimRoundingMode,
    false,
    'channelsLast',
  );
  const { batchSize: B, inHeight: H, inWidth: W, inChannels: ci, outHeight: OH, outWidth: OW, outChannels: co } = info;
  const { filterHeight: kh, filterWidth: kw } = info;
  const [sh, sw] = pair(attrs.strides);
  if (dy.shape[0] !== B || dy.shape[1] !== OH || dy.shape[2] !== OW || dy.shape[3] !== co) {
    throw new Error(`Conv2DBackpropFilter: dy shape [${dy.shape}] does not match conv output [${B},${OH},${OW},${co}]`);
  }
  const pt = info.padInfo.top;
  const pl = info.padInfo.left;
  // Rows of x used: oh·sh + i − pt for i < kh. Padding after x so that the output has exactly kh rows.
  const pb = kh + (OH - 1) * sh - H - pt;
  const Hc = H + Math.min(pb, 0);

  const s = new Scratch(backend);
  try {
    const xc = s.slice(x, [0, 0, 0, 0], [B, Hc, W, ci]);
    const xT = s.transpose(xc, [3, 1, 2, 0]); // [ci, Hc, W, B]
    const f = s.reshape(s.transpose(dy, [1, 2, 0, 3]), [OH, 1, OW * B, co]); // [OH, 1, OW·B, co]
    const run = OW * B;
    const out = s.keep(backend.makeOutput([kh, kw, ci, co], 'float32'));
    for (let j = 0; j < kw; j++) {
      const t = s.keep(backend.makeOutput([ci, Hc, 1, run], 'float32'));
      {
        // Gather T (views taken after the allocation: the heap may have grown).
        const heap = heapF32(backend);
        const src = backend.getMemoryOffset(xT.dataId) / 4;
        const dst = backend.getMemoryOffset(t.dataId) / 4;
        // Output columns ow whose input column ow·sw + j − pl lies inside [0, W).
        const owLo = Math.max(0, Math.ceil((pl - j) / sw));
        const owHi = Math.min(OW, Math.floor((W - 1 + pl - j) / sw) + 1); // exclusive
        const rows = ci * Hc;
        if (owLo > 0 || owHi < OW) heap.fill(0, dst, dst + rows * run);
        if (owHi > owLo) {
          const w0 = owLo * sw + j - pl;
          if (sw === 1) {
            const len = (owHi - owLo) * B;
            for (let r = 0; r < rows; r++) {
              const a = src + (r * W + w0) * B;
              heap.copyWithin(dst + r * run + owLo * B, a, a + len);
            }
          } else {
            for (let r = 0; r < rows; r++) {
              let a = src + (r * W + w0) * B;
              let d = dst + r * run + owLo * B;
              for (let ow = owLo; ow < owHi; ow++, a += sw * B, d += B) heap.copyWithin(d, a, a + B);
            }
          }
        }
      }
      const y = s.conv2d(
        t,
        f,
        [
          [0, 0],
          [pt, Math.max(pb, 0)],
          [0, 0],
          [0, 0],
        ],
        [sh, 1],
      ); // [ci, kh, 1, co]
      const heap = heapF32(backend);
      const ys = backend.getMemoryOffset(y.dataId) / 4;
      const od = backend.getMemoryOffset(out.dataId) / 4;
      // out[i, j, c, :] = y[c, i, 0, :]
      for (let c = 0; c < ci; c++) {
        for (let i = 0; i < kh; i++) {
          const a = ys + (c * kh + i) * co;
          heap.copyWithin(od + ((i * kw + j) * ci + c) * co, a, a + co);
        }
      }
      backend.disposeData(t.dataId);
      backend.disposeData(y.dataId);
      s.forget([t, y]);
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
