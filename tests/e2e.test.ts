import { describe, expect, it, beforeAll } from 'vitest';
import { execFile, spawnSync } from 'node:child_process';
import { mkdtempSync, existsSync, readdirSync, readFileSync } from 'node:fs';
import * as tf from '@tensorflow/tfjs';
import { Rng, augmentBatch, epochPermutation, makePipeline } from '@maskcon/augment';
import { loadBackbone } from '@maskcon/model';
import { recallAtK } from '@maskcon/eval';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import Database from 'better-sqlite3';
import { buildDataset, openIndex } from '@maskcon/datasets';
import { loadCheckpoint, parseTrainArgs, runFolder, train } from '@maskcon/train';
import { writeFashionMnistLike } from './fixtures.js';

const repo = resolve(import.meta.dirname, '..');
const work = mkdtempSync(join(tmpdir(), 'maskcon-e2e-'));
const raw = join(work, 'raw');
const data = join(work, 'data');

/**
 * Runs a CLI in a child process. Asynchronously: a training run blocks for a minute or more, and
 * a test worker blocked that long misses vitest's RPC deadline.
 */
function cli(args: string[]): Promise<{ status: number | null; stdout: string; stderr: string }> {
  return new Promise((done, fail) => {
    execFile(
      process.execPath,
      ['--import', 'tsx', ...args],
      { cwd: repo, encoding: 'utf8', timeout: 300_000, maxBuffer: 64 * 2 ** 20 },
      (err, stdout, stderr) => {
        if (err && typeof err.code !== 'number') fail(err);
        else done({ status: err ? (err.code as number) : 0, stdout, stderr });
      },
    );
  });
}

beforeAll(() => {
  spawnSync('mkdir', ['-p', raw]);
  writeFashionMnistLike(raw, 40, 12);
});

