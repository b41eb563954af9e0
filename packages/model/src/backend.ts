/**
 * Backend selection for TensorFlow.js training.
 *
 * Order without a preference: tfjs-node-gpu → tfjs-node → native (the wasm
 * backend with oneDNN convolutions and matrix products from @maskcon/native) →
 * wasm (+ our forward-conv based gradient kernels) → cpu. Every fallback is
 * logged in one line with its reason, and the chosen backend is logged at the
 * end. MASKCON_NATIVE=0 (or preferring 'wasm') keeps the plain wasm kernels.
 */
import * as tf from '@tensorflow/tfjs';
import { loadNative } from '@maskcon/native';
import { existsSync, readdirSync } from 'node:fs';
import { createRequire } from 'node:module';
import { availableParallelism } from 'node:os';
import path from 'node:path';

export type BackendName = 'tfjs-node-gpu' | 'tfjs-node' | 'native' | 'wasm' | 'cpu';

/** Fallback order used when no backend is preferred. */
export const BACKEND_ORDER: readonly BackendName[] = [
  'tfjs-node-gpu',
  'tfjs-node',
  'native',
  'wasm',
  'cpu',
];

export interface BackendOptions {
  /**
   * OpenMP threads of the oneDNN kernels in this thread (the main thread, or one data-parallel
   * worker); default every core. Workers pass cores / workers so that the process never runs more
   * threads than cores. MASKCON_NATIVE_THREADS, when set, overrides it.
   */
  threads?: number;
}

export interface BackendInfo {
  name: BackendName;
  detail: string;
}

const requireHere = createRequire(import.meta.url);

/** Install hints (pnpm v10 blocks dependency build scripts unless approved). */
const NODE_INSTALL_HINT: Record<'tfjs-node-gpu' | 'tfjs-node', string> = {
  'tfjs-node-gpu':
    'To enable it (needs network access, Linux x64, an NVIDIA GPU with CUDA 11.2 + cuDNN 8.1): ' +
    "pnpm v10 skips dependency build scripts, so first approve it — add '@tensorflow/tfjs-node-gpu' to " +
    '`onlyBuiltDependencies` in pnpm-workspace.yaml (or run `pnpm approve-builds`) — then run ' +
    '`pnpm rebuild @tensorflow/tfjs-node-gpu`; alternatively run its install script directly with ' +
    '`cd packages/model/node_modules/@tensorflow/tfjs-node-gpu && npm run install` ' +
    '(downloads libtensorflow 2.9.1 and the prebuilt tfjs_binding.node).',
  'tfjs-node':
    'To enable it (needs network access): pnpm v10 skips dependency build scripts, so first approve it — ' +
    "add '@tensorflow/tfjs-node' to `onlyBuiltDependencies` in pnpm-workspace.yaml (or run " +
    '`pnpm approve-builds`) — then run `pnpm rebuild @tensorflow/tfjs-node`; alternatively run its ' +
    'install script directly with `cd packages/model/node_modules/@tensorflow/tfjs-node && npm run install` ' +
    '(downloads libtensorflow 2.9.1 and the prebuilt tfjs_binding.node).',
};

class BackendUnavailable extends Error {}

/** Which native package provided the 'tensorflow' backend in this process. */
let loadedNodePackage: 'tfjs-node-gpu' | 'tfjs-node' | null = null;
let current: BackendInfo | null = null;
let pending: Promise<BackendInfo> | null = null;

function firstLine(e: unknown): string {
  const msg = e instanceof Error ? e.message : String(e);
  return msg.split('\n')[0].trim();
}

function findNativeAddon(pkgDir: string): string | null {
  const lib = path.join(pkgDir, 'lib');
  if (!existsSync(lib)) return null;
  for (const entry of readdirSync(lib)) {
    const candidate = path.join(lib, entry, 'tfjs_binding.node');
    if (entry.startsWith('napi-v') && existsSync(candidate)) return candidate;
  }
  return null;
}

