/**
 * Conv2DBackpropFilter for the wasm backend (strided convolutions whose input width is not a
 * multiple of the stride; the rest use conv2d-backprop-filter.ts), computed with ONE forward
 * (XNNPACK) convolution:
 *
 *   dW[kh,kw,ci,co] = sum_{b,oh,ow} x[b, oh*s+kh-pt, ow*s+kw-pl, ci] * dy[b,oh,ow,co]
 *
 * is a forward convolution whose "batch" is ci, whose input channels are the
 * original batch b, whose filter is dy laid out as [OH, OW, b, co] and whose
 * dilation is the original stride:
 *
 *   x' = transpose(x, [3,1,2,0])      [ci, H, W, b]
 *   f' = transpose(dy, [1,2,0,3])     [OH, OW, b, co]
 *   y' = conv2d(x', f', stride 1, dilation s, pad top/left = pt/pl)  [ci, kh, kw, co]
 *   dW = transpose(y', [1,2,0,3])     [kh, kw, ci, co]
 *
 * The bottom/right padding is chosen so that the output is exactly kh×kw;
 * when it would be negative the unused rows/cols of x are sliced off.
 */
import * as tf from '@tensorflow/tfjs';
import { Scratch, assertNHWC, pair, type Info, type WasmBackend } from './wasm-ops.js';

export interface BackpropFilterArgs {
  inputs: tf.NamedTensorInfoMap;
  backend: unknown;
  attrs?: tf.NamedAttrMap;
}

/** The parsed call of a Conv2DBackpropFilter kernel: its tensors, the conv geometry and the strides. */
export interface BackpropFilterCall {
  readonly backend: WasmBackend;
  readonly x: Info;
  readonly dy: Info;
  readonly info: tf.backend_util.Conv2DInfo;
  readonly strides: [number, number];
}

/** Reads the inputs and attributes of a Conv2DBackpropFilter call (NHWC only, no dilation). */
export function parseBackpropFilterArgs(args: BackpropFilterArgs): BackpropFilterCall {
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
  return { backend, x, dy, info, strides: pair(attrs.strides) };
}

export function conv2DBackpropFilterDilated(args: BackpropFilterArgs): Info {
  const { backend, x, dy, info, strides } = parseBackpropFilterArgs(args);
  const {
    inHeight,
    inWidth,
    inChannels,
    outHeight,
    outWidth,
    outChannels,
    filterHeight,
    filterWidth,
  } = info;
  const [sh, sw] = strides;
  if (dy.shape[1] !== outHeight || dy.shape[2] !== outWidth || dy.shape[3] !== outChannels) {
    throw new Error(
      `Conv2DBackpropFilter: dy shape [${dy.shape}] does not match conv output [${x.shape[0]},${outHeight},${outWidth},${outChannels}]`,
    );
  }
  const pt = info.padInfo.top;
  const pl = info.padInfo.left;
  // Padding needed after the input so that the output has exactly kh (kw) rows.
  const pb = filterHeight + (outHeight - 1) * sh - inHeight - pt;
  const pr = filterWidth + (outWidth - 1) * sw - inWidth - pl;

  const s = new Scratch(backend);
  try {
    const xc = s.slice(
      x,
      [0, 0, 0, 0],
      [x.shape[0], inHeight + Math.min(pb, 0), inWidth + Math.min(pr, 0), inChannels],
    );
    const xT = s.transpose(xc, [3, 1, 2, 0]);
    const dyT = s.transpose(dy, [1, 2, 0, 3]);
    const y = s.conv2d(
      xT,
      dyT,
      [
        [0, 0],
        [pt, Math.max(pb, 0)],
        [pl, Math.max(pr, 0)],
        [0, 0],
      ],
      [sh, sw],
    );
    const out = s.transpose(y, [1, 2, 0, 3]);
    s.dispose([out]);
    return out;
  } catch (e) {
    s.dispose();
    throw e;
  }
}
