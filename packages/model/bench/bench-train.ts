/**
 * `pnpm bench train`: the full MaskCon training step (query forward + backward,
 * key forward with shuffle BN, queue logits, MaskCon targets, SGD momentum
 * update, enqueue) of this project (MaskConModel, packages/model/src/moco.ts)
 * side by side with the same step in PyTorch on CPU (maskcon_step.py), same
 * model, same shapes, same thread count. Each configuration runs in its own
 * process so its peak RSS is its own.
 *
 *   pnpm exec tsx packages/model/bench/bench-train.ts [--arch resnet18|resnet-mini] [--batches 32,128] [--K 8192] [--width 64]
 *     [--size 32] [--channels 3] [--steps 5] [--warmup 2] [--backend wasm] [--no-torch] [--no-profile]
 */
import { spawnSync } from 'node:child_process';
import { existsSync } from 'node:fs';
import path from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';

interface Options {
  arch: string;
  batches: number[];
  K: number;
  width: number;
  size: number;
  channels: number;
  classes: number;
  steps: number;
  warmup: number;
  backend: string;
  torch: boolean;
  profile: boolean;
  worker: string | null;
  batch: number;
  python: string;
}

interface Result {
  impl: string;
  batch: number;
  steps: number;
  images_per_s: number;
  step_s_min: number;
  step_s_max: number;
  peak_rss_mb: number;
  threads: number;
  version?: string;
  backend?: string;
  loss: number;
  profile?: { name: string; ms: number; calls: number }[];
  profile_total_ms?: number;
  error?: string;
}

function parseArgs(argv: string[]): Options {
  const o: Options = {
    arch: 'resnet18',
    batches: [32, 128],
    K: 8192,
    width: 64,
    size: 32,
    channels: 3,
    classes: 20,
    steps: 5,
    warmup: 2,
    backend: 'wasm',
    torch: true,
    profile: true,
    worker: null,
    batch: 128,
    python: process.env.PYTHON ?? (existsSync('/usr/bin/python3') ? '/usr/bin/python3' : 'python3'),
  };
  for (let i = 0; i < argv.length; i++) {
    const a = argv[i];
    const next = (): string => {
      const v = argv[++i];
      if (v == null) throw new Error(`${a} needs a value`);
      return v;
    };
    const int = (): number => {
      const v = Number(next());
      if (!Number.isInteger(v) || v <= 0) throw new Error(`${a} needs a positive integer`);
      return v;
    };
    switch (a) {
      case '--batches': o.batches = next().split(',').map(Number); break;
      case '--batch': o.batch = int(); break;
      case '--arch': o.arch = next(); break;
      case '--K': o.K = int(); break;
      case '--width': o.width = int(); break;
      case '--size': o.size = int(); break;
      case '--channels': o.channels = int(); break;
      case '--classes': o.classes = int(); break;
      case '--steps': o.steps = int(); break;
      case '--warmup': o.warmup = Number(next()); break;
      case '--backend': o.backend = next(); break;
      case '--no-torch': o.torch = false; break;
      case '--no-profile': o.profile = false; break;
      case '--worker': o.worker = next(); break;
      case '--python': o.python = next(); break;
      case 'train': break; // `pnpm bench train` may pass the sub-command through
      default: throw new Error(`Unknown argument ${a}`);
    }
  }
  return o;
}

