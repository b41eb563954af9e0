/**
 * Conv2DBackpropInput for the wasm backend, computed with forward (XNNPACK)
 * convolutions plus an interleave (polyphase / sub-pixel decomposition of the
 * transposed convolution, so no zero-inserted dy and no multiplications by
 * inserted zeros).
 *
 * Per axis (stride s, kernel K, top pad p):  dx[i] = sum_{o,k: o*s+k-p=i} dy[o] w[k].
 * With i + p = s*u + r (phase r in [0,s)), k = r + s*m, o = u - m:
 *
 *   dx[s*u + r - p] = sum_{m=0}^{M_r-1} dy[u-m] * w[r + s*m],   M_r = ceil((K-r)/s)
 *
 * which is a stride-1 correlation of dy (padded by M_r-1 on top) with the
 * spatially flipped taps w[r + s*(M_r-1-t)]. Each of the s_h*s_w phases is one
 * convolution with exactly its own taps (for 3×3 stride 2: 2×2, 2×1, 1×2 and
 * 1×1; for 1×1 stride 2 one 1×1 and three phases that are zero), so no
 * multiplication by a zero tap is done; the phases are then interleaved and
 * cropped to the input size in one pass. For stride 1 this is the usual
 * "conv of dy with the flipped, in/out-swapped filter" and no interleave is needed.
 */
import * as tf from '@tensorflow/tfjs';
import { Scratch, assertNHWC, pair, type Info, type WasmBackend } from './wasm-ops.js';

/**
 * The filter of phase (rh, rw): [Mh, Mw, co, ci] with taps w[rh + sh·(Mh−1−th), rw + sw·(Mw−1−tw)]
 * transposed in/out (spatially flipped). Null when the phase has no taps.
 */
function phaseFilter(
  s: Scratch,
  filter: Info,
  sh: number,
  sw: number,
  rh: number,
  rw: number,
): { info: Info; mh: number; mw: number } | null {
  const backend = s.backend;
  const [kh, kw, ci, co] = filter.shape;
  const mh = Math.max(0, Math.ceil((kh - rh) / sh));
  const mw = Math.max(0, Math.ceil((kw - rw) / sw));
  if (mh === 0 || mw === 0) return null;
  const out = s.keep(backend.makeOutput([mh, mw, co, ci], 'float32'));
  // Views are taken after the allocation (the heap may have grown).
  const f = backend.typedArrayFromHeap(out) as Float32Array;
  const w = backend.typedArrayFromHeap(filter) as Float32Array;
  for (let th = 0; th < mh; th++) {
    const i = rh + sh * (mh - 1 - th);
    for (let tw = 0; tw < mw; tw++) {
      const j = rw + sw * (mw - 1 - tw);
      const wBase = (i * kw + j) * ci * co;
      const fBase = (th * mw + tw) * co * ci;
      for (let c = 0; c < ci; c++) {
        const wRow = wBase + c * co;
        let fi = fBase + c;
        for (let o = 0; o < co; o++) {
          f[fi] = w[wRow + o];
          fi += ci;
        }
      }
    }
  }
  return { info: out, mh, mw };
}

/**
 * Phase (rh, rw) of dx over the phase grid rows [u0, u0+uh) × columns [v0, v0+uw):
 * z[b, a, c, :] = Σ_t dy[b, u0+a−(mh−1)+th, v0+c−(mw−1)+tw, :] · f[th, tw] (zero outside dy).
 */
