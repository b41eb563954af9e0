import type * as tf from '@tensorflow/tfjs';
import { createHash } from 'node:crypto';
import { existsSync, readFileSync } from 'node:fs';
import { join, resolve } from 'node:path';
import {
  initBackend,
  layersModelToOnnx,
  loadBackbone,
  ONNX_INPUT_NAME,
  ONNX_OUTPUT_NAME,
  type BackendName,
  type ExportMetadata,
} from '@maskcon/model';
import { DEFAULT_CONFIG, RunsDb, runDir, type TrainConfig } from '@maskcon/train';
import type { ModelIdentity } from './store.js';

/** A model given on the command line: a run id (`pnpm runs`) or an exported model folder. */
export interface ResolvedModel {
  runId: number | null;
  modelDir: string;
  /** The run's dataset index, when the model came from a run. */
  runIndex?: string;
  runDataset?: string;
}

export function resolveModel(target: string, runsDb = DEFAULT_CONFIG.runsDb): ResolvedModel {
  if (/^\d+$/.test(target)) {
    const runId = Number(target);
    if (!existsSync(runsDb))
      throw new Error(`No runs database at ${runsDb}; give a model folder, or --runs-db FILE.`);
    const db = new RunsDb(runsDb);
    try {
      const row = db.getRun(runId);
      if (!row) throw new Error(`No run ${runId} in ${runsDb}; \`pnpm runs\` lists the runs.`);
      const cfg = JSON.parse(row.config) as TrainConfig;
      const modelDir = resolve(join(runDir(runsDb, runId), 'model'));
      if (!existsSync(join(modelDir, 'model.json')))
        throw new Error(
          `Run ${runId} has no exported model at ${modelDir} (a run exports it when it finishes); resume or re-train it.`,
        );
      return { runId, modelDir, runIndex: cfg.index, runDataset: cfg.dataset };
    } finally {
      db.close();
    }
  }
  const modelDir = resolve(target);
  if (!existsSync(join(modelDir, 'model.json')))
    throw new Error(
      `${target} is neither a run id nor an exported model folder (no model.json in it); \`pnpm runs\` lists the runs.`,
    );
  return { runId: null, modelDir };
}

/** sha256 over the model topology and weight files: two folders with equal hashes compute equal features. */
export function modelHash(modelDir: string): string {
  const json = JSON.parse(readFileSync(join(modelDir, 'model.json'), 'utf8')) as {
    modelTopology: unknown;
    weightsManifest: { paths: string[] }[];
  };
  const h = createHash('sha256');
  h.update(JSON.stringify(json.modelTopology));
  for (const g of json.weightsManifest)
    for (const p of g.paths) {
      if (p.includes('/') || p.includes('\\'))
        throw new Error(`${modelDir}/model.json names weight file '${p}' outside its folder.`);
      h.update(readFileSync(join(modelDir, p)));
    }
  return h.digest('hex');
}

export const ENGINE_NAMES = ['auto', 'onnx', 'tfjs'] as const;
export type EngineChoice = (typeof ENGINE_NAMES)[number];

/** Computes backbone features of normalised NHWC batches. */
export interface EmbeddingEngine {
  /** 'onnx' or 'tfjs:<backend>'. */
  readonly name: string;
  readonly meta: ExportMetadata;
  readonly dim: number;
  /** x: n×H×W×C normalised float32 (the test pipeline's output) → n×dim features. */
  embed(x: Float32Array, n: number): Promise<Float32Array>;
  close(): Promise<void>;
}

export interface EngineOptions {
  engine?: EngineChoice;
  /** tfjs engine: backend (default: the project's order, see initBackend). */
  backend?: BackendName;
  /** onnx engine: intra-op threads (default: ONNX Runtime's, one per core). */
  threads?: number;
  /** Told which engine was chosen and, for a fallback, why. */
  log?: (message: string) => void;
}

