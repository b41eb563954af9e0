/**
 * Backend selection for TensorFlow.js training.
 *
 * Order without a preference: tfjs-node-gpu → tfjs-node → native (the wasm
 * backend with oneDNN convolutions and matrix products from @maskcon/native) →
 * native-memory (tfjs's cpu backend, tensors outside any wasm heap, with oneDNN
 * convolutions, products, BatchNorm and max-pooling; no 4 GB cap) →
 * wasm (+ our forward-conv based gradient kernels) → cpu. The choice is logged
 * in one line (`backendLine`); each fallback's reason and the kernels in use
 * only with `verbose` (or MASKCON_VERBOSE / MASKCON_DEBUG set). MASKCON_NATIVE=0
 * (or preferring 'wasm') keeps the plain wasm kernels.
 */
import * as tf from '@tensorflow/tfjs';
import { loadNative, loadNativeMemory } from '@maskcon/native';
import { existsSync, readdirSync } from 'node:fs';
import { createRequire } from 'node:module';
import { availableParallelism } from 'node:os';
import path from 'node:path';

export type BackendName =
  | 'tfjs-node-gpu'
  | 'tfjs-node'
  | 'native'
  | 'native-memory'
  | 'wasm'
  | 'cpu';

/** Fallback order used when no backend is preferred. */
export const BACKEND_ORDER: readonly BackendName[] = [
  'tfjs-node-gpu',
  'tfjs-node',
  'native',
  'native-memory',
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
  /** Data-parallel workers sharing the cores, for the one-line report (default 1). */
  workers?: number;
  /**
   * Log each fallback's reason and the full kernel list too (default: MASKCON_VERBOSE or
   * MASKCON_DEBUG set in the environment, which the CLIs' `--verbose` sets).
   */
  verbose?: boolean;
}

export interface BackendInfo {
  name: BackendName;
  /** Everything about the choice: library versions, ISA, threads, kernels registered. */
  detail: string;
  /** A few words for the one-line report, e.g. `XNNPACK, SIMD`. */
  summary: string;
  /** CPU threads of its kernels in this thread, where the backend has its own (native). */
  threads?: number;
  /** Backends tried before this one (automatic choice only), each with why it was skipped. */
  skipped: { name: BackendName; reason: string }[];
}

const requireHere = createRequire(import.meta.url);

/** Install hints (pnpm v10 blocks dependency build scripts unless approved). */
const NODE_INSTALL_HINT: Record<'tfjs-node-gpu' | 'tfjs-node', string> = {
  'tfjs-node-gpu':
    'To enable it (needs network access, Linux x64, an NVIDIA GPU with CUDA 11.2 + cuDNN 8.1): ' +
    "pnpm v10 skips dependency build scripts, so first approve it — add '@tensorflow/tfjs-node-gpu' to " +
    '`pnpm.onlyBuiltDependencies` in the root package.json (and remove it from ' +
    '`pnpm.ignoredBuiltDependencies`) — then run ' +
    '`pnpm rebuild @tensorflow/tfjs-node-gpu`; alternatively run its install script directly with ' +
    '`cd packages/model/node_modules/@tensorflow/tfjs-node-gpu && npm run install` ' +
    '(downloads libtensorflow 2.9.1 and the prebuilt tfjs_binding.node).',
  'tfjs-node':
    'To enable it (needs network access): pnpm v10 skips dependency build scripts, so first approve it — ' +
    "add '@tensorflow/tfjs-node' to `pnpm.onlyBuiltDependencies` in the root package.json (and " +
    'remove it from `pnpm.ignoredBuiltDependencies`) — then run `pnpm rebuild @tensorflow/tfjs-node`; alternatively run its ' +
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
      summary: 'TensorFlow C library',
      skipped: [],
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
  return {
    name: which,
    detail: `TensorFlow C library via ${pkg} ${version}`,
    summary: `TensorFlow C library ${version}`,
    skipped: [],
  };
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
    summary: `oneDNN ${info.version} ${info.isa} + ${wasm.summary.replace(', ', ' ')}`,
    threads,
    skipped: [],
  };
}

