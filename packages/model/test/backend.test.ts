import * as tf from '@tensorflow/tfjs';
import { existsSync, readdirSync } from 'node:fs';
import { createRequire } from 'node:module';
import path from 'node:path';
import { describe, expect, it } from 'vitest';
import { loadNative } from '@maskcon/native';
import { BACKEND_ORDER, type BackendInfo, backendLine, initBackend } from '../src/backend.js';
import { nativeKernelsRegistered } from '../src/kernels/native.js';
import { WASM_TRAINING_KERNEL_NAMES, wasmTrainingKernelsRegistered } from '../src/kernels/index.js';

const requireHere = createRequire(import.meta.url);

/** True when the native tfjs-node(-gpu) addon has been built on this machine. */
function nativeAddonBuilt(pkg: string): boolean {
  try {
    const lib = path.join(path.dirname(requireHere.resolve(`${pkg}/package.json`)), 'lib');
    return (
      existsSync(lib) &&
      readdirSync(lib).some((d) => existsSync(path.join(lib, d, 'tfjs_binding.node')))
    );
  } catch {
    return false;
  }
}
const nodeBackendsMissing =
  !nativeAddonBuilt('@tensorflow/tfjs-node-gpu') && !nativeAddonBuilt('@tensorflow/tfjs-node');