/** Worker: time our step in this process and print one JSON line. */
async function runOurs(o: Options): Promise<void> {
  const tf = await import('@tensorflow/tfjs');
  // MASKCON_BENCH_SRC: another copy of packages/model/src to benchmark (A/B experiments).
  const src = process.env.MASKCON_BENCH_SRC ? path.resolve(process.env.MASKCON_BENCH_SRC) : path.join(path.dirname(fileURLToPath(import.meta.url)), '../src');
  const { initBackend } = (await import(pathToFileURL(path.join(src, 'backend.ts')).href)) as typeof import('../src/backend.js');
  const { MaskConModel } = (await import(pathToFileURL(path.join(src, 'moco.ts')).href)) as typeof import('../src/moco.js');
  const { getThreadsCount } = await import('@tensorflow/tfjs-backend-wasm');
  const info = await initBackend(o.backend as 'wasm', () => {});
  const n = o.batch;
  const model = new MaskConModel({
    method: 'maskcon',
    w: 1.0,
    t: 0.05,
    t0: 0.1,
    queueSize: o.K,
    keyMomentum: 0.99,
    sgdMomentum: 0.9,
    weightDecay: 5e-4,
    bnSplits: 1,
    seed: 1,
    network: { arch: o.arch as 'resnet18', width: o.width, inChannels: o.channels, stem: 'small', projHidden: 512, projDim: 128 },
  });
  // A full queue of random unit keys with random coarse labels (the values do not change the cost).
  const qLabels = Int32Array.from({ length: o.K }, (_, i) => (i * 7919) % o.classes);
  const qKeys = tf.tidy(() => {
    const r = tf.randomNormal([o.K, 128], 0, 1, 'float32', 3);
    return tf.div(r, tf.norm(r, 'euclidean', 1, true)) as import('@tensorflow/tfjs').Tensor2D;
  });
  model.queue.enqueue(qKeys, qLabels);
  qKeys.dispose();
  const xq = tf.randomNormal([n, o.size, o.size, o.channels], 0, 1, 'float32', 4) as import('@tensorflow/tfjs').Tensor4D;
  const xk = tf.randomNormal([n, o.size, o.size, o.channels], 0, 1, 'float32', 5) as import('@tensorflow/tfjs').Tensor4D;
  const labels = Int32Array.from({ length: n }, (_, i) => (i * 31) % o.classes);
  const step = (): number => {
    const loss = model.trainStep(xq, xk, labels, 0.02);
    const v = loss.dataSync()[0];
    loss.dispose();
    return v;
  };
  for (let i = 0; i < o.warmup; i++) step();
  const tensorsBefore = tf.memory().numTensors;
  const times: number[] = [];
  let loss = NaN;
  for (let i = 0; i < o.steps; i++) {
    const t0 = performance.now();
    loss = step();
    times.push((performance.now() - t0) / 1000);
  }
  const leaked = tf.memory().numTensors - tensorsBefore;
  const total = times.reduce((p, q) => p + q, 0);
  let profile: Result['profile'];
  let profileTotal: number | undefined;
  if (o.profile) {
    const prof = await tf.profile(() => {
      const l = model.trainStep(xq, xk, labels, 0.02);
      l.dataSync();
      l.dispose();
    });
    const byName = new Map<string, { ms: number; calls: number }>();
    profileTotal = 0;
    for (const k of prof.kernels) {
      const ms = typeof k.kernelTimeMs === 'number' ? k.kernelTimeMs : 0;
      const e = byName.get(k.name) ?? { ms: 0, calls: 0 };
      e.ms += ms;
      e.calls += 1;
      byName.set(k.name, e);
      profileTotal += ms;
    }
    profile = [...byName.entries()].map(([name, e]) => ({ name, ...e })).sort((p, q) => q.ms - p.ms);
  }
  const result: Result = {
    impl: 'ours',
    batch: n,
    steps: o.steps,
    images_per_s: (n * o.steps) / total,
    step_s_min: Math.min(...times),
    step_s_max: Math.max(...times),
    peak_rss_mb: process.resourceUsage().maxRSS / 1024,
    threads: info.name === 'wasm' ? getThreadsCount() : 1,
    backend: info.name,
    version: `tfjs ${tf.version_core}`,
    loss,
    profile,
    profile_total_ms: profileTotal,
  };
  if (leaked !== 0) result.error = `tensor count changed by ${leaked} over ${o.steps} steps`;
  console.log('RESULT ' + JSON.stringify(result));
  model.dispose();
  tf.dispose([xq, xk]);
}

function parseResult(stdout: string): Result | null {
  const line = stdout.split('\n').reverse().find((l) => l.startsWith('RESULT ') || l.startsWith('{'));
  if (line == null) return null;
  return JSON.parse(line.startsWith('RESULT ') ? line.slice(7) : line) as Result;
}

function sub(cmd: string, args: string[]): { result: Result | null; err: string } {
  const r = spawnSync(cmd, args, { encoding: 'utf8', maxBuffer: 64 << 20 });
  const stderr = r.stderr || '';
  const err = r.error
    ? String(r.error)
    : r.status !== 0
      ? stderr.includes('Aborted()')
        ? 'wasm aborted (out of memory: the wasm32 heap is capped at 4 GB)'
        : stderr.trim().split('\n').slice(-3).join(' | ')
      : '';
  return { result: r.status === 0 ? parseResult(r.stdout) : null, err };
}

function fmt(v: number | undefined, d = 1): string {
  return v == null || !Number.isFinite(v) ? '—' : v.toFixed(d);
}