/** Our cpu-backend subclass on native memory, with oneDNN for the heavy kernels. */
async function initNativeMemory(opts: BackendOptions): Promise<BackendInfo> {
  const load = loadNativeMemory();
  if (!load.ok) throw new BackendUnavailable(load.reason);
  const native = loadNative();
  const { registerNativeMemoryBackend, NATIVE_MEMORY } = await import(
    './kernels/native-memory/index.js'
  );
  const names = registerNativeMemoryBackend(load.ops);
  let ok = false;
  try {
    ok = await tf.setBackend(NATIVE_MEMORY);
    await tf.ready();
  } catch (e) {
    throw new BackendUnavailable(`tf.setBackend('${NATIVE_MEMORY}') threw: ${firstLine(e)}`);
  }
  if (!ok || tf.getBackend() !== NATIVE_MEMORY)
    throw new BackendUnavailable(`tf.setBackend('${NATIVE_MEMORY}') returned false`);
  const envThreads = Number(process.env.MASKCON_NATIVE_THREADS);
  const threads =
    Number.isInteger(envThreads) && envThreads > 0
      ? envThreads
      : (opts.threads ?? availableParallelism());
  load.ops.setThreads(threads);
  const info = native.ok ? native.kernels.info() : null;
  const lib = info ? `oneDNN ${info.version} ${info.isa}` : 'oneDNN';
  return {
    name: 'native-memory',
    detail: `${lib} (OpenMP ${threads} thread(s)) for ${names.join(', ')} on tensors outside the wasm heap; every other kernel is tfjs's cpu (JS) kernel`,
    summary: `${lib} + JS kernels, no heap cap`,
    threads,
    skipped: [],
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
    summary: `XNNPACK${simd ? ', SIMD' : ', no SIMD'}`,
    skipped: [],
  };
}

async function initCpu(): Promise<BackendInfo> {
  const ok = await tf.setBackend('cpu');
  await tf.ready();
  if (!ok) throw new BackendUnavailable("tf.setBackend('cpu') returned false");
  return {
    name: 'cpu',
    detail: 'pure-JS cpu backend (very slow for convolutions)',
    summary: 'pure JavaScript, slow',
    skipped: [],
  };
}

function initOne(name: BackendName, opts: BackendOptions): Promise<BackendInfo> {
  switch (name) {
    case 'tfjs-node-gpu':
    case 'tfjs-node':
      return initNode(name);
    case 'native':
      return initNative(opts);
    case 'native-memory':
      return initNativeMemory(opts);
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
    case 'native-memory':
      return `Backend '${name}' is not available: ${reason}. Use --backend wasm (or MASKCON_NATIVE=0) for the wasm kernels.`;
    case 'wasm':
      return `Backend 'wasm' is not available: ${reason}. Check that @tensorflow/tfjs-backend-wasm 4.22.0 and its .wasm files (dist/*.wasm) are installed, or use initBackend('cpu').`;
    default:
      return `Backend '${name}' is not available: ${reason}.`;
  }
}

/** Whether backend details are logged: the option, else MASKCON_VERBOSE / MASKCON_DEBUG. */
function isVerbose(opts: BackendOptions): boolean {
  return opts.verbose ?? !!(process.env.MASKCON_VERBOSE || process.env.MASKCON_DEBUG);
}

/**
 * The one-line report of a backend choice, e.g.
 * `backend: wasm (XNNPACK, SIMD, 2 workers); GPU: tfjs-node-gpu not built — see README`.
 * The GPU note appears when the automatic choice passed over tfjs-node-gpu.
 */
export function backendLine(info: BackendInfo, workers = 1): string {
  const parts = [info.summary];
  const threads = info.threads ?? 1;
  const per = threads > 1 ? ` × ${threads} threads` : '';
  if (workers > 1) parts.push(`${workers} workers${per}`);
  else if (threads > 1) parts.push(`${threads} threads`);
  let line = `backend: ${info.name} (${parts.join(', ')})`;
  const gpu = info.skipped.find((s) => s.name === 'tfjs-node-gpu');
  if (gpu) {
    const why = /not built/.test(gpu.reason)
      ? 'not built'
      : /not installed|Cannot find/.test(gpu.reason)
        ? 'not installed'
        : 'unavailable';
    line += `; GPU: tfjs-node-gpu ${why} — see README`;
  }
  return line;
}

async function select(
  preferred: BackendName | undefined,
  log: (msg: string) => void,
  opts: BackendOptions,
): Promise<BackendInfo> {
  const verbose = isVerbose(opts);
  const report = (info: BackendInfo) => {
    log(backendLine(info, opts.workers));
    if (verbose) log(`[backend] ${info.name}: ${info.detail}`);
  };
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
    report(info);
    return info;
  }
  const skipped: BackendInfo['skipped'] = [];
  for (const name of BACKEND_ORDER) {
    try {
      const info = { ...(await initOne(name, opts)), skipped };
      report(info);
      return info;
    } catch (e) {
      skipped.push({ name, reason: firstLine(e) });
      if (verbose) log(`[backend] ${name} unavailable, falling back: ${firstLine(e)}`);
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
    log(`${backendLine(current, opts.workers)} (already initialised)`);
    if (isVerbose(opts)) log(`[backend] ${current.name}: ${current.detail}`);
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
