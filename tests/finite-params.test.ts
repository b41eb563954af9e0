import { describe, expect, it, beforeAll } from 'vitest';
import { spawn, spawnSync } from 'node:child_process';
import { createHash } from 'node:crypto';
import { existsSync, mkdtempSync, readFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import Database from 'better-sqlite3';
import { readSafetensors, writeSafetensors, type SafetensorsInput } from '@maskcon/model';
import { checkpointPath, loadCheckpoint, runFolder } from '@maskcon/train';
import { buildTinyFashionIndex } from './fixtures.js';

const repo = resolve(import.meta.dirname, '..');
const work = mkdtempSync(join(tmpdir(), 'maskcon-finite-'));
const db = join(work, 'runs', 'runs.sqlite');
let index = '';

const sha256 = (file: string) => createHash('sha256').update(readFileSync(file)).digest('hex');
const trainCli = (args: string[]) =>
  spawnSync(process.execPath, ['--import', 'tsx', 'packages/train/src/cli.ts', ...args], {
    cwd: repo,
    encoding: 'utf8',
  });

function status(): string {
  const d = new Database(db, { readonly: true });
  const { status } = d.prepare('SELECT status FROM runs WHERE id = 1').get() as { status: string };
  d.close();
  return status;
}

beforeAll(async () => {
  index = await buildTinyFashionIndex(work, 4, 2, 3);
});

describe('finite parameters', () => {
  it('a run whose parameters go non-finite (a finite loss notwithstanding) stops as diverged, keeps its last good checkpoint and exports nothing', async () => {
    // One 32-image batch per epoch; warm-up from lr 0 over 2 steps: epoch 1 trains at lr 0 (a good
    // checkpoint), epoch 2 at 5e299, which is Inf in float32: the step leaves the weights
    // NaN/Inf while the loss it reports, computed before the update, is still finite.
    const child = spawn(
      process.execPath,
      [
        '--import',
        'tsx',
        'packages/train/src/cli.ts',
        '--preset',
        'tiny',
        '--index',
        index,
        '--train-subset',
        '32',
        '--batch-size',
        '32',
        '--K',
        '32',
        '--test-subset',
        '0',
        '--epochs',
        '3',
        '--lr',
        '1e300',
        '--warmup-epochs',
        '2',
        '--workers',
        '1',
        '--backend',
        'wasm',
        '--runs-db',
        db,
      ],
      { cwd: repo, stdio: ['ignore', 'ignore', 'pipe'] },
    );
    let stderr = '';
    child.stderr.on('data', (d) => (stderr += d));
    let exitCode: number | null | undefined;
    child.on('exit', (code) => (exitCode = code));
    // The epoch-1 checkpoint as first written (renamed into place whole), while the run goes on.
    const file = checkpointPath(db, 1);
    while (!existsSync(file) && exitCode === undefined) await new Promise((r) => setTimeout(r, 5));
    const firstWritten = sha256(file);
    while (exitCode === undefined) await new Promise((r) => setTimeout(r, 50));
    const r = { status: exitCode, stderr };
    expect(r.status, r.stderr).toBe(1);
    expect(r.stderr).toMatch(
      /error: The parameters became non-finite by epoch 2 \(tensor \S+ holds (NaN|-?Infinity) \(element \d+ of \d+\)\); training stopped, the last good checkpoint \(epoch 1\) is kept at \S+checkpoint\.safetensors, and no model is exported\./,
    );
    expect(r.stderr).not.toMatch(/loss became NaN/);
    expect(status()).toBe('diverged');
    expect(sha256(file)).toBe(firstWritten);
    const ck = loadCheckpoint(file); // loads: every tensor finite
    expect(ck.meta.epoch).toBe(1);
    const { model } = runFolder(db, 1);
    expect(existsSync(join(model, 'model.json'))).toBe(false);
    expect(existsSync(join(model, 'weights.bin'))).toBe(false);
    // The epochs table holds both trained epochs, with the finite epoch-2 loss that hid the NaNs.
    const d = new Database(db, { readonly: true });
    const losses = d.prepare('SELECT loss FROM epochs WHERE run_id = 1 ORDER BY epoch').all() as {
      loss: number;
    }[];
    d.close();
    expect(losses.length).toBe(2);
    for (const { loss } of losses) expect(Number.isFinite(loss)).toBe(true);
  }, 300_000);

  it('a checkpoint holding one NaN (in a BatchNorm running variance) is refused by --resume, naming the file and the tensor', () => {
    // The diverged run above left a good epoch-1 checkpoint; damage one value of it.
    const file = checkpointPath(db, 1);
    const { tensors, metadata } = readSafetensors(file);
    const name = [...tensors.keys()].find((n) => n.includes('running_var'))!;
    expect(name).toBeDefined();
    const out = new Map<string, SafetensorsInput>(tensors);
    const data = Float32Array.from(tensors.get(name)!.data as Float32Array);
    data[3] = Number.NaN;
    out.set(name, { ...tensors.get(name)!, data });
    writeSafetensors(file, out, metadata);
    const before = sha256(file);

    const r = trainCli(['--resume', '1', '--runs-db', db]);
    expect(r.status).toBe(1);
    expect(r.stderr).toContain(
      `error: ${file}: tensor ${name} holds NaN (element 3 of ${data.length}); this checkpoint cannot be resumed.`,
    );
    expect(r.stderr).not.toMatch(/resuming run/);
    expect(sha256(file)).toBe(before);
    expect(status()).toBe('diverged');
    expect(existsSync(runFolder(db, 1).lock)).toBe(false);
  }, 300_000);
});