type Ort = typeof import('onnxruntime-node');
let ortModule: Promise<Ort | string> | undefined;
/** onnxruntime-node if it loads on this machine, else the reason it does not. */
export function loadOnnxRuntime(): Promise<Ort | string> {
  ortModule ??= (async () => {
    try {
      const name = 'onnxruntime-node'; // optional dependency: resolved at run time
      const m = (await import(name)) as Ort & { default?: Ort };
      return m.InferenceSession ? m : (m.default as Ort);
    } catch (err) {
      return `onnxruntime-node did not load (${(err as Error).message.split('\n')[0]})`;
    }
  })();
  return ortModule;
}

/** NHWC → NCHW for one batch. */
function toNchw(x: Float32Array, n: number, h: number, w: number, c: number): Float32Array {
  if (c === 1) return x; // same memory order
  const out = new Float32Array(x.length);
  const hw = h * w;
  for (let i = 0; i < n; i++) {
    const src = i * hw * c;
    for (let ch = 0; ch < c; ch++) {
      const dst = (i * c + ch) * hw;
      for (let p = 0; p < hw; p++) out[dst + p] = x[src + p * c + ch];
    }
  }
  return out;
}

/**
 * The engine that embeds images: ONNX Runtime (the exported backbone translated to ONNX in
 * memory) when `engine` is onnx or auto and onnxruntime-node loads; else TF.js on the
 * project's backend order.
 */
export async function openEngine(
  modelDir: string,
  opts: EngineOptions = {},
): Promise<EmbeddingEngine> {
  const choice = opts.engine ?? 'auto';
  const log = opts.log ?? (() => {});
  let ort: Ort | string | undefined;
  if (choice !== 'tfjs') {
    ort = await loadOnnxRuntime();
    if (typeof ort === 'string' && choice === 'onnx')
      throw new Error(`--engine onnx: ${ort}. Use --engine tfjs, or reinstall with pnpm install.`);
  }
  // TF.js is needed either way: the ONNX graph is translated from the TF.js export.
  const backend = await initBackend(
    choice === 'tfjs' ? opts.backend : (opts.backend ?? 'wasm'),
    () => {},
  );
  const { model, meta } = await loadBackbone(modelDir);
  const [h, w, c] = meta.inputShape;
  const dim = (model.outputs[0].shape as number[])[1];
  if (ort && typeof ort !== 'string') {
    const bytes = layersModelToOnnx(model, meta);
    model.dispose();
    const session = await ort.InferenceSession.create(bytes, {
      graphOptimizationLevel: 'all',
      executionMode: 'sequential',
      ...(opts.threads ? { intraOpNumThreads: opts.threads, interOpNumThreads: 1 } : {}),
    });
    const o = ort;
    log(`engine: onnxruntime-node ${o.env.versions?.node ?? ''}`.trim());
    return {
      name: 'onnx',
      meta,
      dim,
      async embed(x, n) {
        const input = new o.Tensor('float32', toNchw(x, n, h, w, c), [n, c, h, w]);
        const out = await session.run({ [ONNX_INPUT_NAME]: input });
        return out[ONNX_OUTPUT_NAME].data as Float32Array;
      },
      close: () => session.release(),
    };
  }
  if (typeof ort === 'string') log(`engine: tfjs (${ort})`);
  log(`engine: tfjs on ${backend.name}`);
  const tfm = await import('@tensorflow/tfjs');
  return {
    name: `tfjs:${backend.name}`,
    meta,
    dim,
    async embed(x, n) {
      const y = tfm.tidy(() => model.predict(tfm.tensor4d(x, [n, h, w, c])) as tf.Tensor2D);
      const data = (await y.data()) as Float32Array;
      y.dispose();
      return data;
    },
    async close() {
      model.dispose();
    },
  };
}

export function modelIdentity(m: ResolvedModel, meta: ExportMetadata, dim: number): ModelIdentity {
  return {
    runId: m.runId,
    modelDir: m.modelDir,
    weightsHash: modelHash(m.modelDir),
    arch: meta.arch,
    inputShape: meta.inputShape,
    mean: [...meta.mean],
    std: [...meta.std],
    dim,
  };
}
