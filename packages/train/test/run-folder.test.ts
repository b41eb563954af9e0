import { existsSync, mkdtempSync, readdirSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import {
  checkpointPath,
  loadTestEmbeddings,
  reportFiles,
  RunsDb,
  runFolder,
  saveTestEmbeddings,
} from '../src/index.js';

describe('run folder', () => {
  it('puts every file of run <id> under <runs-db dir>/<id>/', () => {
    const f = runFolder('/data/runs/runs.sqlite', 12);
    expect(f).toEqual({
      dir: '/data/runs/12',
      checkpoint: '/data/runs/12/checkpoint.safetensors',
      lock: '/data/runs/12/lock.json',
      model: '/data/runs/12/model',
      testEmbeddings: '/data/runs/12/test-embeddings.f32',
      testEmbeddingsMeta: '/data/runs/12/test-embeddings.json',
      report: '/data/runs/12/report',
    });
    expect(checkpointPath('/data/runs/runs.sqlite', 12)).toBe(f.checkpoint);
    expect(reportFiles(f.report)).toEqual({
      html: '/data/runs/12/report/report.html',
      tsneCoarse: '/data/runs/12/report/tsne-coarse.png',
      tsneFine: '/data/runs/12/report/tsne-fine.png',
      retrieval: '/data/runs/12/report/retrieval.png',
    });
  });

  it('writes test embeddings atomically and reads back the same values', () => {
    const dir = join(mkdtempSync(join(tmpdir(), 'run-folder-')), '3');
    const features = Float32Array.from([0.5, -1, 2.25, 3, 1e-7, -0]);
    saveTestEmbeddings(
      dir,
      features,
      2,
      Int32Array.from([4, 0, 9]),
      Int32Array.from([7, 1, 2]),
      Int32Array.from([1, 0, 2]),
    );
    expect(readdirSync(dir).sort()).toEqual(['test-embeddings.f32', 'test-embeddings.json']);
    const e = loadTestEmbeddings(dir);
    expect(e).toBeDefined();
    expect([e?.n, e?.dim, e?.indices, e?.fineLabels, e?.coarseLabels]).toEqual([
      3,
      2,
      [4, 0, 9],
      [7, 1, 2],
      [1, 0, 2],
    ]);
    expect(Array.from(e?.features ?? [])).toEqual(Array.from(features));
    expect(loadTestEmbeddings(join(dir, 'nothing-here'))).toBeUndefined();
    writeFileSync(runFolder(join(dir, '..', 'runs.sqlite'), 3).testEmbeddings, new Uint8Array(8));
    expect(() => loadTestEmbeddings(dir)).toThrow(
      /holds 2 floats but .*test-embeddings\.json says 3×2; the run's files are inconsistent/,
    );
  });
});

describe('RunsDb for readers', () => {
  it('opens an existing database read-only and lists every Recall@K by epoch then K', () => {
    const path = join(mkdtempSync(join(tmpdir(), 'runs-db-')), 'runs.sqlite');
    expect(() => RunsDb.openReadonly(path)).toThrow(
      `Runs database ${path} does not exist; pass --runs-db with the file pnpm train wrote.`,
    );
    expect(existsSync(path)).toBe(false);
    const db = new RunsDb(path);
    const id = db.startRun({
      dataset: 'fashion_mnist',
      method: 'maskcon',
      config: { w: 1 },
      backend: 'wasm',
      gitRev: null,
    });
    db.logRecall(id, 2, [
      { k: 2, recall: 0.8 },
      { k: 1, recall: 0.7 },
    ]);
    db.logRecall(id, 1, [{ k: 1, recall: 0.5 }]);
    db.close();
    const ro = RunsDb.openReadonly(path);
    expect(ro.recalls(id)).toEqual([
      { epoch: 1, k: 1, recall: 0.5 },
      { epoch: 2, k: 1, recall: 0.7 },
      { epoch: 2, k: 2, recall: 0.8 },
    ]);
    expect(ro.finalRecalls(id)).toEqual([
      { k: 1, recall: 0.7 },
      { k: 2, recall: 0.8 },
    ]);
    expect(() => ro.logRecall(id, 3, [{ k: 1, recall: 0.9 }])).toThrow(/readonly/);
    ro.close();
  });
});