describe('initBackend', () => {
  it('tries tfjs-node-gpu, tfjs-node, native, native-memory, wasm, cpu in that order', () => {
    expect(BACKEND_ORDER).toEqual([
      'tfjs-node-gpu',
      'tfjs-node',
      'native',
      'native-memory',
      'wasm',
      'cpu',
    ]);
  });

  it.skipIf(!nodeBackendsMissing)(
    'falls back to wasm with MASKCON_NATIVE=0: one line by default, the reasons when verbose',
    async () => {
      const logs: string[] = [];
      const verboseLogs: string[] = [];
      const prev = process.env.MASKCON_NATIVE;
      process.env.MASKCON_NATIVE = '0';
      let info: BackendInfo;
      try {
        info = await initBackend(undefined, (m) => logs.push(m), { verbose: false, workers: 2 });
        await initBackend(undefined, (m) => verboseLogs.push(m), { verbose: true });
      } finally {
        if (prev == null) delete process.env.MASKCON_NATIVE;
        else process.env.MASKCON_NATIVE = prev;
      }
      expect(info.name).toBe('wasm');
      expect(tf.getBackend()).toBe('wasm');
      expect(info.detail).toMatch(/Conv2DBackpropFilter/);
      expect(wasmTrainingKernelsRegistered()).toBe(true);
      expect(nativeKernelsRegistered()).toBe(false);
      expect(info.skipped.map((s) => s.name)).toEqual([
        'tfjs-node-gpu',
        'tfjs-node',
        'native',
        'native-memory',
      ]);
      expect(logs).toEqual([
        'backend: wasm (XNNPACK, SIMD, 2 workers); GPU: tfjs-node-gpu not built — see README',
      ]);
      expect(backendLine(info)).toBe(
        'backend: wasm (XNNPACK, SIMD); GPU: tfjs-node-gpu not built — see README',
      );
      expect(verboseLogs).toHaveLength(6);
      expect(verboseLogs[0]).toMatch(/tfjs-node-gpu unavailable.*native addon was not built/);
      expect(verboseLogs[1]).toMatch(/tfjs-node unavailable.*native addon was not built/);
      expect(verboseLogs[2]).toBe(
        '[backend] native unavailable, falling back: disabled by MASKCON_NATIVE=0',
      );
      expect(verboseLogs[3]).toBe(
        '[backend] native-memory unavailable, falling back: disabled by MASKCON_NATIVE=0',
      );
      expect(verboseLogs[4]).toMatch(/^backend: wasm \(XNNPACK, SIMD\); GPU/);
      expect(verboseLogs[5]).toMatch(/^\[backend\] wasm: XNNPACK wasm \(SIMD on/);
      for (const l of [...logs, ...verboseLogs]) expect(l).not.toMatch(/\n/);

      // the wasm backend computes (and our kernels are live)
      const y = tf.conv2d(
        tf.ones([1, 5, 5, 2]) as tf.Tensor4D,
        tf.ones([3, 3, 2, 1]) as tf.Tensor4D,
        1,
        'same',
      );
      expect(Array.from(await y.data())[6]).toBe(18);
      expect(tf.getKernel('Conv2DBackpropFilter', 'wasm')).toBeDefined();
      expect(WASM_TRAINING_KERNEL_NAMES).toContain('Conv2DBackpropInput');
    },
  );

  it.skipIf(!nodeBackendsMissing)(
    'picks native where the addon loads, else says why and uses wasm',
    async () => {
      const logs: string[] = [];
      const info = await initBackend(undefined, (m) => logs.push(m), {
        threads: 1,
        verbose: true,
      });
      expect(tf.getBackend()).toBe('wasm');
      const native = loadNative();
      if (native.ok) {
        expect(info.name).toBe('native');
        expect(info.detail).toMatch(/oneDNN \d+\.\d+\.\d+ .*1 thread\(s\)\) for Conv2D/);
        expect(nativeKernelsRegistered()).toBe(true);
        expect(native.kernels.threads()).toBe(1);
        expect(logs[2]).toMatch(/^backend: native \(oneDNN \d+\.\d+\.\d+ \w+ \+ XNNPACK SIMD\)/);
        // preferring wasm afterwards puts the wasm kernels back
        expect((await initBackend('wasm', () => {})).name).toBe('wasm');
        expect(nativeKernelsRegistered()).toBe(false);
        expect(wasmTrainingKernelsRegistered()).toBe(true);
      } else {
        expect(info.name).toBe('wasm');
        expect(logs[2]).toMatch(/^\[backend\] native unavailable, falling back: [^\n]+$/);
      }
    },
  );

  it('is safe to call repeatedly and concurrently', async () => {
    const before = tf.getKernelsForBackend('wasm').length;
    const quiet = (): void => {};
    const [a, b] = await Promise.all([initBackend('wasm', quiet), initBackend('wasm', quiet)]);
    const c = await initBackend('wasm', quiet);
    expect([a.name, b.name, c.name]).toEqual(['wasm', 'wasm', 'wasm']);
    expect(tf.getKernelsForBackend('wasm').length).toBe(before);
    expect(tf.getBackend()).toBe('wasm');
  });

  it('initBackend("cpu") works', async () => {
    const logs: string[] = [];
    const info = await initBackend('cpu', (m) => logs.push(m));
    expect(info.name).toBe('cpu');
    expect(tf.getBackend()).toBe('cpu');
    expect(logs).toEqual(['backend: cpu (pure JavaScript, slow)']);
    const s = tf.sum(tf.tensor([1, 2, 3]));
    expect((await s.data())[0]).toBe(6);
  });

  it.skipIf(!nodeBackendsMissing)(
    'initBackend("tfjs-node-gpu") rejects with install instructions',
    async () => {
      const err = await initBackend('tfjs-node-gpu', () => {}).then(
        () => null,
        (e: unknown) => e as Error,
      );
      expect(err).toBeInstanceOf(Error);
      const msg = err!.message;
      expect(msg).toMatch(/Backend 'tfjs-node-gpu' is not available: .*native addon was not built/);
      expect(msg).toContain('pnpm rebuild @tensorflow/tfjs-node-gpu');
      expect(msg).toContain('onlyBuiltDependencies');
      expect(msg).toContain('npm run install');
      expect(msg).toMatch(/CUDA/);
      // a failed explicit preference leaves the previous backend active
      expect(tf.getBackend()).toBe('cpu');
    },
  );

  it.skipIf(!nodeBackendsMissing)(
    'initBackend("tfjs-node") rejects with install instructions',
    async () => {
      await expect(initBackend('tfjs-node', () => {})).rejects.toThrow(
        /pnpm rebuild @tensorflow\/tfjs-node\b/,
      );
    },
  );

  it('rejects unknown backend names', async () => {
    await expect(initBackend('webgpu' as never, () => {})).rejects.toThrow(
      /Unknown backend 'webgpu'/,
    );
  });
});
