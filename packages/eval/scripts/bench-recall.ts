/**
 * Recall@K benchmark: ours (recallAtKParallel on every core, and the single-thread
 * recallAtK) vs the same computation in PyTorch on the CPU, on the same random data.
 *
 * Usage: pnpm bench eval [--n 10000,50000] [--dim 512] [--threads 2] [--skip-single] [--skip-torch]
 * Each measurement runs in its own child process so that its peak RSS is its own. Data:
 * Gaussian-free uniform[-0.5, 0.5) embeddings and 100 labels from a fixed xorshift seed.
 */
import { spawnSync } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { recallAtK, recallAtKParallel, DEFAULT_KS, type RecallResult } from '../src/index.js';

interface Measurement {
  seconds: number;
  peakRssMB: number;
  recalls: RecallResult;
}

function makeData(n: number, dim: number): { emb: Float32Array; labels: Int32Array } {
  let state = 12345;
  const uniform = (): number => {
    // xorshift32: deterministic data so timings are comparable between runs.
    state ^= state << 13;
    state ^= state >>> 17;
    state ^= state << 5;
    return (state >>> 0) / 4294967296;
  };
  const emb = new Float32Array(n * dim);
  for (let i = 0; i < emb.length; i++) emb[i] = uniform() - 0.5;
  const labels = Int32Array.from({ length: n }, () => Math.floor(uniform() * 100));
  return { emb, labels };
}

/** Child mode: `--one impl embFile labelsFile n dim threads` → one JSON line. */
async function runOne(args: string[]): Promise<void> {
  const [impl, embFile, labelsFile, nStr, dimStr, threadsStr] = args;
  const n = Number(nStr);
  const dim = Number(dimStr);
  const emb = new Float32Array(readFileSync(embFile).buffer.slice(0));
  const labels = new Int32Array(readFileSync(labelsFile).buffer.slice(0));
  if (emb.length !== n * dim || labels.length !== n)
    throw new Error(`bench data has the wrong size for N=${n}, d=${dim}.`);
  const t0 = performance.now();
  const recalls =
    impl === 'single'
      ? recallAtK(emb, dim, labels, DEFAULT_KS)
      : await recallAtKParallel(emb, dim, labels, DEFAULT_KS, { workers: Number(threadsStr) });
  const seconds = (performance.now() - t0) / 1000;
  // maxRSS (KiB) covers the whole process, worker threads included.
  const out: Measurement = { seconds, peakRssMB: process.resourceUsage().maxRSS / 1024, recalls };
  console.log(JSON.stringify(out));
}

function parseList(argv: string[], flag: string, fallback: number[]): number[] {
  const i = argv.indexOf(flag);
  return i >= 0 ? argv[i + 1].split(',').map(Number) : fallback;
}

function measure(cmd: string, args: string[]): Measurement | string {
  const r = spawnSync(cmd, args, { encoding: 'utf8', maxBuffer: 1 << 24 });
  if (r.status !== 0)
    return `failed: ${(r.stderr || r.error?.message || '').trim().split('\n').slice(-1)[0]}`;
  return JSON.parse(r.stdout.trim().split('\n').slice(-1)[0]) as Measurement;
}

async function main(): Promise<void> {
  const argv = process.argv.slice(2);
  if (argv[0] === '--one') return runOne(argv.slice(1));
  const ns = parseList(argv, '--n', [10_000, 50_000]);
  const [dim] = parseList(argv, '--dim', [512]);
  const [threads] = parseList(argv, '--threads', [2]);
  const self = fileURLToPath(import.meta.url);
  const pyScript = join(fileURLToPath(new URL('.', import.meta.url)), 'recall_torch.py');
  const tmp = mkdtempSync(join(tmpdir(), 'bench-recall-'));
  const rows: string[][] = [];
  const header = [
    'N',
    'd',
    'implementation',
    'time (s)',
    'peak RSS (MB)',
    'R@1',
    'R@100',
    'same result',
  ];
  try {
    for (const n of ns) {
      const { emb, labels } = makeData(n, dim);
      const embFile = join(tmp, `emb-${n}.f32`);
      const labelsFile = join(tmp, `labels-${n}.i32`);
      writeFileSync(embFile, new Uint8Array(emb.buffer));
      writeFileSync(labelsFile, new Uint8Array(labels.buffer));
      const impls: [string, string, string[]][] = [
        [
          `ours, ${threads} worker threads`,
          process.execPath,
          [
            '--import',
            'tsx',
            self,
            '--one',
            'parallel',
            embFile,
            labelsFile,
            String(n),
            String(dim),
            String(threads),
          ],
        ],
      ];
      if (!argv.includes('--skip-single'))
        impls.push([
          'ours, 1 thread',
          process.execPath,
          [
            '--import',
            'tsx',
            self,
            '--one',
            'single',
            embFile,
            labelsFile,
            String(n),
            String(dim),
            '1',
          ],
        ]);
      if (!argv.includes('--skip-torch'))
        impls.push([
          `PyTorch CPU, ${threads} threads`,
          '/usr/bin/python3',
          [pyScript, embFile, labelsFile, String(n), String(dim), String(threads)],
        ]);
      let reference: RecallResult | undefined;
      for (const [name, cmd, args] of impls) {
        process.stderr.write(`N=${n} d=${dim}: ${name} …\n`);
        const m = measure(cmd, args);
        if (typeof m === 'string') {
          rows.push([String(n), String(dim), name, m, '', '', '', '']);
          continue;
        }
        reference ??= m.recalls;
        const same = DEFAULT_KS.every((k) => Math.abs(m.recalls[k] - reference![k]) < 1e-12);
        rows.push([
          n.toLocaleString('en'),
          String(dim),
          name,
          m.seconds.toFixed(2),
          m.peakRssMB.toFixed(0),
          (100 * m.recalls[1]).toFixed(2),
          (100 * m.recalls[100]).toFixed(2),
          same ? 'yes' : 'NO',
        ]);
        process.stderr.write(`  ${m.seconds.toFixed(2)} s, ${m.peakRssMB.toFixed(0)} MB\n`);
      }
      rmSync(embFile);
      rmSync(labelsFile);
    }
  } finally {
    rmSync(tmp, { recursive: true, force: true });
  }
  const widths = header.map((h, c) => Math.max(h.length, ...rows.map((r) => r[c].length)));
  const line = (cells: string[]) =>
    `| ${cells.map((cell, c) => (c < 3 ? cell.padEnd(widths[c]) : cell.padStart(widths[c]))).join(' | ')} |`;
  console.log(line(header));
  console.log(
    `|${widths.map((w, c) => (c < 3 ? ':' + '-'.repeat(w + 1) : '-'.repeat(w + 1) + ':')).join('|')}|`,
  );
  for (const r of rows) console.log(line(r));
}

await main();