describe('end to end: IDX files → SQLite index → MaskCon training → Recall@K', () => {
  it('builds the index and trains from the command line, recording the run', async () => {
    const build = await cli([
      'packages/datasets/src/cli.ts',
      'build',
      'fashion_mnist',
      '--root',
      raw,
      '--out',
      data,
    ]);
    expect(build.status, build.stderr).toBe(0);
    const index = join(data, 'fashion_mnist.sqlite');
    expect(existsSync(index)).toBe(true);

    const runsDb = join(work, 'runs.sqlite');
    const run = await cli([
      'packages/train/src/cli.ts',
      '--dataset',
      'fashion_mnist',
      '--index',
      index,
      '--preset',
      'tiny',
      '--K',
      '128',
      '--epochs',
      '2',
      '--train-subset',
      '0',
      '--test-subset',
      '0',
      '--runs-db',
      runsDb,
      '--seed',
      '3',
    ]);
    expect(run.status, run.stderr).toBe(0);
    // One line names the backend (native where the oneDNN addon was built); no fallback noise.
    const used = /^backend: (native|wasm) \([^\n]+\)(; GPU: [^\n]+)?$/m.exec(run.stderr)?.[1];
    expect(used).toBeDefined();
    expect(run.stderr).not.toMatch(/falling back|\[backend\]/);
    // Progress (items/s, ETA) for the queue fill, each epoch, the test embedding and Recall@K.
    for (const stage of ['filling the queue', 'epoch 2/2', 'embedding test images', 'Recall@K'])
      expect(run.stderr).toMatch(
        new RegExp(`^${stage}[^\\[\\n]* \\[.*\\] \\d+/\\d+ [\\d.]+ \\w+/s ETA`, 'm'),
      );
    expect(run.stderr).toMatch(/^filling the queue \[.*\] 128\/128 /m);
    // The summary names the test set Recall@K was measured on.
    const testSize = openIndex(index, 'test').size;
    expect(run.stdout).toContain(`fine-label Recall@K on all ${testSize} test images`);

    const db = new Database(runsDb, { readonly: true });
    const runs = db.prepare('SELECT * FROM runs').all() as {
      id: number;
      status: string;
      backend: string;
      images_per_s: number;
    }[];
    expect(runs).toHaveLength(1);
    expect(runs[0].status).toBe('finished');
    expect(runs[0].backend).toBe(used);
    expect(runs[0].images_per_s).toBeGreaterThan(0);
    const epochs = db.prepare('SELECT * FROM epochs ORDER BY epoch').all() as {
      epoch: number;
      loss: number;
      lr: number;
    }[];
    expect(epochs.map((e) => e.epoch)).toEqual([1, 2]);
    for (const e of epochs) expect(Number.isFinite(e.loss) && e.loss > 0).toBe(true);
    const recalls = db.prepare('SELECT k, recall FROM recalls ORDER BY k').all() as {
      k: number;
      recall: number;
    }[];
    expect(recalls.map((r) => r.k)).toEqual([1, 2, 5, 10]);
    // Recall@K is non-decreasing in K, and the printed table shows the stored values.
    for (let i = 1; i < recalls.length; i++)
      expect(recalls[i].recall).toBeGreaterThanOrEqual(recalls[i - 1].recall);
    const printed = run.stdout.trim().split('\n');
    const header = printed.findIndex((l) => l.includes('R@1'));
    const values = printed[header + 1].trim().split(/\s+/).map(Number);
    expect(values).toEqual(recalls.map((r) => +(100 * r.recall).toFixed(2)));
    db.close();

    // The exported TensorFlow.js backbone, loaded without the training code, reproduces the
    // run's test embeddings and therefore its Recall@K.
    const folder = runFolder(runsDb, 1);
    const { model, meta } = await loadBackbone(folder.model);
    const test = openIndex(index, 'test');
    const pipe = makePipeline('test', { size: meta.inputShape[0], mean: meta.mean, std: meta.std });
    const batch = augmentBatch(
      test.images(Int32Array.from({ length: test.size }, (_, i) => i)),
      pipe,
      new Rng(0),
    );
    const out = model.predict(tf.tensor4d(batch, [test.size, ...meta.inputShape])) as tf.Tensor2D;
    const saved = new Float32Array(readFileSync(folder.testEmbeddings).buffer.slice(0));
    const feats = out.dataSync() as Float32Array;
    expect(feats.length).toBe(saved.length);
    let err = 0;
    for (let i = 0; i < feats.length; i++) err = Math.max(err, Math.abs(feats[i] - saved[i]));
    expect(err).toBeLessThan(1e-3);
    const r = recallAtK(feats, out.shape[1], test.fineLabels(), [1, 2, 5, 10]);
    expect([1, 2, 5, 10].map((k) => +(100 * r[k]).toFixed(2))).toEqual(values);
    test.close();

    // `pnpm eval RUN` does the same from the command line and records it.
    const ev = await cli([
      'packages/train/src/eval-cli.ts',
      '1',
      '--runs-db',
      runsDb,
      '--ks',
      '1,2,5,10',
      '--backend',
      'wasm',
    ]);
    expect(ev.status, ev.stderr).toBe(0);
    const row = ev.stdout.trim().split('\n').at(-1)!.trim().split(/\s+/).slice(1).map(Number);
    expect(row).toEqual(values);
    const db2 = new Database(runsDb, { readonly: true });
    const evals = db2.prepare('SELECT run_id, images, recalls FROM evaluations').all() as {
      run_id: number;
      images: number;
      recalls: string;
    }[];
    expect(evals).toHaveLength(1);
    expect(evals[0].run_id).toBe(1);
    expect(evals[0].images).toBe(120);
    db2.close();
  });

  it('rejects bad hyperparameters before any work, with a non-zero exit', async () => {
    const runsDb = join(work, 'bad-runs.sqlite');
    const bad = await cli([
      'packages/train/src/cli.ts',
      '--dataset',
      'fashion_mnist',
      '--w',
      '1.5',
      '--runs-db',
      runsDb,
    ]);
    expect(bad.status).toBe(1);
    expect(bad.stderr).toMatch(/--w must be in \[0, 1\], got 1.5/);
    expect(existsSync(runsDb)).toBe(false);
    const notMultiple = await cli([
      'packages/train/src/cli.ts',
      '--K',
      '100',
      '--batch-size',
      '32',
      '--runs-db',
      runsDb,
    ]);
    expect(notMultiple.status).toBe(1);
    expect(notMultiple.stderr).toMatch(/--K 100 must be a multiple of --batch-size 32/);
  });

  it('gives identical results for the same seed, different ones for another seed', async () => {
    const { path } = await buildDataset('fashion_mnist', {
      root: raw,
      outDir: join(work, 'data2'),
    });
    const args = (seed: number) =>
      parseTrainArgs([
        '--preset',
        'tiny',
        '--index',
        path,
        '--K',
        '160',
        '--train-subset',
        '0',
        '--runs-db',
        join(work, 'seed-runs.sqlite'),
        '--seed',
        String(seed),
        '--backend',
        'wasm',
      ]);
    const quiet = { log: () => {} };
    const a = await train(args(5), quiet);
    const b = await train(args(5), quiet);
    const c = await train(args(6), quiet);
    expect(a.epochs.map((e) => e.loss)).toEqual(b.epochs.map((e) => e.loss));
    expect(a.recall).toEqual(b.recall);
    expect(c.epochs[0].loss).not.toEqual(a.epochs[0].loss);
    // The queue after the run, from run a's final checkpoint. It was filled with K keys before
    // the first step (K / B batches of epoch 0, pointer back at 0); each of the S steps then wrote
    // its B keys at the pointer and advanced it by B (mod K). So the pointer is S·B mod K, and
    // slot p holds the coarse label of the image the last step writing p took at that position,
    // in the order epochPermutation(seed, epoch) gives the training images.
    const ds = openIndex(path, 'train');
    expect(ds.size).toBe(400);
    const coarse = ds.coarseLabels();
    ds.close();
    const cfg = args(5);
    const { state, meta } = loadCheckpoint(runFolder(cfg.runsDb, a.runId).checkpoint);
    const K = 160;
    const B = cfg.batchSize; // 32
    const steps = Math.floor(400 / B); // 12 steps in the one epoch (the last partial batch dropped)
    expect([meta.epoch, meta.iteration]).toEqual([1, steps]);
    expect(state.queueFilled).toBe(K);
    expect(state.queuePtr).toBe((steps * B) % K); // 384 mod 160 = 64
    const order = epochPermutation(5, 1, 400);
    const expected = new Int32Array(K).fill(-1);
    for (let step = 0; step < steps; step++)
      for (let j = 0; j < B; j++) expected[(step * B + j) % K] = coarse[order[step * B + j]];
    const labels = state.arrays.get('queue.labels');
    expect(labels).toBeInstanceOf(Int32Array);
    expect(Array.from(labels ?? [])).toEqual(Array.from(expected));
    expect(new Set(expected).size).toBe(3); // all three coarse classes are in the queue
    // The keys are the key encoder's L2-normalised projections: K rows of unit norm.
    const keys = state.arrays.get('queue.keys') as Float32Array;
    const dim = keys.length / K;
    expect(Number.isInteger(dim) && dim > 1).toBe(true);
    for (let r = 0; r < K; r++) {
      let sq = 0;
      for (let c = 0; c < dim; c++) sq += keys[r * dim + c] ** 2;
      expect(Math.abs(Math.sqrt(sq) - 1)).toBeLessThan(1e-4);
    }
  });

  it('writes no index when the input is corrupt', async () => {
    const empty = join(work, 'empty');
    spawnSync('mkdir', ['-p', empty]);
    const out = join(work, 'data-bad');
    const build = await cli([
      'packages/datasets/src/cli.ts',
      'build',
      'fashion_mnist',
      '--root',
      empty,
      '--out',
      out,
    ]);
    expect(build.status).toBe(1);
    expect(build.stderr).toMatch(/train-images-idx3-ubyte\.gz/);
    expect(existsSync(out) ? readdirSync(out) : []).toEqual([]);
  });
});