async function initNode(which: 'tfjs-node-gpu' | 'tfjs-node'): Promise<BackendInfo> {
  const pkg = `@tensorflow/${which}`;
  if (loadedNodePackage != null && tf.findBackendFactory('tensorflow') != null) {
    // Both packages provide the same 'tensorflow' backend; only one can be loaded.
    if (!(await tf.setBackend('tensorflow')))
      throw new BackendUnavailable("tf.setBackend('tensorflow') failed");
    await tf.ready();
    return {
      name: loadedNodePackage,
      detail: `TensorFlow C library via ${'@tensorflow/' + loadedNodePackage} (already loaded in this process)`,
    };
  }
  let pkgJsonPath: string;
  try {
    pkgJsonPath = requireHere.resolve(`${pkg}/package.json`);
  } catch {
    throw new BackendUnavailable(`${pkg} is not installed`);
  }
  const pkgDir = path.dirname(pkgJsonPath);
  // Checking for the addon first avoids importing a half-installed package
  // (its import registers ~150 'tensorflow' kernels before failing).
  if (findNativeAddon(pkgDir) == null) {
    throw new BackendUnavailable(
      `${pkg} is installed but its native addon was not built (no lib/napi-v*/tfjs_binding.node)`,
    );
  }
  try {
    await import(pkg);
  } catch (e) {
    throw new BackendUnavailable(`importing ${pkg} failed: ${firstLine(e)}`);
  }
  if (tf.findBackendFactory('tensorflow') == null) {
    throw new BackendUnavailable(
      `${pkg} loaded but did not register the 'tensorflow' backend (duplicate @tensorflow/tfjs-core instance?)`,
    );
  }
  let ok = false;
  try {
    ok = await tf.setBackend('tensorflow');
    await tf.ready();
  } catch (e) {
    throw new BackendUnavailable(`tf.setBackend('tensorflow') threw: ${firstLine(e)}`);
  }
  if (!ok || tf.getBackend() !== 'tensorflow') {
    throw new BackendUnavailable("tf.setBackend('tensorflow') returned false");
  }
  loadedNodePackage = which;
  const version = (requireHere(pkgJsonPath) as { version?: string }).version ?? '?';
  return { name: which, detail: `TensorFlow C library via ${pkg} ${version}` };
}

/** The wasm backend with the oneDNN kernels of @maskcon/native on top of ours. */
async function initNative(opts: BackendOptions): Promise<BackendInfo> {
  const load = loadNative();
  if (!load.ok) throw new BackendUnavailable(load.reason);
  const wasm = await initWasm();
  const { registerNativeKernels } = await import('./kernels/native.js');
  const names = registerNativeKernels(load.kernels);
  // MASKCON_NATIVE_THREADS (a user's explicit choice) wins over the caller's share of the cores.
  const envThreads = Number(process.env.MASKCON_NATIVE_THREADS);
  const threads =
    Number.isInteger(envThreads) && envThreads > 0
      ? envThreads
      : (opts.threads ?? availableParallelism());
  load.kernels.setThreads(threads);
  const info = load.kernels.info();
  return {
    name: 'native',
    detail: `oneDNN ${info.version} (${info.isa}, ${info.cpuRuntime} ${threads} thread(s)) for ${names.join(', ')} on the wasm heap; ${wasm.detail}`,
  };
}

async function initWasm(): Promise<BackendInfo> {
  // Preferring plain wasm after native: put our wasm kernels back under the oneDNN ones.
  const { unregisterNativeKernels } = await import('./kernels/native.js');
  unregisterNativeKernels();
  let wasmModule: typeof import('@tensorflow/tfjs-backend-wasm');
  try {
    wasmModule = await import('@tensorflow/tfjs-backend-wasm');
  } catch (e) {
    throw new BackendUnavailable(`importing @tensorflow/tfjs-backend-wasm failed: ${firstLine(e)}`);
  }
  // Point the loader at the package's own .wasm files (works under node
  // regardless of bundling/transforms); only possible before initialisation.
  if (tf.findBackend('wasm') == null) {
    try {
      const distDir = path.join(
        path.dirname(requireHere.resolve('@tensorflow/tfjs-backend-wasm/package.json')),
        'dist',
      );
      if (existsSync(path.join(distDir, 'tfjs-backend-wasm-simd.wasm'))) {
        wasmModule.setWasmPaths(distDir + path.sep);
      }
    } catch {
      // fall back to the loader's own resolution
    }
  }
  const { registerWasmTrainingKernels } = await import('./kernels/index.js');
  const kernels = registerWasmTrainingKernels();
  let ok = false;
  try {
    ok = await tf.setBackend('wasm');
    await tf.ready();
  } catch (e) {
    throw new BackendUnavailable(`tf.setBackend('wasm') threw: ${firstLine(e)}`);
  }
  if (!ok || tf.getBackend() !== 'wasm')
    throw new BackendUnavailable("tf.setBackend('wasm') returned false");
  const simd = await tf.env().getAsync('WASM_HAS_SIMD_SUPPORT');
  return {
    name: 'wasm',
    detail: `XNNPACK wasm (SIMD ${simd ? 'on' : 'off'}, ${wasmModule.getThreadsCount()} thread(s)); gradient kernels: ${kernels.join(', ')}`,
  };
}

