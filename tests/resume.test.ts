import { describe, expect, it, beforeAll } from 'vitest';
import { spawn, spawnSync } from 'node:child_process';
import { mkdtempSync, existsSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import Database from 'better-sqlite3';
import { loadNative } from '@maskcon/model';
import { checkpointPath, loadCheckpoint } from '@maskcon/train';
import { buildTinyFashionIndex } from './fixtures.js';

const repo = resolve(import.meta.dirname, '..');
const work = mkdtempSync(join(tmpdir(), 'maskcon-resume-'));
let index = '';

const trainArgs = (runsDb: string, backend: 'wasm' | 'native' = 'wasm') => [
  'packages/train/src/cli.ts',
  '--preset',
  'tiny',
  '--index',
  index,
  '--K',
  '64',
  '--epochs',
  '4',
  '--train-subset',
  '0',
  '--test-subset',
  '0',
  '--seed',
  '21',
  '--workers',
  '1',
  '--backend',
  backend,
  '--runs-db',
  runsDb,
];

/** Epoch of the run's latest checkpoint (written atomically, so always complete), or 0. */
function checkpointedEpoch(runsDb: string): number {
  const file = checkpointPath(runsDb, 1);
  return existsSync(file) ? loadCheckpoint(file).meta.epoch : 0;
}

beforeAll(async () => {
  index = await buildTinyFashionIndex(work, 40, 6, 5);
});

describe('checkpoints and resume', () => {
  // Bit-identity holds within one backend; 'native' (oneDNN kernels) where the addon is built.
  it.each(
    (['wasm', 'native'] as const).filter((b) => b === 'wasm' || loadNative().ok),
  )('a run killed with SIGKILL and resumed ends with the same weights as an uninterrupted run (%s)', async (backend) => {
    // Uninterrupted reference.
    const refDb = join(work, `ref-${backend}`, 'runs.sqlite');
    // One oneDNN thread per process: the test's own timing should not hang on OpenMP barriers
    // when the machine is busy.
    const env = { ...process.env, MASKCON_NATIVE_THREADS: '1' };
    const ref = spawnSync(process.execPath, ['--import', 'tsx', ...trainArgs(refDb, backend)], {
      cwd: repo,
      encoding: 'utf8',
      env,
    });
    expect(ref.status, ref.stderr).toBe(0);

    // Same run, killed once two epochs are checkpointed.
    const killedDb = join(work, `killed-${backend}`, 'runs.sqlite');
    const child = spawn(process.execPath, ['--import', 'tsx', ...trainArgs(killedDb, backend)], {
      cwd: repo,
      stdio: 'ignore',
      env,
    });
    const exited = new Promise<NodeJS.Signals | null>((r) =>
      child.on('exit', (_code, sig) => r(sig)),
    );
    const deadline = Date.now() + 120_000;
    while (checkpointedEpoch(killedDb) < 2 && Date.now() < deadline)
      await new Promise((r) => setTimeout(r, 50));
    child.kill('SIGKILL');
    expect(await exited).toBe('SIGKILL');
    const before = loadCheckpoint(checkpointPath(killedDb, 1)).meta.epoch;
    expect(before).toBeGreaterThanOrEqual(2);
    expect(before).toBeLessThan(4);

    const resumed = spawnSync(
      process.execPath,
      ['--import', 'tsx', 'packages/train/src/cli.ts', '--resume', '1', '--runs-db', killedDb],
      { cwd: repo, encoding: 'utf8', env },
    );
    expect(resumed.status, resumed.stderr).toBe(0);
    expect(resumed.stderr).toMatch(new RegExp(`resuming run 1 after epoch ${before}`));

    const a = loadCheckpoint(checkpointPath(refDb, 1));
    const b = loadCheckpoint(checkpointPath(killedDb, 1));
    expect(b.meta.epoch).toBe(4);
    expect([...b.state.arrays.keys()]).toEqual([...a.state.arrays.keys()]);
    for (const [name, x] of a.state.arrays)
      expect(Array.from(b.state.arrays.get(name)!), name).toEqual(Array.from(x));

    const db = new Database(killedDb, { readonly: true });
    expect(
      (db.prepare('SELECT status FROM runs WHERE id = 1').get() as { status: string }).status,
    ).toBe('finished');
    expect((db.prepare('SELECT COUNT(*) AS n FROM epochs').get() as { n: number }).n).toBe(4);
    db.close();
  }, 600_000);

  it('refuses to resume a finished run or an unknown one', () => {
    const refDb = join(work, 'ref-wasm', 'runs.sqlite');
    const done = spawnSync(
      process.execPath,
      ['--import', 'tsx', 'packages/train/src/cli.ts', '--resume', '1', '--runs-db', refDb],
      { cwd: repo, encoding: 'utf8' },
    );
    expect(done.status).toBe(1);
    expect(done.stderr).toMatch(/Run 1 already finished; nothing to resume/);
    const unknown = spawnSync(
      process.execPath,
      ['--import', 'tsx', 'packages/train/src/cli.ts', '--resume', '9', '--runs-db', refDb],
      { cwd: repo, encoding: 'utf8' },
    );
    expect(unknown.status).toBe(1);
    expect(unknown.stderr).toMatch(/No run 9 in/);
  });

  it('stops a diverging run with a clear message and keeps the last good checkpoint', () => {
    const db = join(work, 'nan', 'runs.sqlite');
    const r = spawnSync(
      process.execPath,
      ['--import', 'tsx', ...trainArgs(db), '--lr', '1e30', '--warmup-epochs', '0'],
      { cwd: repo, encoding: 'utf8' },
    );
    expect(r.status).toBe(1);
    expect(r.stderr).toMatch(/loss became NaN or infinite in epoch 1/);
    const d = new Database(db, { readonly: true });
    expect((d.prepare('SELECT status FROM runs').get() as { status: string }).status).toBe(
      'diverged',
    );
    d.close();
    expect(existsSync(checkpointPath(db, 1))).toBe(false);
  });
});
