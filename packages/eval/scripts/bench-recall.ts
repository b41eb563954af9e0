/**
 * Recall@{1,2,5,10} benchmark: ours (recallAtKParallel: ONNX Runtime candidates + exact
 * resolution) beside numpy on OpenBLAS and PyTorch on the CPU, on the same random data, for every
 * N × d — time and peak RSS, in one run.
 *
 * Usage: pnpm bench eval [--n 10000,50000] [--dim 512,2048] [--threads 2] [--exact]
 *                        [--skip-numpy] [--skip-torch]
 * CPU (s) is user + system time of all the process's threads during the computation: on a
 * shared machine it is steadier than wall time, which other jobs stretch.
 * --exact adds our exact JavaScript sweep (worker threads; the fallback and test oracle).
 * Each measurement runs in its own child process so that its peak RSS is its own. Peers run
 * with `/usr/bin/python3` (Debian's python3-numpy and python3-torch; numpy's libblas.so.3 is
 * OpenBLAS once libopenblas0-pthread is installed) and OPENBLAS_NUM_THREADS = --threads, with
 * OPENBLAS_CORETYPE / OPENBLAS_L2_SIZE unset so OpenBLAS picks its kernels for this CPU.
 * Data: uniform[-0.5, 0.5) embeddings and 100 labels from a fixed xorshift seed.
 */
