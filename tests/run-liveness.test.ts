import { describe, expect, it, beforeAll } from 'vitest';
import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { existsSync, mkdtempSync } from 'node:fs';
import { hostname, tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import Database from 'better-sqlite3';
import { checkpointPath, readRunLock, runFolder } from '@maskcon/train';
import { buildTinyFashionIndex } from './fixtures.js';

const repo = resolve(import.meta.dirname, '..');
const work = mkdtempSync(join(tmpdir(), 'maskcon-liveness-'));
let index = '';

const trainArgs = (runsDb: string, epochs: number) => [
  '--import',
  'tsx',
  'packages/train/src/cli.ts',
  '--preset',
  'tiny',
  '--index',
  index,
  '--K',
  '64',
  '--epochs',
  String(epochs),
  '--train-subset',
  '0',
  '--test-subset',
  '0',
  '--workers',
  '1',
  '--backend',
  'wasm',
  '--runs-db',
  runsDb,
];

const cli = (args: string[]) =>
  spawnSync(process.execPath, ['--import', 'tsx', ...args], { cwd: repo, encoding: 'utf8' });

function startTraining(
  runsDb: string,
  epochs: number,
): { child: ChildProcess; exited: Promise<number | null>; stderr: () => string } {
  const child = spawn(process.execPath, trainArgs(runsDb, epochs), {
    cwd: repo,
    stdio: ['ignore', 'ignore', 'pipe'],
  });
  let stderr = '';
  child.stderr!.on('data', (d) => (stderr += d));
  const exited = new Promise<number | null>((r) => child.on('exit', (code) => r(code)));
  return { child, exited, stderr: () => stderr };
}

/** Waits until run 1's lock says the trainer got at least this far. */
async function waitForPosition(
  runsDb: string,
  ok: (p: { epoch: number; step: number }) => boolean,
) {
  const deadline = Date.now() + 180_000;
  for (;;) {
    const lock = readRunLock(runFolder(runsDb, 1).lock);
    if (lock && ok(lock)) return lock;
    if (Date.now() > deadline) throw new Error(`run 1 of ${runsDb} never got there`);
    await new Promise((r) => setTimeout(r, 20));
  }
}

function dbStatus(runsDb: string): string {
  const db = new Database(runsDb, { readonly: true });
  const { status } = db.prepare('SELECT status FROM runs WHERE id = 1').get() as { status: string };
  db.close();
  return status;
}

beforeAll(async () => {
  index = await buildTinyFashionIndex(work, 40, 6, 5);
});

describe('run liveness', () => {
  it('a run killed with SIGKILL before its first checkpoint is shown interrupted; --resume takes its stale lock over and trains it from the start', async () => {
    const db = join(work, 'killed', 'runs.sqlite');
    const run = startTraining(db, 1);
    // Killed while the queue fills: nothing checkpointed yet.
    const lock = await waitForPosition(db, (p) => p.epoch === 0);
    run.child.kill('SIGKILL');
    await run.exited;
    expect(existsSync(checkpointPath(db, 1))).toBe(false);
    expect(dbStatus(db)).toBe('running'); // what the database was left with

    const runs = cli(['packages/train/src/runs-cli.ts', '--runs-db', db]);
    expect(runs.status, runs.stderr).toBe(0);
    const row = runs.stdout.split('\n').find((l) => /^\s+1\s/.test(l));
    expect(row, runs.stdout).toMatch(/^\s+1\s+interrupted\s+fashion_mnist/);

    const resumed = cli(['packages/train/src/cli.ts', '--resume', '1', '--runs-db', db]);
    expect(resumed.status, resumed.stderr).toBe(0);
    expect(resumed.stderr).toContain(
      `run 1: its lock ${runFolder(db, 1).lock} is stale (process ${lock.pid} on ${hostname()} is gone); taking it over`,
    );
    expect(resumed.stderr).toContain(
      'run 1 stopped before its first checkpoint; training it again from the start',
    );
    expect(dbStatus(db)).toBe('finished');
    expect(existsSync(runFolder(db, 1).lock)).toBe(false);
  }, 600_000);

  it('--resume of a run another process is training is refused naming its pid and host, and that run goes on untouched', async () => {
    const db = join(work, 'live', 'runs.sqlite');
    const run = startTraining(db, 50);
    await waitForPosition(db, (p) => p.epoch >= 1 && p.step >= 1);

    const second = cli(['packages/train/src/cli.ts', '--resume', '1', '--runs-db', db]);
    expect(second.status).toBe(1);
    expect(second.stderr).toMatch(
      new RegExp(
        `error: Run 1 is being trained by process ${run.child.pid} on ${hostname()} \\(last heartbeat \\d+ s ago\\)`,
      ),
    );
    expect(second.stderr).not.toMatch(/resuming run/);

    // Still its run: same lock holder, still running, still stepping.
    const held = readRunLock(runFolder(db, 1).lock)!;
    expect(held.pid).toBe(run.child.pid);
    expect(dbStatus(db)).toBe('running');
    const runs = cli(['packages/train/src/runs-cli.ts', '--runs-db', db]);
    expect(runs.stdout).toMatch(/^\s+1\s+running\s+fashion_mnist/m);
    await waitForPosition(db, (p) => p.epoch > held.epoch || p.step > held.step);

    run.child.kill('SIGTERM');
    expect(await run.exited, run.stderr()).toBe(143);
    expect(run.stderr()).toMatch(/Stopped on SIGTERM in epoch \d+ after step \d+ of 12/);
    expect(dbStatus(db)).toBe('interrupted');
  }, 600_000);
});
