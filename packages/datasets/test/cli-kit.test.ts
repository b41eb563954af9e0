import { execFile } from 'node:child_process';
import { dirname, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { describe, expect, it } from 'vitest';
import {
  CliError,
  enumOption,
  intListOption,
  intOption,
  numberOption,
  pathOption,
} from '../src/cli-kit.js';

const REPO = resolve(dirname(fileURLToPath(import.meta.url)), '../../..');

function run(args: string[]): Promise<{ status: number | null; stdout: string; stderr: string }> {
  return new Promise((done, fail) => {
    execFile(
      process.execPath,
      ['--import', 'tsx', ...args],
      { cwd: REPO, encoding: 'utf8', env: { ...process.env, MASKCON_DEBUG: '', DEBUG: '' } },
      (err, stdout, stderr) => {
        if (err && typeof err.code !== 'number') fail(err);
        else done({ status: err ? (err.code as number) : 0, stdout, stderr });
      },
    );
  });
}

describe('CLI kit option parsers', () => {
  it('parse valid values', () => {
    expect(intOption('--n', { min: 1 })('12')).toBe(12);
    expect(intOption('--seed')('-3')).toBe(-3);
    expect(numberOption('--lr', { above: 0 })('5e-4')).toBe(0.0005);
    expect(intListOption('--ks', { min: 1 })('1, 2,10')).toEqual([1, 2, 10]);
    expect(enumOption('--split', ['test', 'train'] as const)('train')).toBe('train');
    expect(pathOption('--root', { mustExist: true })(REPO)).toBe(REPO);
  });

  it('reject bad values with a sentence naming the flag and the value', () => {
    const cases: [() => unknown, string][] = [
      [() => intOption('--n', { min: 1 })('abc'), '--n takes an integer ≥ 1, got "abc".'],
      [() => intOption('--n', { min: 1 })('0'), '--n takes an integer ≥ 1, got "0".'],
      [() => intOption('--n')('1.5'), '--n takes an integer, got "1.5".'],
      [() => intOption('--n', { max: 1 })('2'), '--n takes an integer ≤ 1, got "2".'],
      [() => numberOption('--lr')('NaN'), '--lr takes a number, got "NaN".'],
      [() => numberOption('--lr', { above: 0 })('0'), '--lr takes a number > 0, got "0".'],
      [
        () => intListOption('--ks', { min: 1 })('1,0'),
        '--ks takes integers ≥ 1 separated by commas, got "1,0".',
      ],
      [
        () => enumOption('--split', ['test', 'train'] as const)('val'),
        '--split takes one of test, train; got "val".',
      ],
      [
        () => pathOption('--root', { mustExist: true })('/no/such/dir'),
        '--root /no/such/dir does not exist; check the path.',
      ],
    ];
    for (const [f, message] of cases) {
      expect(f).toThrow(CliError);
      expect(f).toThrow(message);
    }
  });
});

describe('datasets and bench CLIs', () => {
  it('--help exits 0 with the generated help', async () => {
    const build = await run(['packages/datasets/src/cli.ts', 'build', '--help']);
    expect(build.status).toBe(0);
    expect(build.stdout).toMatch(/^Usage: pnpm datasets build \[options\] <name>/);
    expect(build.stdout).toContain('--short-side <n>');
    expect(build.stdout).toContain('Datasets: fashion_mnist, cifar100');
    const stats = await run(['packages/datasets/src/cli.ts', 'stats', '--help']);
    expect(stats.status).toBe(0);
    expect(stats.stdout).toContain('--json');
    const bench = await run(['scripts/bench.mjs', '--help']);
    expect(bench.status).toBe(0);
    expect(bench.stdout).toMatch(/^Usage: pnpm bench <name> \[args…\]/);
    for (const name of ['methods', 'train', 'augment', 'eval', 'datasets', 'kernels'])
      expect(bench.stdout).toMatch(new RegExp(`\\n  ${name} \\[args\\.\\.\\.\\] `));
  });

  it('suggests the nearest command or flag and validates numbers', async () => {
    const bench = await run(['scripts/bench.mjs', 'methds']);
    expect(bench.status).toBe(1);
    expect(bench.stderr).toBe("error: unknown command 'methds'\n(Did you mean methods?)\n");
    const flag = await run(['packages/datasets/src/cli.ts', 'build', 'fashion_mnist', '--forse']);
    expect(flag.status).toBe(1);
    expect(flag.stderr).toBe("error: unknown option '--forse'\n(Did you mean --force?)\n");
    const side = await run([
      'packages/datasets/src/cli.ts',
      'build',
      'sop_split1',
      '--short-side',
      'big',
    ]);
    expect(side.status).toBe(1);
    expect(side.stderr).toBe('error: --short-side takes an integer ≥ 1, got "big".\n');
  });
});
