/**
 * Sum and Mean for the wasm backend over leading/middle axes.
 *
 * tfjs's wasm Sum/Mean only reduce innermost axes; any other reduction (the
 * BatchNorm statistics over N,H,W of an NHWC tensor and their gradients, the
 * global average pool) first transposes the whole tensor with a generic
 * element loop. When the reduced axes form one contiguous block that excludes
 * the last axis, the tensor is a [A, R, C] array reduced over R, which is an
 * XNNPACK average pooling of [A, R, 1, C] with an R×1 window: one streaming
 * SIMD pass, no transpose. Sum is that mean times R (computed on the A·C
 * outputs). Other cases keep tfjs's original kernel.
 */
import * as tf from '@tensorflow/tfjs';
import { callOriginal, setupOriginal } from './originals.js';
import { Scratch, type Info, type WasmBackend } from './wasm-ops.js';

/** [A, R, C] view of `shape` reduced over `axes`, or null when the axes are not one block before the last axis. */
export function leadingBlockView(
  shape: readonly number[],
  axes: readonly number[],
): [number, number, number] | null {
  const rank = shape.length;
  if (rank === 0 || axes.length === 0) return null;
  const ax = [...new Set(axes.map((a) => (a < 0 ? a + rank : a)))].sort((p, q) => p - q);
  const lo = ax[0];
  const hi = ax[ax.length - 1];
  if (hi - lo + 1 !== ax.length || hi >= rank - 1) return null;
  let A = 1;
  let R = 1;
  let C = 1;
  for (let i = 0; i < rank; i++) {
    if (i < lo) A *= shape[i];
    else if (i <= hi) R *= shape[i];
    else C *= shape[i];
  }
  return [A, R, C];
}

function reduceOverBlock(
  kind: 'Sum' | 'Mean',
  args: { inputs: tf.NamedTensorInfoMap; backend: unknown; attrs?: tf.NamedAttrMap },
): Info {
  const backend = args.backend as WasmBackend;
  const { x } = args.inputs as { x: Info };
  const attrs = (args.attrs ?? {}) as unknown as tf.SumAttrs;
  const axisList = tf.util.parseAxisParam(attrs.axis, x.shape);
  const view = x.dtype === 'float32' ? leadingBlockView(x.shape, axisList) : null;
  if (view == null || view[1] <= 1 || tf.util.sizeFromShape(x.shape) === 0) {
    return callOriginal(kind, backend, args.inputs, args.attrs ?? {});
  }
  const [A, R, C] = view;
  const rank = x.shape.length;
  const reduced = new Set(axisList.map((a) => (a < 0 ? a + rank : a)));
  const outShape: number[] = [];
  for (let i = 0; i < rank; i++) {
    if (!reduced.has(i)) outShape.push(x.shape[i]);
    else if (attrs.keepDims) outShape.push(1);
  }
  const s = new Scratch(backend);
  try {
    const x4 = s.reshape(x, [A, R, 1, C]);
    const out = s.call('AvgPool', { x: x4 }, {
      filterSize: [R, 1],
      strides: [1, 1],
      pad: 'valid',
      dimRoundingMode: undefined,
    } as unknown as tf.NamedAttrMap);
    if (kind === 'Sum') {
      const v = backend.typedArrayFromHeap(out) as Float32Array;
      for (let i = 0; i < v.length; i++) v[i] *= R;
    }
    out.shape = outShape;
    s.dispose([out]);
    return out;
  } catch (e) {
    s.dispose();
    throw e;
  }
}

export const sumWasm = (args: {
  inputs: tf.NamedTensorInfoMap;
  backend: unknown;
  attrs?: tf.NamedAttrMap;
}): Info => reduceOverBlock('Sum', args);
export const meanWasm = (args: {
  inputs: tf.NamedTensorInfoMap;
  backend: unknown;
  attrs?: tf.NamedAttrMap;
}): Info => reduceOverBlock('Mean', args);

export const sumConfig: tf.KernelConfig = {
  kernelName: tf.Sum,
  backendName: 'wasm',
  setupFunc: setupOriginal(tf.Sum),
  kernelFunc: sumWasm as unknown as tf.KernelFunc,
};

export const meanConfig: tf.KernelConfig = {
  kernelName: tf.Mean,
  backendName: 'wasm',
  setupFunc: setupOriginal(tf.Mean),
  kernelFunc: meanWasm as unknown as tf.KernelFunc,
};
