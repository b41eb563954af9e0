import { describe, expect, it, beforeAll } from 'vitest';
import { execFile } from 'node:child_process';
import { createHash } from 'node:crypto';
import {
  copyFileSync,
  cpSync,
  existsSync,
  mkdirSync,
  mkdtempSync,
  readFileSync,
  truncateSync,
  writeFileSync,
} from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import Database from 'better-sqlite3';
import { createNetwork, exportBackbone, initBackend } from '@maskcon/model';
import { buildTinyFashionIndex } from './fixtures.js';

const repo = resolve(import.meta.dirname, '..');
const work = mkdtempSync(join(tmpdir(), 'maskcon-errors-'));
let index = '';

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

const sha256 = (file: string) => createHash('sha256').update(readFileSync(file)).digest('hex');

beforeAll(async () => {
  index = await buildTinyFashionIndex(work, 4, 2, 7);
});

describe('errors name the file or flag, exit non-zero and leave nothing behind', () => {
  it('pnpm train: an unopenable --runs-db is named before any model is built', async () => {
    const blocker = join(work, 'a-file');
    writeFileSync(blocker, 'not a folder');
    const runsDb = join(blocker, 'runs', 'runs.sqlite');
    const r = await cli([
      'packages/train/src/cli.ts',
      '--preset',
      'tiny',
      '--index',
      index,
      '--runs-db',
      runsDb,
    ]);
    expect(r.status).toBe(1);
    expect(r.stderr).toContain(
      `error: Cannot open the runs database ${runsDb} (${blocker} is a file, not a folder); pass --runs-db a file in a folder you can write to.`,
    );
    expect(r.stderr).not.toMatch(/^(backend|model):/m); // no backend chosen, no model built
    expect(readFileSync(blocker, 'utf8')).toBe('not a folder');
  }, 300_000);

  it('pnpm runs: a damaged file or another SQLite database as --runs-db is named and left untouched', async () => {
    const garbage = join(work, 'garbage.sqlite');
    writeFileSync(garbage, Buffer.alloc(8192, 0x5a));
    const before = sha256(garbage);
    const r = await cli(['packages/train/src/runs-cli.ts', '--runs-db', garbage]);
    expect(r.status).toBe(1);
    expect(r.stdout).toBe('');
    expect(r.stderr).toBe(
      `error: The runs database ${garbage} is damaged or not a SQLite file (file is not a database); pass --runs-db the runs.sqlite pnpm train wrote, or move this file away to start a new one.\n`,
    );
    expect(sha256(garbage)).toBe(before);

    // A dataset index given by mistake: no runs tables are added to it.
    const other = join(work, 'index-copy.sqlite');
    copyFileSync(index, other);
    const indexHash = sha256(other);
    const r2 = await cli(['packages/train/src/runs-cli.ts', '--runs-db', other]);
    expect(r2.status).toBe(1);
    expect(r2.stderr).toMatch(
      new RegExp(
        `^error: ${other.replace(/[.*+?^${}()|[\]\\]/g, '\\$&')} is a SQLite database but not a runs database \\(its tables: `,
      ),
    );
    expect(sha256(other)).toBe(indexHash);
  }, 300_000);

  it('pnpm eval: a broken model.json or a truncated weights.bin is named, and no evaluation is stored', async () => {
    await initBackend('cpu', () => {});
    const good = join(work, 'model-good');
    const p = createNetwork(
      {
        arch: 'resnet-mini',
        width: 4,
        baseWidth: 8,
        inChannels: 1,
        stem: 'small',
        projHidden: 8,
        projDim: 4,
      },
      1,
    );
    await exportBackbone(p, good, {
      arch: 'resnet-mini',
      inputShape: [28, 28, 1],
      mean: [0.5],
      std: [0.25],
    });
    p.dispose();
    const runsDb = join(work, 'eval-runs', 'runs.sqlite');
    const evaluate = (dir: string) =>
      cli([
        'packages/train/src/eval-cli.ts',
        dir,
        '--index',
        index,
        '--runs-db',
        runsDb,
        '--backend',
        'wasm',
      ]);

    const ok = await evaluate(good); // the intact export evaluates (and is stored)
    expect(ok.status, ok.stderr).toBe(0);

    const badJson = join(work, 'model-bad-json');
    cpSync(good, badJson, { recursive: true });
    const json = readFileSync(join(badJson, 'model.json'), 'utf8');
    writeFileSync(join(badJson, 'model.json'), json.slice(0, json.length >> 1));
    const r1 = await evaluate(badJson);
    expect(r1.status).toBe(1);
    expect(r1.stderr).toMatch(`error: ${join(badJson, 'model.json')} is not valid JSON (`);
    expect(r1.stderr).toContain(`the exported model in ${badJson} is damaged — export it again`);

    const truncated = join(work, 'model-truncated');
    cpSync(good, truncated, { recursive: true });
    const weights = join(truncated, 'weights.bin');
    const size = readFileSync(weights).byteLength;
    truncateSync(weights, size - 100);
    const r2 = await evaluate(truncated);
    expect(r2.status).toBe(1);
    expect(r2.stderr).toContain(
      `error: ${weights} holds ${(size - 100).toLocaleString('en')} bytes but ${join(truncated, 'model.json')} lists ${size.toLocaleString('en')} bytes of weights (truncated, or from another export)`,
    );

    const db = new Database(runsDb, { readonly: true });
    const models = (db.prepare('SELECT model FROM evaluations').all() as { model: string }[]).map(
      (e) => e.model,
    );
    db.close();
    expect(models).toEqual([good]);
  }, 300_000);

  it('pnpm report: an --out folder that cannot be created is named with the reason', async () => {
    // A runs DB with one run (written as the trainer writes it) is enough to reach the output folder.
    const runsDb = join(work, 'report-runs', 'runs.sqlite');
    mkdirSync(join(work, 'report-runs'));
    const { RunsDb } = await import('@maskcon/train');
    const db = new RunsDb(runsDb);
    db.startRun({
      dataset: 'fashion_mnist',
      method: 'maskcon',
      config: { w: 1 },
      backend: 'wasm',
      gitRev: null,
    });
    db.close();
    const blocker = join(work, 'report-blocker');
    writeFileSync(blocker, '');
    const out = join(blocker, 'report');
    const r = await cli([
      'packages/train/src/report/cli.ts',
      '1',
      '--runs-db',
      runsDb,
      '--out',
      out,
    ]);
    expect(r.status).toBe(1);
    expect(r.stderr).toBe(
      `error: Cannot create the --out folder ${out} (a file is in the way of one of its folders); pass --out naming a folder you can write to.\n`,
    );
    expect(existsSync(out)).toBe(false);
  }, 300_000);
});