async function main(): Promise<void> {
  const o = parseArgs(process.argv.slice(2));
  if (o.worker === 'ours') return runOurs(o);
  const here = path.dirname(fileURLToPath(import.meta.url));
  const self = fileURLToPath(import.meta.url);
  const common = ['--arch', o.arch, '--K', `${o.K}`, '--width', `${o.width}`, '--size', `${o.size}`, '--channels', `${o.channels}`, '--classes', `${o.classes}`, '--steps', `${o.steps}`, '--warmup', `${o.warmup}`];
  console.log(
    `MaskCon training step: ${o.arch === 'resnet-mini' ? `resnet-mini width ${o.width} (stages ${o.width}/${2 * o.width}/${4 * o.width})` : `${o.arch} (small-image stem)`}, ` +
      `${o.size}×${o.size}×${o.channels} images, K = ${o.K}, d = 128, projector 512; ${o.warmup} warm-up + ${o.steps} timed steps per run, one process per run.`,
  );
  const rows: { batch: number; ours: Result | null; torch: Result | null; errs: string[] }[] = [];
  for (const batch of o.batches) {
    const errs: string[] = [];
    const ours = sub(process.execPath, [...process.execArgv, self, '--worker', 'ours', '--batch', `${batch}`, '--backend', o.backend, ...common, ...(o.profile ? [] : ['--no-profile'])]);
    if (ours.err) errs.push(`ours: ${ours.err}`);
    let torch: { result: Result | null; err: string } = { result: null, err: '' };
    if (o.torch) {
      const threads = ours.result?.threads ?? 1;
      const py = path.join(here, 'maskcon_step.py');
      torch = existsSync(py) ? sub(o.python, [py, '--batch', `${batch}`, '--threads', `${threads}`, ...common]) : { result: null, err: `${py} missing` };
      if (torch.err) errs.push(`pytorch: ${torch.err} (install with: apt-get install python3-torch python3-torchvision)`);
    }
    rows.push({ batch, ours: ours.result, torch: torch.result, errs });
  }
  const ob = rows.find((r) => r.ours)?.ours;
  const tb = rows.find((r) => r.torch)?.torch;
  console.log(`ours: ${ob?.version ?? '?'} backend ${ob?.backend ?? '?'} (${ob?.threads ?? '?'} thread(s));  PyTorch: ${tb?.version ?? 'not run'} CPU (${tb?.threads ?? '?'} thread(s))`);
  console.log('');
  console.log('| batch | ours img/s | PyTorch img/s | ours/PyTorch | ours s/step (min–max) | PyTorch s/step (min–max) | ours peak RSS MB | PyTorch peak RSS MB |');
  console.log('|---:|---:|---:|---:|---:|---:|---:|---:|');
  for (const r of rows) {
    const ratio = r.ours && r.torch ? r.ours.images_per_s / r.torch.images_per_s : NaN;
    console.log(
      `| ${r.batch} | ${fmt(r.ours?.images_per_s)} | ${fmt(r.torch?.images_per_s)} | ${fmt(ratio, 2)} | ` +
        `${fmt(r.ours?.step_s_min, 2)}–${fmt(r.ours?.step_s_max, 2)} | ${fmt(r.torch?.step_s_min, 2)}–${fmt(r.torch?.step_s_max, 2)} | ` +
        `${fmt(r.ours?.peak_rss_mb, 0)} | ${fmt(r.torch?.peak_rss_mb, 0)} |`,
    );
  }
  for (const r of rows) for (const e of r.errs) console.log(`  batch ${r.batch}: ${e}`);
  for (const r of rows) if (r.ours?.error) console.log(`  batch ${r.batch} ours: WARNING ${r.ours.error}`);
  for (const r of rows) {
    if (!r.ours?.profile) continue;
    console.log('');
    console.log(`Kernel-time profile of our step, batch ${r.batch} (tf.profile, one step, total ${fmt(r.ours.profile_total_ms, 0)} ms of kernel time; top 10):`);
    console.log('| kernel | ms | share | calls |');
    console.log('|---|---:|---:|---:|');
    for (const p of r.ours.profile.slice(0, 10)) {
      console.log(`| ${p.name} | ${fmt(p.ms, 1)} | ${fmt((100 * p.ms) / (r.ours.profile_total_ms || 1), 1)}% | ${p.calls} |`);
    }
  }
}

await main();
