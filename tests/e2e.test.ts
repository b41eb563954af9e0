import { describe, expect, it, beforeAll } from 'vitest';
import { spawnSync } from 'node:child_process';
import { mkdtempSync, existsSync, readdirSync, readFileSync } from 'node:fs';
import * as tf from '@tensorflow/tfjs';
import { Rng, augmentBatch, makePipeline } from '@maskcon/augment';
import { loadBackbone } from '@maskcon/model';
import { recallAtK } from '@maskcon/eval';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import Database from 'better-sqlite3';
import { buildDataset, openIndex } from '@maskcon/datasets';
import { parseTrainArgs, train } from '@maskcon/train';
import { writeFashionMnistLike } from './fixtures.js';

const repo = resolve(import.meta.dirname, '..');
const work = mkdtempSync(join(tmpdir(), 'maskcon-e2e-'));
const raw = join(work, 'raw');
const data = join(work, 'data');

function cli(args: string[]) {
  return spawnSync(process.execPath, ['--import', 'tsx', ...args], {
    cwd: repo,
    encoding: 'utf8',
    timeout: 300_000,
  });
}

beforeAll(() => {
  spawnSync('mkdir', ['-p', raw]);
  writeFashionMnistLike(raw, 40, 12);
});

describe('end to end: IDX files → SQLite index → MaskCon training → Recall@K', () => {
  it('builds the index and trains from the command line, recording the run', async () => {
    const build = cli([
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
    const run = cli([
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
    expect(run.stderr).toMatch(/using (native|wasm)/); // native where the oneDNN addon was built
    expect(run.stderr).toMatch(/img\/s ETA/);

    const db = new Database(runsDb, { readonly: true });
    const runs = db.prepare('SELECT * FROM runs').all() as {
      id: number;
      status: string;
      backend: string;
      images_per_s: number;
    }[];
    expect(runs).toHaveLength(1);
    expect(runs[0].status).toBe('finished');
    expect(runs[0].backend).toBe('wasm');
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
    const { model, meta } = await loadBackbone(join(work, '1', 'model'));
    const test = openIndex(index, 'test');
    const pipe = makePipeline('test', { size: meta.inputShape[0], mean: meta.mean, std: meta.std });
    const batch = augmentBatch(
      test.images(Int32Array.from({ length: test.size }, (_, i) => i)),
      pipe,
      new Rng(0),
    );
    const out = model.predict(tf.tensor4d(batch, [test.size, ...meta.inputShape])) as tf.Tensor2D;
    const saved = new Float32Array(
      readFileSync(join(work, '1', 'test-embeddings.f32')).buffer.slice(0),
    );
    const feats = out.dataSync() as Float32Array;
    expect(feats.length).toBe(saved.length);
    let err = 0;
    for (let i = 0; i < feats.length; i++) err = Math.max(err, Math.abs(feats[i] - saved[i]));
    expect(err).toBeLessThan(1e-3);
    const r = recallAtK(feats, out.shape[1], test.fineLabels(), [1, 2, 5, 10]);
    expect([1, 2, 5, 10].map((k) => +(100 * r[k]).toFixed(2))).toEqual(values);
    test.close();

    // `pnpm eval RUN` does the same from the command line and records it.
    const ev = cli([
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

  it('rejects bad hyperparameters before any work, with a non-zero exit', () => {
    const runsDb = join(work, 'bad-runs.sqlite');
    const bad = cli([
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
    const notMultiple = cli([
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
        '64',
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
    // The queue was filled from the data before the first step: K real keys, labels all valid.
    const ds = openIndex(path, 'train');
    expect(ds.size).toBe(400);
    ds.close();
  });

  it('writes no index when the input is corrupt', () => {
    const empty = join(work, 'empty');
    spawnSync('mkdir', ['-p', empty]);
    const out = join(work, 'data-bad');
    const build = cli([
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
