/**
 * tfjs's own wasm kernels that one of ours replaced. Our replacements fall back
 * to them for the cases they do not handle, and `unregisterWasmTrainingKernels`
 * restores them.
 */
import type * as tf from '@tensorflow/tfjs';
import type { Info, WasmBackend } from './wasm-ops.js';

export const replacedKernels = new Map<string, tf.KernelConfig>();

/** tfjs's original wasm kernel `name` (throws when it was never replaced). */
export function originalKernel(name: string): tf.KernelConfig {
  const k = replacedKernels.get(name);
  if (k == null)
    throw new Error(
      `maskcon wasm kernels: tfjs's original '${name}' kernel is not known (register our kernels first)`,
    );
  return k;
}

/** Runs tfjs's original wasm kernel `name`. */
export function callOriginal(
  name: string,
  backend: WasmBackend,
  inputs: tf.NamedTensorInfoMap,
  attrs: tf.NamedAttrMap,
): Info {
  const out = originalKernel(name).kernelFunc({ inputs, attrs, backend });
  if (Array.isArray(out)) throw new Error(`wasm kernel '${name}' returned several outputs`);
  return out;
}

/** A setupFunc that runs the original's setup (cwrap) when the backend initialises with ours registered. */
export function setupOriginal(name: string): NonNullable<tf.KernelConfig['setupFunc']> {
  return (backend) => {
    const k = replacedKernels.get(name);
    if (k?.setupFunc != null) k.setupFunc(backend);
  };
}
