/**
 * The `native-memory` tfjs backend: tfjs's cpu backend (every tensor a plain TypedArray in the JS
 * heap's external memory, so no 4 GB wasm-heap cap, and every op tfjs has runs through its JS
 * kernel) with the heavy kernels of a training step replaced by oneDNN primitives that work on
 * those arrays in place (kernels.ts). See packages/native/README.md for why and what it costs.
 */
import * as tf from '@tensorflow/tfjs';
import type { NativeMemoryOps } from '@maskcon/native';
import { MathBackendCPU } from '@tensorflow/tfjs-backend-cpu';
import { MEMORY_KERNELS, setCpuKernel, setOps } from './kernels.js';

export { memoryImplementations } from './kernels.js';

/** The tfjs backend id. */
export const NATIVE_MEMORY = 'native-memory';

/** The cpu backend without its "install tfjs-node" notice (this backend is the native one). */
class NativeMemoryBackend extends MathBackendCPU {
  constructor() {
    super();
    (this as unknown as { firstUse: boolean }).firstUse = false;
  }
}

/** Names of the kernels that run on oneDNN; every other kernel is the cpu backend's. */
export const NATIVE_MEMORY_KERNEL_NAMES: readonly string[] = Object.freeze(
  MEMORY_KERNELS.map(([n]) => n),
);

/**
 * Registers the backend (once) with the cpu backend's kernels under its name and ours on top.
 * Throws when tfjs's cpu backend is not the one @tensorflow/tfjs-backend-cpu exports (two copies
 * of tfjs installed).
 */
export function registerNativeMemoryBackend(ops: NativeMemoryOps): readonly string[] {
  setOps(ops);
  if (tf.findBackendFactory(NATIVE_MEMORY) != null) return NATIVE_MEMORY_KERNEL_NAMES;
  const cpuKernels = tf.getKernelsForBackend('cpu');
  if (cpuKernels.length === 0 || tf.getKernel(tf.Conv2D, 'cpu') == null)
    throw new Error(
      "tfjs's cpu kernels are not registered (is @tensorflow/tfjs-backend-cpu a second copy?)",
    );
  const ours = new Map(MEMORY_KERNELS);
  for (const k of cpuKernels) {
    setCpuKernel(k);
    if (!ours.has(k.kernelName)) tf.registerKernel({ ...k, backendName: NATIVE_MEMORY });
  }
  for (const [kernelName, fn] of MEMORY_KERNELS)
    tf.registerKernel({
      kernelName,
      backendName: NATIVE_MEMORY,
      kernelFunc: fn as unknown as tf.KernelFunc,
    });
  // Low priority: chosen only by name (initBackend), never by tfjs's own default choice.
  tf.registerBackend(NATIVE_MEMORY, () => new NativeMemoryBackend(), -1);
  return NATIVE_MEMORY_KERNEL_NAMES;
}
