/**
 * Extra / replacement kernels that make TensorFlow.js training usable on the
 * wasm backend. Import order matters: tfjs-backend-wasm must register its own
 * kernels before ours, so it is imported here.
 */
import * as tf from '@tensorflow/tfjs';
import '@tensorflow/tfjs-backend-wasm';
import { conv2DBackpropFilterConfig } from './conv2d-backprop-filter.js';
import { conv2DBackpropInputConfig } from './conv2d-backprop-input.js';
import { batchMatMulConfig } from './batch-mat-mul.js';
import { meanConfig, sumConfig } from './reduce.js';
import { identityConfig } from './identity.js';
import { replacedKernels as replaced } from './originals.js';

export { conv2DBackpropFilterWasm } from './conv2d-backprop-filter.js';
export { conv2DBackpropInputWasm } from './conv2d-backprop-input.js';
export { batchMatMulWasm } from './batch-mat-mul.js';
export { sumWasm, meanWasm, leadingBlockView } from './reduce.js';
export { batchNormTrainFused, type BatchNormTrainResult } from './batch-norm.js';
export { setBackpropFilterChunk } from './conv2d-backprop-filter.js';
export { forceBatchMatMulOrientation } from './batch-mat-mul.js';

const CONFIGS: readonly tf.KernelConfig[] = [
  conv2DBackpropFilterConfig,
  conv2DBackpropInputConfig,
  batchMatMulConfig,
  sumConfig,
  meanConfig,
  identityConfig,
];

/** Names of the kernels registered for the 'wasm' backend by `registerWasmTrainingKernels()`. */
export const WASM_TRAINING_KERNEL_NAMES: readonly string[] = Object.freeze(
  CONFIGS.map((c) => c.kernelName),
);

function currentWasmBackend(): tf.KernelBackend | null {
  try {
    return tf.getBackend() === 'wasm' ? tf.backend() : null;
  } catch {
    return null;
  }
}

/**
 * Registers our wasm training kernels (idempotent: calling it again is a no-op;
 * a kernel that tfjs already provides for 'wasm' is replaced and remembered).
 * Returns the list of kernel names that are now ours.
 */
export function registerWasmTrainingKernels(): readonly string[] {
  for (const config of CONFIGS) {
    const existing = tf.getKernel(config.kernelName, 'wasm');
    if (existing === config) continue;
    if (existing != null) {
      // Only remember tfjs's original, never a stale copy of one of ours.
      if (!replaced.has(config.kernelName)) replaced.set(config.kernelName, existing);
      tf.unregisterKernel(config.kernelName, 'wasm');
    }
    tf.registerKernel(config);
  }
  return WASM_TRAINING_KERNEL_NAMES;
}

/** Removes our kernels and restores tfjs's originals (safe to call at any time). */
export function unregisterWasmTrainingKernels(): void {
  const wasmBackend = currentWasmBackend();
  for (const config of CONFIGS) {
    if (tf.getKernel(config.kernelName, 'wasm') === config) {
      tf.unregisterKernel(config.kernelName, 'wasm');
    }
    const original = replaced.get(config.kernelName);
    if (original != null && tf.getKernel(config.kernelName, 'wasm') == null) {
      tf.registerKernel(original);
      // Its setup (cwrap) may have been skipped while ours was registered.
      if (wasmBackend != null && original.setupFunc != null) original.setupFunc(wasmBackend);
    }
    replaced.delete(config.kernelName);
  }
}

/** True when all our kernels are the active 'wasm' kernels. */
export function wasmTrainingKernelsRegistered(): boolean {
  return CONFIGS.every((c) => tf.getKernel(c.kernelName, 'wasm') === c);
}
