/**
 * Identity for the wasm backend without a copy.
 *
 * tfjs-core clones every tensor a kernel saves for its gradient (`Engine.clone` → Identity):
 * Conv2D keeps x and the filter, Relu its output, each BatchNorm its input, so a training step
 * runs ~240 Identity calls on activation-sized tensors. tfjs's wasm Identity allocates a new
 * buffer and copies (~0.4 s and one extra copy of every saved activation per step at batch 32);
 * the cpu backend's shares the buffer instead. This one does the same as the wasm Reshape
 * kernel: the output is the input's data with one more reference. No kernel writes into its
 * inputs, so sharing is safe; strings keep tfjs's kernel.
 */
import * as tf from '@tensorflow/tfjs';
import { callOriginal, setupOriginal } from './originals.js';
import type { Info, WasmBackend } from './wasm-ops.js';

export function identityWasm(args: {
  inputs: tf.NamedTensorInfoMap;
  backend: unknown;
  attrs?: tf.NamedAttrMap;
}): Info {
  const backend = args.backend as WasmBackend;
  const { x } = args.inputs as { x: Info };
  if (x.dtype === 'string') return callOriginal(tf.Identity, backend, args.inputs, {});
  backend.incRef(x.dataId);
  return { dataId: x.dataId, shape: [...x.shape], dtype: x.dtype };
}

export const identityConfig: tf.KernelConfig = {
  kernelName: tf.Identity,
  backendName: 'wasm',
  kernelFunc: identityWasm as unknown as tf.KernelFunc,
  setupFunc: setupOriginal(tf.Identity),
};