async function initCpu(): Promise<BackendInfo> {
  const ok = await tf.setBackend('cpu');
  await tf.ready();
  if (!ok) throw new BackendUnavailable("tf.setBackend('cpu') returned false");
  return { name: 'cpu', detail: 'pure-JS cpu backend (very slow for convolutions)' };
}

function initOne(name: BackendName, opts: BackendOptions): Promise<BackendInfo> {
  switch (name) {
    case 'tfjs-node-gpu':
    case 'tfjs-node':
      return initNode(name);
    case 'native':
      return initNative(opts);
    case 'wasm':
      return initWasm();
    case 'cpu':
      return initCpu();
    default:
      throw new Error(
        `Unknown backend '${String(name)}'; expected one of ${BACKEND_ORDER.join(', ')}`,
      );
  }
}

function explain(name: BackendName, reason: string): string {
  switch (name) {
    case 'tfjs-node-gpu':
    case 'tfjs-node':
      return `Backend '${name}' is not available: ${reason}. ${NODE_INSTALL_HINT[name]} Or use initBackend('wasm').`;
    case 'native':
      return `Backend 'native' is not available: ${reason}. Use --backend wasm (or MASKCON_NATIVE=0) for the wasm kernels.`;
    case 'wasm':
      return `Backend 'wasm' is not available: ${reason}. Check that @tensorflow/tfjs-backend-wasm 4.22.0 and its .wasm files (dist/*.wasm) are installed, or use initBackend('cpu').`;
    default:
      return `Backend '${name}' is not available: ${reason}.`;
  }
}

async function select(
  preferred: BackendName | undefined,
  log: (msg: string) => void,
  opts: BackendOptions,
): Promise<BackendInfo> {
  if (preferred != null) {
    if (!BACKEND_ORDER.includes(preferred)) {
      throw new Error(
        `Unknown backend '${String(preferred)}'; expected one of ${BACKEND_ORDER.join(', ')}`,
      );
    }
    let info: BackendInfo;
    try {
      info = await initOne(preferred, opts);
    } catch (e) {
      throw new Error(explain(preferred, firstLine(e)), { cause: e });
    }
    log(`[backend] using ${info.name}: ${info.detail}`);
    return info;
  }
  for (const name of BACKEND_ORDER) {
    try {
      const info = await initOne(name, opts);
      log(`[backend] using ${info.name}: ${info.detail}`);
      return info;
    } catch (e) {
      log(`[backend] ${name} unavailable, falling back: ${firstLine(e)}`);
    }
  }
  throw new Error('No TensorFlow.js backend could be initialised (not even cpu).');
}

/**
 * Selects and initialises a TensorFlow.js backend. Without `preferred` the
 * first working one of BACKEND_ORDER wins; with `preferred` a failure is an
 * error explaining why and how to fix it. Safe to call repeatedly: calls are
 * serialised, already-initialised backends are reused (re-running the
 * selection costs a few fs checks), and kernels are registered idempotently.
 */
export async function initBackend(
  preferred?: BackendName,
  log: (msg: string) => void = (m) => console.log(m),
  opts: BackendOptions = {},
): Promise<BackendInfo> {
  while (pending != null) {
    try {
      await pending;
    } catch {
      // the previous caller gets its own error
    }
  }
  if (
    current != null &&
    preferred != null &&
    preferred === current.name &&
    tf.getBackend() === backendIdOf(current.name)
  ) {
    log(`[backend] using ${current.name} (already initialised): ${current.detail}`);
    return current;
  }
  const run = select(preferred, log, opts);
  pending = run;
  try {
    current = await run;
    return current;
  } finally {
    pending = null;
  }
}

/** The tfjs backend id registered for one of our backend names. */
export function backendIdOf(name: BackendName): string {
  if (name === 'tfjs-node-gpu' || name === 'tfjs-node') return 'tensorflow';
  return name === 'native' ? 'wasm' : name;
}

/** The backend chosen by the last successful initBackend() call, if any. */
export function currentBackend(): BackendInfo | null {
  return current;
}