function phaseConv(
  s: Scratch,
  dy: Info,
  f: { info: Info; mh: number; mw: number },
  u0: number,
  v0: number,
  uh: number,
  uw: number,
): Info {
  const [batchSize, OH, OW, co] = dy.shape;
  const padTop = f.mh - 1 - u0;
  const padLeft = f.mw - 1 - v0;
  const padBottom = uh - OH - padTop + f.mh - 1;
  const padRight = uw - OW - padLeft + f.mw - 1;
  const cropTop = Math.max(-padTop, 0);
  const cropLeft = Math.max(-padLeft, 0);
  const cropBottom = Math.max(-padBottom, 0);
  const cropRight = Math.max(-padRight, 0);
  const dyc = s.slice(
    dy,
    [0, cropTop, cropLeft, 0],
    [batchSize, OH - cropTop - cropBottom, OW - cropLeft - cropRight, co],
  );
  return s.conv2d(dyc, f.info, [
    [0, 0],
    [Math.max(padTop, 0), Math.max(padBottom, 0)],
    [Math.max(padLeft, 0), Math.max(padRight, 0)],
    [0, 0],
  ]);
}

/**
 * out[b,i,j,:] = z[phase(i+offH, j+offW)][b, (i+offH)/sh, (j+offW)/sw, :] (zeros for phases
 * without taps), with copyWithin on the wasm heap (one contiguous run of ci floats per pixel).
 */
function interleavePhases(
  backend: WasmBackend,
  zs: (Info | null)[],
  out: Info,
  sh: number,
  sw: number,
  offH: number,
  offW: number,
): void {
  const [batch, H, W, ci] = out.shape;
  const z0 = zs.find((z) => z != null)!;
  const [, uh, uw] = z0.shape;
  const heap = new Float32Array((backend.wasm as unknown as { HEAPU8: Uint8Array }).HEAPU8.buffer);
  const bases = zs.map((z) => (z ? backend.getMemoryOffset(z.dataId) / 4 : -1));
  const oBase = backend.getMemoryOffset(out.dataId) / 4;
  let dst = oBase;
  for (let b = 0; b < batch; b++) {
    for (let i = 0; i < H; i++) {
      const qi = i + offH;
      const u = Math.floor(qi / sh);
      const rh = qi - u * sh;
      const rowOff = (b * uh + u) * uw * ci;
      for (let j = 0; j < W; j++) {
        const qj = j + offW;
        const v = Math.floor(qj / sw);
        const rw = qj - v * sw;
        const base = bases[rh * sw + rw];
        if (base < 0) heap.fill(0, dst, dst + ci);
        else {
          const src = base + rowOff + v * ci;
          heap.copyWithin(dst, src, src + ci);
        }
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
    throw new Error(
      `Conv2DBackpropInput: dy shape [${dy.shape}] does not match conv output [${batchSize},${OH},${OW}]`,
    );
  }

  const s = new Scratch(backend);
  try {
    // Phase-grid rows u0 .. u0+uh-1 cover input rows [0, H) (shifted by pt).
    const u0 = Math.floor(pt / sh);
    const v0 = Math.floor(pl / sw);
    const uh = Math.ceil((H + pt) / sh) - u0;
    const uw = Math.ceil((W + pl) / sw) - v0;
    let out: Info;
    if (sh === 1 && sw === 1) {
      const z = phaseConv(s, dy, phaseFilter(s, filter, 1, 1, 0, 0)!, u0, v0, uh, uw);
      out = s.slice(z, [0, pt - u0, pl - v0, 0], [batchSize, H, W, ci]);
    } else {
      const zs: (Info | null)[] = [];
      for (let rh = 0; rh < sh; rh++) {
        for (let rw = 0; rw < sw; rw++) {
          const f = phaseFilter(s, filter, sh, sw, rh, rw);
          zs.push(f ? phaseConv(s, dy, f, u0, v0, uh, uw) : null);
        }
      }
      // Interleave the phases and crop in one pass (wasm DepthToSpace + Slice are generic
      // element loops and cost more than the convolutions themselves).
      out = s.keep(backend.makeOutput([batchSize, H, W, ci], 'float32'));
      if (zs.every((z) => z == null)) (backend.typedArrayFromHeap(out) as Float32Array).fill(0);
      else interleavePhases(backend, zs, out, sh, sw, pt - sh * u0, pl - sw * v0);
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
