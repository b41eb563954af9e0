import { execFile, spawn } from 'node:child_process';
import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { describe, expect, it } from 'vitest';
import { METHOD_NAMES, METHODS } from '@maskcon/model';
import { RunsDb } from '../src/runs-db.js';

const REPO = resolve(dirname(fileURLToPath(import.meta.url)), '../../..');
const CLIS = {
  train: 'packages/train/src/cli.ts',
  runs: 'packages/train/src/runs-cli.ts',
  sweep: 'packages/train/src/sweep-cli.ts',
  report: 'packages/train/src/report/cli.ts',
  eval: 'packages/train/src/eval-cli.ts',
  weights: 'packages/train/src/weights-cli.ts',
};

/** Runs a CLI in a child process (asynchronously: a blocked test worker times out vitest's RPC). */
function cli(
  name: keyof typeof CLIS,
  args: string[],
): Promise<{ status: number | null; stdout: string; stderr: string }> {
  return new Promise((done, fail) => {
    execFile(
      process.execPath,
      ['--import', 'tsx', CLIS[name], ...args],
      { cwd: REPO, encoding: 'utf8', env: { ...process.env, MASKCON_DEBUG: '', DEBUG: '' } },
      (err, stdout, stderr) => {
        if (err && typeof err.code !== 'number') fail(err);
        else done({ status: err ? (err.code as number) : 0, stdout, stderr });
      },
    );
  });
}

const STACK = /\n\s+at /;

describe('training CLIs (commander)', async () => {
  it('--help exits 0 on every command and lists its flags', async () => {
    for (const name of Object.keys(CLIS) as (keyof typeof CLIS)[]) {
      const r = await cli(name, ['--help']);
      expect(r.status, `${name} --help: ${r.stderr}`).toBe(0);
      expect(r.stdout).toMatch(new RegExp(`^Usage: pnpm ${name} `));
      expect(r.stderr).toBe('');
    }
  });

  it('pnpm train --help shows every config flag with its default, methods and presets', async () => {
    const help = (await cli('train', ['--help'])).stdout.replace(/\s+/g, ' ');
    for (const flag of [
      '--arch <name>',
      '--base-width <n>',
      '--stem <kind>',
      '--pretrained <file>',
      '--skip-mismatched-stem [0|1]',
      '--aug-q <kind>',
      '--aug-k <kind>',
      '--micro-batch <n>',
      '--loader-workers <n|auto>',
      '--resume <run>',
    ])
      expect(help).toContain(flag);
    expect(help).toContain('selfcon, maskcon, grafit, coins, supfine (default: maskcon)');
    expect(help).toContain('--epochs <n> training epochs (default: 200)');
    expect(help).toContain(
      '--K <n> queue size K, a multiple of --batch-size (also --k) (default: 8192)',
    );
    expect(help).toContain('quick --epochs 4, --batch-size 128, --lr 0.05');
    // One line per method, read from the methods registry.
    for (const name of METHOD_NAMES)
      expect(help).toContain(`${name} ${METHODS[name].description}`.replace(/\s+/g, ' '));
  });

  it('suggests the nearest flag for an unknown one, once, without a stack trace', async () => {
    const r = await cli('train', ['--epoch', '3']);
    expect(r.status).toBe(1);
    expect(r.stderr).toBe("error: unknown option '--epoch'\n(Did you mean --epochs?)\n");
    const sweep = await cli('sweep', ['--baseline', 'selfcon']);
    expect(sweep.status).toBe(1);
    expect(sweep.stderr).toContain('(Did you mean --baselines?)');
  });

  it('validates every numeric flag with a sentence naming it', async () => {
    const report = await cli('report', ['1', '--tsne-points', 'abc']);
    expect(report.status).toBe(1);
    expect(report.stderr).toBe('error: --tsne-points takes an integer ≥ 2, got "abc".\n');
    const train = await cli('train', ['--lr', '0.1x']);
    expect(train.stderr).toBe('error: --lr takes a number, got "0.1x".\n');
    const ks = await cli('eval', ['1', '--ks', '1,five']);
    expect(ks.stderr).toBe('error: --ks takes integers ≥ 1 separated by commas, got "1,five".\n');
    const w = await cli('sweep', ['--w', '0.5,high']);
    expect(w.stderr).toBe('error: --w takes a number, got "high".\n');
    for (const r of [report, train, ks, w]) {
      expect(r.status).toBe(1);
      expect(r.stderr).not.toMatch(STACK);
    }
  });

  it('prints the stack trace of an error only with --verbose', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'cli-'));
    const args = ['compare', '1', '2', '--runs-db', join(dir, 'runs.sqlite')];
    const quiet = await cli('runs', args);
    expect(quiet.status).toBe(1);
    expect(quiet.stderr).toBe('error: No run 1 in the runs database; `pnpm runs` lists them.\n');
    const verbose = await cli('runs', [...args, '--verbose']);
    expect(verbose.status).toBe(1);
    expect(verbose.stderr).toMatch(STACK);
    expect(verbose.stderr.match(/error: No run 1/g)).toHaveLength(1);
  });

  it('ends quietly when the reader of its output closes early (pnpm runs | head)', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'cli-epipe-'));
    const path = join(dir, 'runs.sqlite');
    const db = new RunsDb(path);
    const cfg = { w: 1, t: 0.1, epochs: 4 };
    for (let i = 0; i < 3000; i++)
      db.startRun({
        dataset: 'fashion_mnist',
        method: 'maskcon',
        config: cfg,
        backend: 'wasm',
        gitRev: null,
      });
    db.close();
    // 3,000 rows of ~110 characters: far more than a pipe buffer (64 KB) holds.
    const full = await cli('runs', ['--runs-db', path]);
    expect(full.status).toBe(0);
    expect(full.stdout.split('\n').length).toBe(3002);
    const child = spawn(process.execPath, ['--import', 'tsx', CLIS.runs, '--runs-db', path], {
      cwd: REPO,
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    let stderr = '';
    child.stderr.setEncoding('utf8').on('data', (d: string) => (stderr += d));
    const firstChunk = await new Promise<string>((done) =>
      child.stdout.once('data', (d: Buffer) => done(d.toString('utf8'))),
    );
    child.stdout.destroy(); // what `head` does after its lines
    const code = await new Promise<number | null>((done) => child.on('close', (c) => done(c)));
    expect(firstChunk).toMatch(/^ {2}id {2}status/);
    expect(stderr).toBe('');
    expect(code).toBe(0);
  });
});