import { spawnSync } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { loadavg, tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { recallAtKParallel, type RecallResult } from '../src/index.js';

const KS = [1, 2, 5, 10];

interface Measurement {
  seconds: number;
  /** User + system CPU seconds of the whole process during the computation (all threads). */
  cpuSeconds: number;
  peakRssMB: number;
  recalls: RecallResult;
  backend?: string;
  blas?: string;
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

/** Child mode: `--one fast|exact embFile labelsFile n dim threads` → one JSON line. */
async function runOne(args: string[]): Promise<void> {
  const [impl, embFile, labelsFile, nStr, dimStr, threadsStr] = args;
  if (embFile === undefined || labelsFile === undefined)
    throw new Error('bench-recall --one needs: fast|exact EMB_FILE LABELS_FILE N DIM THREADS.');
  const n = Number(nStr);
  const dim = Number(dimStr);
  const emb = new Float32Array(readFileSync(embFile).buffer.slice(0));
  const labels = new Int32Array(readFileSync(labelsFile).buffer.slice(0));
  if (emb.length !== n * dim || labels.length !== n)
    throw new Error(`bench data has the wrong size for N=${n}, d=${dim}.`);
  let backend = '';
  const cpu0 = process.cpuUsage();
  const t0 = performance.now();
  const recalls = await recallAtKParallel(emb, dim, labels, KS, {
    workers: Number(threadsStr),
    backend: impl === 'exact' ? 'exact' : 'auto',
    onBackend: (b, why) => {
      backend = why ? `${b} (${why})` : b;
    },
  });
  const seconds = (performance.now() - t0) / 1000;
  const cpu = process.cpuUsage(cpu0);
  // maxRSS (KiB) covers the whole process, worker and ONNX Runtime threads included.
  const out: Measurement = {
    seconds,
    cpuSeconds: (cpu.user + cpu.system) / 1e6,
    peakRssMB: process.resourceUsage().maxRSS / 1024,
    recalls,
    backend,
  };
  console.log(JSON.stringify(out));
}

function parseList(argv: string[], flag: string, fallback: number[]): number[] {
  const i = argv.indexOf(flag);
  if (i < 0) return fallback;
  const value = argv[i + 1];
  if (value === undefined)
    throw new Error(`${flag} needs a comma-separated list, e.g. ${flag} 1,2`);
  return value.split(',').map(Number);
}

function measure(cmd: string, args: string[], env?: NodeJS.ProcessEnv): Measurement | string {
  const r = spawnSync(cmd, args, { encoding: 'utf8', maxBuffer: 1 << 24, env });
  if (r.status !== 0)
    return `failed: ${(r.stderr || r.error?.message || '').trim().split('\n').slice(-1)[0]}`;
  return JSON.parse(r.stdout.trim().split('\n').at(-1) ?? '') as Measurement;
}

async function main(): Promise<void> {
  const argv = process.argv.slice(2);
  if (argv[0] === '--one') return runOne(argv.slice(1));
  const ns = parseList(argv, '--n', [10_000, 50_000]);
  const dims = parseList(argv, '--dim', [512, 2048]);
  const [threads] = parseList(argv, '--threads', [2]);
  const self = fileURLToPath(import.meta.url);
  const here = fileURLToPath(new URL('.', import.meta.url));
  // The peers' BLAS threads; the CPU-type overrides some environments set are dropped so that
  // OpenBLAS uses the kernels it detects for this CPU.
  const peerEnv: NodeJS.ProcessEnv = { ...process.env, OPENBLAS_NUM_THREADS: String(threads) };
  delete peerEnv.OPENBLAS_CORETYPE;
  delete peerEnv.OPENBLAS_L2_SIZE;
  const tmp = mkdtempSync(join(tmpdir(), 'bench-recall-'));
  const rows: string[][] = [];
  const notes = new Set<string>();
  const header = [
    'N',
    'd',
    'implementation',
    'time (s)',
    'CPU (s)',
    'peak RSS (MB)',
    'R@1',
    'R@10',
    'same',
  ];
  try {
    for (const dim of dims) {
      for (const n of ns) {
        const { emb, labels } = makeData(n, dim);
        const embFile = join(tmp, `emb-${n}-${dim}.f32`);
        const labelsFile = join(tmp, `labels-${n}.i32`);
        writeFileSync(embFile, new Uint8Array(emb.buffer));
        writeFileSync(labelsFile, new Uint8Array(labels.buffer));
        const ours = (impl: string) => [
          '--import',
          'tsx',
          self,
          '--one',
          impl,
          embFile,
          labelsFile,
          String(n),
          String(dim),
          String(threads),
        ];
        const impls: [string, string, string[], NodeJS.ProcessEnv?][] = [
          [`ours, ${threads} threads`, process.execPath, ours('fast')],
        ];
        if (argv.includes('--exact'))
          impls.push([`ours exact JS, ${threads} workers`, process.execPath, ours('exact')]);
        if (!argv.includes('--skip-numpy'))
          impls.push([
            `numpy, ${threads} threads`,
            '/usr/bin/python3',
            [join(here, 'recall_numpy.py'), embFile, labelsFile, String(n), String(dim)],
            peerEnv,
          ]);
        if (!argv.includes('--skip-torch'))
          impls.push([
            `PyTorch, ${threads} threads`,
            '/usr/bin/python3',
            [
              join(here, 'recall_torch.py'),
              embFile,
              labelsFile,
              String(n),
              String(dim),
              String(threads),
            ],
            peerEnv,
          ]);
        let reference: RecallResult | undefined;
        for (const [name, cmd, args, env] of impls) {
          process.stderr.write(`N=${n} d=${dim}: ${name} … (load ${loadavg()[0]?.toFixed(1)})\n`);
          const m = measure(cmd, args, env);
          if (typeof m === 'string') {
            rows.push([n.toLocaleString('en'), String(dim), name, m, '', '', '', '', '']);
            continue;
          }
          if (m.backend) notes.add(`${name}: backend ${m.backend}`);
          if (m.blas) notes.add(`${name.split(',')[0]}: BLAS ${m.blas}`);
          reference ??= m.recalls;
          const ref = reference;
          // a missing K gives NaN, which is not "same"
          const same = KS.every((k) => Math.abs((m.recalls[k] ?? NaN) - (ref[k] ?? NaN)) < 1e-12);
          rows.push([
            n.toLocaleString('en'),
            String(dim),
            name,
            m.seconds.toFixed(2),
            m.cpuSeconds.toFixed(2),
            m.peakRssMB.toFixed(0),
            (100 * (m.recalls[1] ?? NaN)).toFixed(2),
            (100 * (m.recalls[10] ?? NaN)).toFixed(2),
            same ? 'yes' : 'NO',
          ]);
          process.stderr.write(
            `  ${m.seconds.toFixed(2)} s (CPU ${m.cpuSeconds.toFixed(2)} s), ${m.peakRssMB.toFixed(0)} MB\n`,
          );
        }
        rmSync(embFile);
        rmSync(labelsFile);
      }
    }
  } finally {
    rmSync(tmp, { recursive: true, force: true });
  }
  const widths = header.map((h, c) => Math.max(h.length, ...rows.map((r) => r[c]?.length ?? 0)));
  const line = (cells: string[]) =>
    `| ${cells.map((cell, c) => (c < 3 ? cell.padEnd(widths[c] ?? 0) : cell.padStart(widths[c] ?? 0))).join(' | ')} |`;
  console.log(line(header));
  console.log(
    `|${widths.map((w, c) => (c < 3 ? `:${'-'.repeat(w + 1)}` : `${'-'.repeat(w + 1)}:`)).join('|')}|`,
  );
  for (const r of rows) console.log(line(r));
  for (const note of notes) console.log(`  ${note}`);
  console.log(
    `  load average at the end: ${loadavg()
      .map((l) => l.toFixed(2))
      .join(', ')}`,
  );
}

await main();
