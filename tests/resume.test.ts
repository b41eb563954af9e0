import { describe, expect, it, beforeAll } from 'vitest';
import { spawn, spawnSync } from 'node:child_process';
import { mkdtempSync, existsSync, readdirSync, readFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import Database from 'better-sqlite3';
import { loadNative, loadNativeMemory } from '@maskcon/model';
import { checkpointPath, loadCheckpoint, readRunLock, runFolder } from '@maskcon/train';
import { buildTinyFashionIndex } from './fixtures.js';

const repo = resolve(import.meta.dirname, '..');
const work = mkdtempSync(join(tmpdir(), 'maskcon-resume-'));
let index = '';

const trainArgs = (runsDb: string, backend: 'wasm' | 'native' | 'native-memory' = 'wasm') => [
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

/** Where run 1 is (epoch being trained, steps of it done) while its trainer lives, or undefined. */
function runPosition(runsDb: string): { epoch: number; step: number } | undefined {
  return readRunLock(runFolder(runsDb, 1).lock);
}

/** Child processes of `pid` (over all its threads) with their command lines, from /proc. */
function children(pid: number): { pid: number; cmd: string }[] {
  const tasks = join('/proc', String(pid), 'task');
  return readdirSync(tasks)
    .flatMap((t) =>
      readFileSync(join(tasks, t, 'children'), 'utf8')
        .split(' ')
        .filter(Boolean),
    )
    .map((c) => ({
      pid: Number(c),
      cmd: readFileSync(join('/proc', c, 'cmdline'), 'utf8').replaceAll('\0', ' '),
    }));
}

async function gone(pid: number): Promise<boolean> {
  for (let i = 0; i < 100 && existsSync(join('/proc', String(pid))); i++)
    await new Promise((r) => setTimeout(r, 50));
  return !existsSync(join('/proc', String(pid)));
}

function runStatus(runsDb: string): string {
  const db = new Database(runsDb, { readonly: true });
  const { status } = db.prepare('SELECT status FROM runs WHERE id = 1').get() as { status: string };
  db.close();
  return status;
}

function expectSameState(refDb: string, otherDb: string): void {
  const a = loadCheckpoint(checkpointPath(refDb, 1));
  const b = loadCheckpoint(checkpointPath(otherDb, 1));
  expect(b.meta.epoch).toBe(a.meta.epoch);
  expect([...b.state.arrays.keys()]).toEqual([...a.state.arrays.keys()]);
  for (const [name, x] of a.state.arrays)
    expect(Array.from(b.state.arrays.get(name)!), name).toEqual(Array.from(x));
}

beforeAll(async () => {
  index = await buildTinyFashionIndex(work, 40, 6, 5);
});

describe('checkpoints and resume', () => {
  // Bit-identity holds within one backend; 'native' and 'native-memory' (oneDNN kernels) where
  // the addon is built.
  it.each(
    (['wasm', 'native', 'native-memory'] as const).filter(
      (b) => b === 'wasm' || (b === 'native' ? loadNative() : loadNativeMemory()).ok,
    ),
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

  it('Ctrl-C mid-epoch (2 data-parallel workers) checkpoints at the step boundary, marks the run interrupted, prints the resume command and exits 130 with nothing left running; the resumed run ends bit-identical to an uninterrupted one', async () => {
    const args = (db: string) => [
      '--import',
      'tsx',
      ...trainArgs(db),
      '--workers',
      '2',
      '--epochs',
      '1',
    ];
    const refDb = join(work, 'sigint-ref', 'runs.sqlite');
    const ref = spawnSync(process.execPath, args(refDb), { cwd: repo, encoding: 'utf8' });
    expect(ref.status, ref.stderr).toBe(0);

    const db = join(work, 'sigint', 'runs.sqlite');
    const child = spawn(process.execPath, args(db), {
      cwd: repo,
      stdio: ['ignore', 'ignore', 'pipe'],
    });
    let stderr = '';
    child.stderr.on('data', (d) => (stderr += d));
    const exited = new Promise<number | null>((r) => child.on('exit', (code) => r(code)));
    // 400 images in batches of 32: 12 steps per epoch; stop a few steps into epoch 1.
    const deadline = Date.now() + 180_000;
    let pos = runPosition(db);
    while (!(pos && pos.epoch === 1 && pos.step >= 2) && Date.now() < deadline) {
      await new Promise((r) => setTimeout(r, 20));
      pos = runPosition(db);
    }
    expect(pos, stderr).toMatchObject({ epoch: 1 });
    // The training workers are threads of the trainer; its only child process is tsx's esbuild
    // service (the sources are TypeScript). None may outlive it.
    const kids = children(child.pid!);
    for (const k of kids) expect(k.cmd).toMatch(/esbuild/);
    child.kill('SIGINT');
    expect(await exited, stderr).toBe(130);
    for (const pid of [child.pid!, ...kids.map((k) => k.pid)])
      expect(await gone(pid), `pid ${pid}`).toBe(true);

    const m = stderr.match(
      /Stopped on SIGINT in epoch 1 after step (\d+) of 12; checkpoint written to (\S+)\. Resume with: (.*)/,
    );
    expect(m, stderr).not.toBeNull();
    const step = Number(m![1]);
    expect(step).toBeGreaterThanOrEqual(pos!.step);
    expect(step).toBeLessThan(12);
    expect(m![2]).toBe(checkpointPath(db, 1));
    expect(m![3]).toBe(`pnpm train --resume 1 --runs-db ${db}`);
    const ck = loadCheckpoint(checkpointPath(db, 1));
    expect(ck.meta).toMatchObject({ epoch: 0, step, iteration: step });
    expect(runStatus(db)).toBe('interrupted');
    expect(existsSync(runFolder(db, 1).lock)).toBe(false);

    const resumed = spawnSync(
      process.execPath,
      ['--import', 'tsx', 'packages/train/src/cli.ts', '--resume', '1', '--runs-db', db],
      { cwd: repo, encoding: 'utf8' },
    );
    expect(resumed.status, resumed.stderr).toBe(0);
    expect(resumed.stderr).toMatch(`resuming run 1 in epoch 1 after step ${step}`);
    expectSameState(refDb, db);
    expect(runStatus(db)).toBe('finished');
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
