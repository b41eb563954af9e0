/**
 * The layout of a run's folder, in one place. Every run `<id>` of a runs database
 * `<dir>/runs.sqlite` owns `<dir>/<id>/`:
 *
 *   checkpoint.safetensors   both encoders, optimizer momentum, queue (written atomically)
 *   lock.json                while a process trains the run: pid, host, heartbeat (run-lock.ts)
 *   model/                   the query encoder's backbone (TF.js layers model.json + weights.bin)
 *   test-embeddings.f32      final test features, n×dim float32 little-endian
 *   test-embeddings.json     n, dim, test-split image indices, fine and coarse labels
 *   report/                  `pnpm report`: report.html, tsne-coarse.png, tsne-fine.png, retrieval.png
 *
 * The trainer, `pnpm eval`, `pnpm report` and tests find these files only through this module.
 */
import { existsSync, mkdirSync, readFileSync, renameSync, writeFileSync } from 'node:fs';
import { dirname, join } from 'node:path';

/** Why a folder could not be made, in words (not `ENOTDIR … mkdir`). */
export function mkdirReason(err: unknown): string {
  const { code, message } = err as NodeJS.ErrnoException;
  return code === 'ENOTDIR' || code === 'EEXIST'
    ? 'a file is in the way of one of its folders'
    : code === 'EACCES' || code === 'EPERM'
      ? 'permission denied'
      : code === 'EROFS'
        ? 'the file system is read-only'
        : message;
}

/** Creates an output folder given by `flag`, or says which folder could not be made and why. */
export function makeOutputFolder(dir: string, flag: string): void {
  try {
    mkdirSync(dir, { recursive: true });
  } catch (err) {
    throw new Error(
      `Cannot create the ${flag} folder ${dir} (${mkdirReason(err)}); pass ${flag} naming a folder you can write to.`,
    );
  }
}

/** A run's folder, beside the runs database: `<runs-db dir>/<run id>/`. */
export function runDir(runsDb: string, runId: number): string {
  return join(dirname(runsDb), String(runId));
}

export interface RunFolder {
  dir: string;
  checkpoint: string;
  /** Present while a process trains the run (run-lock.ts). */
  lock: string;
  /** Folder of the exported backbone (model.json + weights.bin). */
  model: string;
  testEmbeddings: string;
  testEmbeddingsMeta: string;
  /** Default folder of `pnpm report`'s files. */
  report: string;
}

/** Every path of a run's folder. */
export function runFolder(runsDb: string, runId: number): RunFolder {
  return runFolderAt(runDir(runsDb, runId));
}

/** Every path of a run folder at `dir`. */
export function runFolderAt(dir: string): RunFolder {
  return {
    dir,
    checkpoint: join(dir, 'checkpoint.safetensors'),
    lock: join(dir, 'lock.json'),
    model: join(dir, 'model'),
    testEmbeddings: join(dir, 'test-embeddings.f32'),
    testEmbeddingsMeta: join(dir, 'test-embeddings.json'),
    report: join(dir, 'report'),
  };
}

/** The run's latest checkpoint. */
export function checkpointPath(runsDb: string, runId: number): string {
  return runFolder(runsDb, runId).checkpoint;
}

/** The files `pnpm report` writes into its output folder. */
export function reportFiles(outDir: string): {
  html: string;
  tsneCoarse: string;
  tsneFine: string;
  retrieval: string;
} {
  return {
    html: join(outDir, 'report.html'),
    tsneCoarse: join(outDir, 'tsne-coarse.png'),
    tsneFine: join(outDir, 'tsne-fine.png'),
    retrieval: join(outDir, 'retrieval.png'),
  };
}

export interface TestEmbeddings {
  n: number;
  dim: number;
  /** Test-split image indices of the rows. */
  indices: number[];
  fineLabels: number[];
  coarseLabels: number[];
  /** n×dim, row-major. */
  features: Float32Array;
}

/**
 * Final backbone features of the evaluated test images, for reports (t-SNE, retrieval grids):
 * `test-embeddings.f32` (n×dim float32, little-endian) and `test-embeddings.json` (n, dim, the
 * test-split image indices, fine and coarse labels). Written to temporary files and renamed.
 */
export function saveTestEmbeddings(
  dir: string,
  features: Float32Array,
  dim: number,
  indices: Int32Array,
  fine: Int32Array,
  coarse: Int32Array,
): void {
  mkdirSync(dir, { recursive: true });
  const { testEmbeddings: bin, testEmbeddingsMeta: meta } = runFolderAt(dir);
  writeFileSync(
    `${bin}.tmp`,
    new Uint8Array(features.buffer, features.byteOffset, features.byteLength),
  );
  writeFileSync(
    `${meta}.tmp`,
    JSON.stringify({
      n: indices.length,
      dim,
      indices: Array.from(indices),
      fineLabels: Array.from(fine),
      coarseLabels: Array.from(coarse),
    }),
  );
  renameSync(`${bin}.tmp`, bin);
  renameSync(`${meta}.tmp`, meta);
}

/** Reads a run folder's test embeddings as saveTestEmbeddings writes them, or undefined. */
export function loadTestEmbeddings(dir: string): TestEmbeddings | undefined {
  const { testEmbeddings: bin, testEmbeddingsMeta: meta } = runFolderAt(dir);
  if (!existsSync(meta) || !existsSync(bin)) return undefined;
  const m = JSON.parse(readFileSync(meta, 'utf8')) as Omit<TestEmbeddings, 'features'>;
  const buf = readFileSync(bin);
  const features = new Float32Array(
    buf.buffer.slice(buf.byteOffset, buf.byteOffset + buf.byteLength),
  );
  if (features.length !== m.n * m.dim)
    throw new Error(
      `${bin} holds ${features.length} floats but ${meta} says ${m.n}×${m.dim}; the run's files are inconsistent — re-run the training.`,
    );
  return { ...m, features };
}
