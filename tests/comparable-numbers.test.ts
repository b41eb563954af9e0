import { describe, expect, it, beforeAll } from 'vitest';
import { execFile } from 'node:child_process';
import { mkdirSync, mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join, resolve } from 'node:path';
import Database from 'better-sqlite3';
import { buildTinyFashionIndex } from './fixtures.js';

const repo = resolve(import.meta.dirname, '..');
const work = mkdtempSync(join(tmpdir(), 'maskcon-comparable-'));
let index = '';

/** A CLI in a child process (asynchronous, so vitest's worker stays responsive). */
function cli(args: string[]): Promise<{ status: number; stdout: string; stderr: string }> {
  return new Promise((done, fail) =>
    execFile(
      process.execPath,
      ['--import', 'tsx', ...args],
      { cwd: repo, encoding: 'utf8', timeout: 300_000 },
      (err, stdout, stderr) => {
        if (err && typeof err.code !== 'number') fail(err);
        else done({ status: err ? (err.code as number) : 0, stdout, stderr });
      },
    ),
  );
}

beforeAll(async () => {
  index = await buildTinyFashionIndex(work, 20, 6, 9); // 200 train, 60 test images
});

describe('comparable numbers: every Recall@K with its test set', () => {
  it('stores split, test-set size and --labels with each Recall@K; pnpm runs shows them; pnpm eval warns when its test set differs, naming both', async () => {
    const runsDb = join(work, 'runs', 'runs.sqlite');
    const run = await cli([
      'packages/train/src/cli.ts',
      '--preset',
      'tiny',
      '--index',
      index,
      '--K',
      '64',
      '--epochs',
      '1',
      '--train-subset',
      '0',
      '--test-subset',
      '20',
      '--labels',
      'coarse',
      '--workers',
      '1',
      '--backend',
      'wasm',
      '--runs-db',
      runsDb,
    ]);
    expect(run.status, run.stderr).toBe(0);
    const db = new Database(runsDb, { readonly: true });
    const rows = db
      .prepare('SELECT k, split, test_images, split_images, labels FROM recalls ORDER BY k')
      .all();
    db.close();
    expect(rows).toEqual(
      [1, 2, 5, 10].map((k) => ({
        k,
        split: 'test',
        test_images: 20,
        split_images: 60,
        labels: 'coarse',
      })),
    );

    const runs = await cli(['packages/train/src/runs-cli.ts', '--runs-db', runsDb]);
    expect(runs.status, runs.stderr).toBe(0);
    expect(runs.stdout.split('\n')[0]).toMatch(/R@10 {2}test set {9}labels$/);
    expect(runs.stdout).toMatch(/^\s+1\s+finished\s.*\s20\/60 test\s+coarse$/m);

    const ev = await cli([
      'packages/train/src/eval-cli.ts',
      '1',
      '--runs-db',
      runsDb,
      '--backend',
      'wasm',
    ]);
    expect(ev.status, ev.stderr).toBe(0);
    expect(ev.stderr).toContain(
      'warning: run 1 measured its Recall@K in training on 20 of the 60 test images, coarse labels; this evaluation uses all 60 test images, coarse labels — the two are not comparable.\n',
    );
    const db2 = new Database(runsDb, { readonly: true });
    expect(
      db2.prepare('SELECT run_id, split, images, split_images, labels FROM evaluations').all(),
    ).toEqual([{ run_id: 1, split: 'test', images: 60, split_images: 60, labels: 'coarse' }]);
    db2.close();
  }, 600_000);

  it('migrates a runs database of the previous layout: its Recall@K rows read as unknown', async () => {
    const runsDb = join(work, 'old', 'runs.sqlite');
    mkdirSync(dirname(runsDb), { recursive: true });
    // The tables as the previous version created them, with one finished run and its Recall@K.
    const old = new Database(runsDb);
    old.exec(`
      CREATE TABLE runs (id INTEGER PRIMARY KEY AUTOINCREMENT, started_at TEXT NOT NULL, finished_at TEXT,
        status TEXT NOT NULL, dataset TEXT NOT NULL, method TEXT NOT NULL, config TEXT NOT NULL,
        backend TEXT, git_rev TEXT, wall_time_s REAL, images_per_s REAL);
      CREATE TABLE epochs (run_id INTEGER NOT NULL REFERENCES runs(id), epoch INTEGER NOT NULL,
        loss REAL NOT NULL, lr REAL NOT NULL, images_per_s REAL NOT NULL, PRIMARY KEY (run_id, epoch));
      CREATE TABLE evaluations (id INTEGER PRIMARY KEY AUTOINCREMENT, run_id INTEGER REFERENCES runs(id),
        created_at TEXT NOT NULL, model TEXT NOT NULL, index_path TEXT NOT NULL, split TEXT NOT NULL,
        images INTEGER NOT NULL, recalls TEXT NOT NULL);
      CREATE TABLE recalls (run_id INTEGER NOT NULL REFERENCES runs(id), epoch INTEGER NOT NULL,
        k INTEGER NOT NULL, recall REAL NOT NULL, PRIMARY KEY (run_id, epoch, k));
      INSERT INTO runs VALUES (1, '2026-11-01T00:00:00Z', '2026-11-01T01:00:00Z', 'finished',
        'fashion_mnist', 'maskcon', '{"w":1,"t":0.1,"epochs":4}', 'wasm', NULL, 3600, 100);
      INSERT INTO recalls VALUES (1, 4, 1, 0.5), (1, 4, 10, 0.9);
    `);
    old.close();

    const runs = await cli(['packages/train/src/runs-cli.ts', '--runs-db', runsDb]);
    expect(runs.status, runs.stderr).toBe(0);
    expect(runs.stdout).toMatch(/^\s+1\s+finished\s.*\s50\.00\s.*\s90\.00 {2}unknown\s+unknown$/m);
    const db = new Database(runsDb, { readonly: true });
    const cols = (
      db.prepare(`SELECT name FROM pragma_table_info('recalls')`).all() as {
        name: string;
      }[]
    ).map((c) => c.name);
    expect(cols).toEqual([
      'run_id',
      'epoch',
      'k',
      'recall',
      'split',
      'test_images',
      'split_images',
      'labels',
    ]);
    expect(
      db.prepare('SELECT k, recall, split, test_images, labels FROM recalls ORDER BY k').all(),
    ).toEqual([
      { k: 1, recall: 0.5, split: null, test_images: null, labels: null },
      { k: 10, recall: 0.9, split: null, test_images: null, labels: null },
    ]);
    db.close();
  }, 300_000);
});
