/**
 * Conv2DBackpropInput for the wasm backend, computed with ONE forward
 * (XNNPACK) convolution plus a depth-to-space shuffle (polyphase / sub-pixel
 * decomposition of the transposed convolution, so no zero-inserted dy and no
 * multiplications by inserted zeros).
 *
 * Per axis (stride s, kernel K, top pad p):  dx[i] = sum_{o,k: o*s+k-p=i} dy[o] w[k].
 * With i + p = s*u + r (phase r in [0,s)), k = r + s*m, o = u - m:
 *
 *   dx[s*u + r - p] = sum_{m=0}^{M-1} dy[u-m] * w[r + s*m],   M = ceil(K/s)
 *
 * which is a stride-1 correlation of dy (padded by M-1 on top) with the
 * spatially flipped taps w[r + s*(M-1-t)]. All s_h*s_w phases are computed at
 * once by one convolution with s_h*s_w*ci output channels; the phases are then
 * interleaved (DepthToSpace) and the result cropped to the input size.
 * For stride 1 this is the usual "conv of dy with the flipped, in/out-swapped
 * filter" and no shuffle is needed.
 */
import * as tf from '@tensorflow/tfjs';
import { Scratch, assertNHWC, pair, type Info, type WasmBackend } from './wasm-ops.js';

/** Builds the [Mh, Mw, co, sh*sw*ci] polyphase filter from w [kh, kw, ci, co]. */
function polyphaseFilter(
  s: Scratch,
  filter: Info,
  sh: number,
  sw: number,
): { info: Info; mh: number; mw: number } {
  const backend = s.backend;
  const [kh, kw, ci, co] = filter.shape;
  const mh = Math.ceil(kh / sh);
  const mw = Math.ceil(kw / sw);
  const phases = sh * sw;
  const outC = phases * ci;
  const out = s.keep(backend.makeOutput([mh, mw, co, outC], 'float32'));
  // Views are taken after the allocation (the heap may have grown).
  const f = backend.typedArrayFromHeap(out) as Float32Array;
  const w = backend.typedArrayFromHeap(filter) as Float32Array;
  f.fill(0);
  for (let i = 0; i < kh; i++) {
    const rh = i % sh;
    const th = mh - 1 - Math.floor(i / sh);
    for (let j = 0; j < kw; j++) {
      const rw = j % sw;
      const tw = mw - 1 - Math.floor(j / sw);
      const phaseOff = (rh * sw + rw) * ci;
      const fBase = (th * mw + tw) * co * outC + phaseOff;
      const wBase = (i * kw + j) * ci * co;
      for (let c = 0; c < ci; c++) {
        const wRow = wBase + c * co;
        let fi = fBase + c;
        for (let o = 0; o < co; o++) {
          f[fi] = w[wRow + o];
          fi += outC;
        }
      }
    }
  }
  return { info: out, mh, mw };
}

/**
 * out[b,i,j,:] = z[b, (i+offH)/sh, (j+offW)/sw, phase(i+offH, j+offW)*ci : +ci]
 * with copyWithin on the wasm heap (one contiguous run of ci floats per pixel).
 */
function interleavePhases(
  backend: WasmBackend,
  z: Info,
  out: Info,
  sh: number,
  sw: number,
  offH: number,
  offW: number,
): void {
  const [batch, H, W, ci] = out.shape;
  const [, uh, uw, zc] = z.shape;
  const heap = new Float32Array((backend.wasm as unknown as { HEAPU8: Uint8Array }).HEAPU8.buffer);
  const zBase = backend.getMemoryOffset(z.dataId) / 4;
  const oBase = backend.getMemoryOffset(out.dataId) / 4;
  let dst = oBase;
  for (let b = 0; b < batch; b++) {
    for (let i = 0; i < H; i++) {
      const qi = i + offH;
      const u = Math.floor(qi / sh);
      const rh = qi - u * sh;
      const rowBase = zBase + (b * uh + u) * uw * zc + rh * sw * ci;
      for (let j = 0; j < W; j++) {
        const qj = j + offW;
        const v = Math.floor(qj / sw);
        const rw = qj - v * sw;
        const src = rowBase + v * zc + rw * ci;
        heap.copyWithin(dst, src, src + ci);
        dst += ci;
      }
    }
  }
}

export function conv2DBackpropInputWasm(args: {
  inputs: tf.NamedTensorInfoMap;
  backend: unknown;
  attrs?: tf.NamedAttrMap;
}): Info {
  const backend = args.backend as WasmBackend;
  const { dy, filter } = args.inputs as { dy: Info; filter: Info };
  const attrs = (args.attrs ?? {}) as unknown as tf.Conv2DBackpropInputAttrs;
  assertNHWC(attrs.dataFormat, 'Conv2DBackpropInput');
  const inputShape = attrs.inputShape as [number, number, number, number];
  const info = tf.backend_util.computeConv2DInfo(
    inputShape,
    filter.shape as [number, number, number, number],
    attrs.strides,
    1,
    attrs.pad,
    attrs.dimRoundingMode,
    false,
    'channelsLast',
  );
  const { batchSize, inHeight: H, inWidth: W, inChannels: ci, outHeight: OH, outWidth: OW } = info;
  const [sh, sw] = pair(attrs.strides);
  const pt = info.padInfo.top;
  const pl = info.padInfo.left;
  if (dy.shape[1] !== OH || dy.shape[2] !== OW) {
    throw new Error(`Conv2DBackpropInput: dy shape [${dy.shape}] does not match conv output [${batchSize},${OH},${OW}]`);
  }

  const s = new Scratch(backend);
  try {
    const { info: f, mh, mw } = polyphaseFilter(s, filter, sh, sw);
    // Phase-grid rows u0 .. u0+uh-1 cover input rows [0, H) (shifted by pt).
    const u0 = Math.floor(pt / sh);
    const v0 = Math.floor(pl / sw);
    const uh = Math.ceil((H + pt) / sh) - u0;
    const uw = Math.ceil((W + pl) / sw) - v0;
    const padTop = mh - 1 - u0;
    const padLeft = mw - 1 - v0;
    const padBottom = uh - OH - padTop + mh - 1;
    const padRight = uw - OW - padLeft + mw - 1;
    const cropTop = Math.max(-padTop, 0);
    const cropLeft = Math.max(-padLeft, 0);
    const cropBottom = Math.max(-padBottom, 0);
    const cropRight = Math.max(-padRight, 0);
    const dyc = s.slice(
      dy,
      [0, cropTop, cropLeft, 0],
      [batchSize, OH - cropTop - cropBottom, OW - cropLeft - cropRight, dy.shape[3]],
    );
    const z = s.conv2d(dyc, f, [
      [0, 0],
      [Math.max(padTop, 0), Math.max(padBottom, 0)],
      [Math.max(padLeft, 0), Math.max(padRight, 0)],
      [0, 0],
    ]);
    let out: Info;
    if (sh === 1 && sw === 1) {
      out = s.slice(z, [0, pt - u0, pl - v0, 0], [batchSize, H, W, ci]);
    } else {
      // Interleave the phases and crop in one pass (wasm DepthToSpace + Slice
      // are generic element loops and cost more than the convolution itself).
      out = s.keep(backend.makeOutput([batchSize, H, W, ci], 'float32'));
      interleavePhases(backend, z, out, sh, sw, pt - sh * u0, pl - sw * v0);
    }
    s.dispose([out]);
    return out;
  } catch (e) {
    s.dispose();
    throw e;
  }
}

export const conv2DBackpropInputConfig: tf.KernelConfig = {
  kernelName: tf.Conv2DBackpropInput,
  backendName: 'wasm',
  kernelFunc: conv2DBackpropInputWasm as unknown as tf.KernelFunc,
};
