/**
 * `pnpm bench train`: the MaskCon training step exactly as `pnpm train` runs it (the engine of
 * packages/train: augmentation of both views from a SQLite index, key forward with shuffle BN,
 * query forward + backward, queue logits, MaskCon targets, SGD momentum update, enqueue; with
 * T threads it is T data-parallel replicas in worker threads exchanging keys, gradients and BN
 * statistics) side by side with the same step in PyTorch on CPU (maskcon_step.py) given the same
 * thread count. ResNet-18 with the small-image stem at 32×32×3, K = 8192, d = 128 by default.
 * Every configuration runs in its own process, so its peak RSS is its own.
 *
 *   pnpm bench train [--arch resnet18|resnet34|resnet50|resnet-mini] [--batches 32,128]
 *     [--threads 1,2] [--bn-group-size 32] [--micro-batch N] [--K 8192] [--width 64 (resnet-mini only)] [--size 32] [--steps 3] [--warmup 1]
 *     [--stem auto|small|standard] [--backends native,wasm] [--native-threads workers,omp]
 *     [--no-torch] [--no-profile] [--python /usr/bin/python3]
 *   pnpm bench train --size 224 --stem standard --batches 16,64 --threads 2   # the SOP/Cars196 step
 * (`pnpm bench train --help` lists the flags with their defaults.)
 *
 * --backends: ours on the `native` backend (oneDNN kernels on the wasm heap; dropped with its
 * reason when the addon is not built), `native-memory` (oneDNN kernels on tensors outside any
 * wasm heap, one replica with T OpenMP threads) and/or plain `wasm`. --native-threads: how native uses T
 * threads — `workers` (T data-parallel replicas with one OpenMP thread each) and/or `omp` (one
 * replica whose oneDNN primitives run T OpenMP threads). The CPU's peak is measured once with a
 * oneDNN sgemm and printed beside the per-kernel GFLOP/s of the profile.
 *
 * BatchNorm runs in groups of --bn-group-size images on both sides (our --bn-splits; PyTorch's
 * SplitBatchNorm as in MoCo's CIFAR code), so T replicas each hold whole groups.
 * --threads: the thread counts to compare (default: 1 and every core of this machine). Our
 * side uses that many replicas (worker threads, one wasm backend each; 1 = in-process);
 * PyTorch gets torch.set_num_threads(T). PyTorch: apt-get install python3-torch python3-torchvision.
 */
import { spawnSync } from 'node:child_process';
import { existsSync, mkdtempSync, rmSync } from 'node:fs';
import { availableParallelism, loadavg, tmpdir } from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import {
  CliError,
  createCommand,
  enumOption,
  intListOption,
  intOption,
  Option,
  runCli,
} from '@maskcon/datasets';
import { buildSyntheticIndex } from '../src/synthetic-index.js';

interface Options {
  arch: string;
  batches: number[];
  threads: number[];
  K: number;
  width: number;
  size: number;
  classes: number;
  /** Images per BatchNorm group (both sides): bnSplits = batch / group. */
  bnGroup: number;
  microBatch: number;
  steps: number;
  warmup: number;
  backend: string;
  backends: string[];
  nativeModes: ('workers' | 'omp')[];
  stem: 'auto' | 'small' | 'standard';
  torch: boolean;
  profile: boolean;
  worker: string | null;
  batch: number;
  thread: number;
  index: string;
  python: string;
}

interface Result {
  impl: string;
  batch: number;
  steps: number;
  images_per_s: number;
  step_s_min: number;
  step_s_max: number;
  /** CPU seconds (all threads of the process) per timed step: less sensitive to other jobs' load. */
  cpu_s_per_step?: number;
  peak_rss_mb: number;
  threads: number;
  version?: string;
  backend?: string;
  loss: number;
  /** Per kernel and shape; `native` = one of the oneDNN kernels of the native backend. */
  profile?: { name: string; ms: number; calls: number; flops: number; native: boolean }[];
  /** Kernel time of the profiled step (scopes such as customGrad ops excluded: they nest kernels). */
  profile_total_ms?: number;
  /** Wall time of the profiled step. */
  profile_step_ms?: number;
  error?: string;
}

/**
 * The bench's flags, on the project's CLI kit (commander): help is generated from the schema
 * that parses them. --worker, --batch, --thread and --index are the parent's instructions to its
 * per-configuration child processes, hidden from help.
 */
function parseArgs(argv: string[]): Options {
  const cores = availableParallelism();
  const allCores = [...new Set([1, cores])];
  const hidden = (flags: string, description: string) => new Option(flags, description).hideHelp();
  const program = createCommand(
    'pnpm bench train',
    "The MaskCon training step as `pnpm train` runs it beside PyTorch's on CPU with the same threads: images/s, s/step and peak RSS per configuration, each in its own process.",
  )
    .addOption(
      new Option('--arch <name>', 'backbone')
        .default('resnet18')
        .argParser(enumOption('--arch', ['resnet18', 'resnet34', 'resnet50', 'resnet-mini'])),
    )
    .addOption(
      new Option('--batches <list>', 'batch sizes to time, comma-separated')
        .default([32, 128], '32,128')
        .argParser(intListOption('--batches', { min: 1 })),
    )
    .addOption(
      new Option('--threads <list>', 'thread counts to compare, comma-separated')
        .default(allCores, allCores.join(','))
        .argParser(intListOption('--threads', { min: 1 })),
    )
    .addOption(
      new Option('--size <px>', 'image side (224 with --stem standard: the SOP/Cars196 step)')
        .default(32)
        .argParser(intOption('--size', { min: 8 })),
    )
    .addOption(
      new Option(
        '--stem <kind>',
        'auto (small for ≤ 64 px), small (3×3 stride 1, no max-pool) or standard',
      )
        .default('auto')
        .argParser(enumOption('--stem', ['auto', 'small', 'standard'] as const)),
    )
    .addOption(
      new Option('--K <n>', 'queue size').default(8192).argParser(intOption('--K', { min: 1 })),
    )
    .addOption(
      new Option('--bn-group-size <n>', 'images per BatchNorm group, both sides')
        .default(32)
        .argParser(intOption('--bn-group-size', { min: 1 })),
    )
    .addOption(
      new Option('--micro-batch <n>', 'images per forward/backward pass; 0 = automatic')
        .default(0)
        .argParser(intOption('--micro-batch', { min: 0 })),
    )
    .addOption(
      new Option('--width <n>', 'resnet-mini stem width')
        .default(64)
        .argParser(intOption('--width', { min: 1 })),
    )
    .addOption(
      new Option('--classes <n>', 'coarse classes of the synthetic data (5 fine classes each)')
        .default(20)
        .argParser(intOption('--classes', { min: 1 })),
    )
    .addOption(
      new Option('--steps <n>', 'timed steps per configuration')
        .default(3)
        .argParser(intOption('--steps', { min: 1 })),
    )
    .addOption(
      new Option('--warmup <n>', 'untimed steps before them')
        .default(1)
        .argParser(intOption('--warmup', { min: 0 })),
    )
    .addOption(
      new Option(
        '--backends <list>',
        'ours: native, native-memory (oneDNN on tensors outside the wasm heap, one replica with T OpenMP threads) and/or wasm, comma-separated (the native ones are dropped, with the reason, where the addon is not built)',
      )
        .default(['native', 'wasm'], 'native,wasm')
        .argParser(nameList('--backends', ['native', 'native-memory', 'wasm', 'cpu'])),
    )
    .addOption(
      new Option('--backend <name>', 'one backend (the same as --backends NAME)').argParser(
        enumOption('--backend', ['native', 'native-memory', 'wasm', 'cpu'] as const),
      ),
    )
    .addOption(
      new Option(
        '--native-threads <list>',
        'how native uses T threads: workers (T replicas, one OpenMP thread each) and/or omp (one replica, T OpenMP threads)',
      )
        .default(['workers', 'omp'], 'workers,omp')
        .argParser(nameList('--native-threads', ['workers', 'omp'])),
    )
    .option('--no-torch', 'skip PyTorch')
    .option('--no-profile', 'skip the kernel-time profile')
    .option(
      '--python <path>',
      'python with torch (apt-get install python3-torch python3-torchvision)',
      process.env.PYTHON ?? (existsSync('/usr/bin/python3') ? '/usr/bin/python3' : 'python3'),
    )
    .addOption(hidden('--worker <kind>', 'child process: run one configuration'))
    .addOption(
      hidden('--batch <n>', 'child: batch size')
        .default(128)
        .argParser(intOption('--batch', { min: 1 })),
    )
    .addOption(
      hidden('--thread <n>', 'child: replicas')
        .default(1)
        .argParser(intOption('--thread', { min: 1 })),
    )
    .addOption(hidden('--index <file>', 'child: the synthetic index').default(''))
    // `pnpm bench train` passes the benchmark's name through.
    .argument('[name]', 'train (as `pnpm bench` passes it)');
  program.parse(argv, { from: 'user' });
  const name = program.args[0];
  if (name !== undefined && name !== 'train')
    throw new CliError(`pnpm bench train takes no argument ${JSON.stringify(name)}.`);
  const v = program.opts();
  return {
    arch: v.arch,
    batches: v.batches,
    threads: v.threads,
    K: v.K,
    width: v.width,
    size: v.size,
    classes: v.classes,
    bnGroup: v.bnGroupSize,
    microBatch: v.microBatch,
    steps: v.steps,
    warmup: v.warmup,
    backend: v.backend ?? 'wasm',
    backends: v.backend ? [v.backend] : v.backends,
    nativeModes: v.nativeThreads,
    stem: v.stem,
    torch: v.torch,
    profile: v.profile,
    worker: v.worker ?? null,
    batch: v.batch,
    thread: v.thread,
    index: v.index,
    python: v.python,
  };
}

/** A commander argument parser for a comma-separated list of names from `allowed`. */
function nameList(flag: string, allowed: readonly string[]): (raw: string) => string[] {
  return (raw) => {
    const xs = raw.split(',').map((x) => x.trim());
    const bad = xs.filter((x) => !allowed.includes(x));
    if (bad.length > 0)
      throw new CliError(
        `${flag} takes ${allowed.join(', ')} (comma-separated), got ${JSON.stringify(raw)}.`,
      );
    return xs;
  };
}

/**
 * Profile key of a kernel call: convolutions by kind and geometry (kernel size, spatial size in →
 * out, channels in → out) with their useful FLOPs 2·N·OH·OW·Cin·Cout·k², everything else by name.
 */
function convKey(name: string, ins: number[][], outs: number[][]): { key: string; flops: number } {
  if (name === 'BatchMatMul' && ins.length === 2 && outs.length === 1) {
    // 2·batch·M·N·K; K is A's dimension that is not M (ambiguous only for square A, same count).
    const out = outs[0];
    const [m, n] = out.slice(-2);
    const a = ins[0].slice(-2);
    const k = a[0] === m ? a[1] : a[0];
    const flops = 2 * out.reduce((p, q) => p * q, 1) * k;
    return { key: `BatchMatMul ${m}×${k}·${k}×${n}`, flops };
  }
  if (!name.startsWith('Conv2D') || ins.length < 2) return { key: name, flops: 0 };
  // Conv2D(x, filter) → y;  Conv2DBackpropFilter(x, dy) → filter;  Conv2DBackpropInput(dy, filter) → x
  const [x, f, y] =
    name === 'Conv2D'
      ? [ins[0], ins[1], outs[0]]
      : name === 'Conv2DBackpropFilter'
        ? [ins[0], outs[0], ins[1]]
        : [outs[0], ins[1], ins[0]];
  const flops = 2 * y[0] * y[1] * y[2] * y[3] * f[0] * f[1] * f[2];
  return { key: `${name} ${f[0]}×${f[1]} ${x[1]}→${y[1]} px, ${f[2]}→${f[3]} ch`, flops };
}

function stemOf(o: Options): 'small' | 'standard' {
  return o.stem === 'auto' ? (o.size <= 64 ? 'small' : 'standard') : o.stem;
}

/** Child process: time `steps` engine steps with `thread` replicas and print one JSON line. */
async function runOurs(o: Options): Promise<void> {
  const tf = await import('@tensorflow/tfjs');
  const { createEngine } = await import('../src/engine.js');
  const { DEFAULT_CONFIG } = await import('../src/config.js');
  const cfg = {
    ...DEFAULT_CONFIG,
    dataset: 'bench_synthetic',
    index: o.index,
    method: 'maskcon' as const,
    arch: o.arch as typeof DEFAULT_CONFIG.arch,
    width: o.width,
    stem: stemOf(o),
    batchSize: o.batch,
    K: o.K,
    w: 1,
    t: 0.05,
    bnSplits: o.batch / o.bnGroup, // split BN in groups of --bn-group-size, as PyTorch's SplitBatchNorm
    microBatch: o.microBatch,
    backend: o.backend as typeof DEFAULT_CONFIG.backend,
    workers: o.thread,
  };
  const engine = await createEngine(cfg, o.index, o.thread, () => {});
  const n = o.batch;
  let s = 99;
  const batch = (step: number) => {
    const indices = Int32Array.from(
      { length: n },
      () => (s = (Math.imul(s, 1664525) + 1013904223) >>> 0) % 1024,
    );
    const labels = Int32Array.from(indices, (i) => (i % (o.classes * 5)) % o.classes);
    return { indices, labels, epoch: 0, step, lr: 0.02 };
  };
  const step = async (i: number): Promise<number> => {
    await engine.step(batch(i));
    return engine.takeLossSum(); // the only device read of a step
  };
  for (let i = 0; i < o.warmup; i++) await step(i);
  // The replicas of a pool live in worker threads; this thread's tf counts only in-process ones.
  const tensors = (): number => (o.thread === 1 ? tf.memory().numTensors : 0);
  const tensorsBefore = tensors();
  const times: number[] = [];
  let loss = NaN;
  // Process CPU time covers the worker threads too (one process per configuration).
  const cpu0 = process.cpuUsage();
  for (let i = 0; i < o.steps; i++) {
    const t0 = performance.now();
    loss = await step(o.warmup + i);
    times.push((performance.now() - t0) / 1000);
  }
  const cpu = process.cpuUsage(cpu0);
  const leaked = tensors() - tensorsBefore;
  const total = times.reduce((p, q) => p + q, 0);
  let profile: Result['profile'];
  let profileTotal: number | undefined;
  let profileStep: number | undefined;
  if (o.profile && o.thread === 1) {
    // In-process replica: tf.profile sees every kernel of one step.
    const { NATIVE_KERNEL_NAMES } = await import('@maskcon/model');
    const nativeNames = new Set(o.backend === 'native' ? NATIVE_KERNEL_NAMES : []);
    const t0 = performance.now();
    const prof = await tf.profile(async () => {
      await step(o.warmup + o.steps);
    });
    profileStep = performance.now() - t0;
    const byName = new Map<string, { ms: number; calls: number; flops: number; native: boolean }>();
    profileTotal = 0;
    for (const k of prof.kernels) {
      // A customGrad op (e.g. BatchNorm) appears as a scope whose time includes its kernels'.
      if (tf.getKernel(k.name, tf.getBackend()) == null) continue;
      const ms = typeof k.kernelTimeMs === 'number' ? k.kernelTimeMs : 0;
      const { key, flops } = convKey(
        k.name,
        k.inputShapes as number[][],
        k.outputShapes as number[][],
      );
      const e = byName.get(key) ?? { ms: 0, calls: 0, flops: 0, native: nativeNames.has(k.name) };
      e.ms += ms;
      e.calls += 1;
      e.flops += flops;
      byName.set(key, e);
      profileTotal += ms;
    }
    profile = [...byName.entries()]
      .map(([name, e]) => ({ name, ...e }))
      .sort((p, q) => q.ms - p.ms);
  }
  const result: Result = {
    impl: 'ours',
    batch: n,
    steps: o.steps,
    images_per_s: (n * o.steps) / total,
    step_s_min: Math.min(...times),
    step_s_max: Math.max(...times),
    cpu_s_per_step: (cpu.user + cpu.system) / 1e6 / o.steps,
    peak_rss_mb: process.resourceUsage().maxRSS / 1024,
    threads: engine.workers,
    backend: engine.backend,
    version: `tfjs ${tf.version_core}`,
    loss,
    profile,
    profile_total_ms: profileTotal,
    profile_step_ms: profileStep,
  };
  if (leaked !== 0) result.error = `tensor count changed by ${leaked} over ${o.steps} steps`;
  await engine.close();
  console.log('RESULT ' + JSON.stringify(result));
}

function parseResult(stdout: string): Result | null {
  const line = stdout
    .split('\n')
    .reverse()
    .find((l) => l.startsWith('RESULT ') || l.startsWith('{'));
  if (line == null) return null;
  return JSON.parse(line.startsWith('RESULT ') ? line.slice(7) : line) as Result;
}

function sub(
  cmd: string,
  args: string[],
  env: NodeJS.ProcessEnv = process.env,
): { result: Result | null; err: string } {
  const r = spawnSync(cmd, args, { encoding: 'utf8', maxBuffer: 64 << 20, env });
  const stderr = r.stderr || '';
  const tail = stderr
    .trim()
    .split('\n')
    .slice(-3)
    .map((l) => l.slice(0, 300))
    .join(' | ');
  const err = r.error
    ? String(r.error)
    : r.status !== 0
      ? /RuntimeError: Aborted\(|out of memory/i.test(tail)
        ? 'wasm out of memory (one wasm32 heap is capped at 4 GB; use more threads or a smaller batch)'
        : tail
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
  const work = mkdtempSync(path.join(tmpdir(), 'maskcon-bench-train-'));
  try {
    // 1,024 train images: the children draw their batches from them (pixels do not change the cost).
    const index = await buildSyntheticIndex(work, {
      size: o.size,
      classes: o.classes,
      train: 1024,
      test: 16,
    });
    const common = [
      '--arch',
      o.arch,
      '--K',
      `${o.K}`,
      '--width',
      `${o.width}`,
      '--size',
      `${o.size}`,
      '--classes',
      `${o.classes}`,
      '--steps',
      `${o.steps}`,
      '--warmup',
      `${o.warmup}`,
    ];
    console.log(
      `MaskCon training step: ${o.arch === 'resnet-mini' ? `resnet-mini width ${o.width}` : `${o.arch} (${stemOf(o) === 'small' ? 'small-image stem: 3×3 stride 1, no max-pool' : 'standard stem: 7×7 stride 2 + max-pool'})`}, ${o.size}×${o.size}×3 images, ` +
        `K = ${o.K}, d = 128, projector 512, BN groups of ≤ ${o.bnGroup}; ${o.warmup} warm-up + ${o.steps} timed steps per run, one process per run; machine: ${availableParallelism()} cores.`,
    );
    // The CPU's peak, once per thread count: oneDNN's sgemm on 2048² matrices (best of 5).
    const { loadNative } = await import('@maskcon/model');
    const native = loadNative();
    const peak = new Map<number, number>();
    if (native.ok) {
      for (const t of new Set([1, ...o.threads])) {
        native.kernels.setThreads(t);
        peak.set(t, native.kernels.peakGflops(2048, 5));
      }
      console.log(
        `CPU peak (oneDNN ${native.kernels.info().version} sgemm 2048², ${native.kernels.info().isa}): ${[
          ...peak,
        ]
          .map(([t, g]) => `${fmt(g, 0)} GFLOP/s on ${t} thread(s)`)
          .join(', ')}.`,
      );
    } else if (o.backends.some((b) => b.startsWith('native'))) {
      console.log(`native backends skipped: ${native.reason}`);
      o.backends = o.backends.filter((b) => !b.startsWith('native'));
    }
    type Config = { label: string; backend: string; replicas: number; omp: number };
    const configsFor = (threads: number): Config[] =>
      o.backends.flatMap((backend): Config[] => {
        // native-memory: one replica whose oneDNN primitives run T OpenMP threads (no wasm heap
        // per replica to multiply).
        if (backend === 'native-memory')
          return [
            {
              label: threads === 1 ? backend : `${backend} ${threads} OpenMP thr.`,
              backend,
              replicas: 1,
              omp: threads,
            },
          ];
        if (backend !== 'native')
          return [{ label: `${backend} ×${threads} workers`, backend, replicas: threads, omp: 1 }];
        if (threads === 1) return [{ label: 'native', backend, replicas: 1, omp: 1 }];
        return o.nativeModes.map((m) =>
          m === 'workers'
            ? { label: `native ×${threads} workers`, backend, replicas: threads, omp: 1 }
            : { label: `native ${threads} OpenMP thr.`, backend, replicas: 1, omp: threads },
        );
      });
    const rows: {
      batch: number;
      threads: number;
      group?: number;
      config?: Config;
      ours: Result | null;
      torch: Result | null;
      errs: string[];
    }[] = [];
    for (const batch of o.batches) {
      for (const threads of o.threads) {
        // BN groups of --bn-group-size, smaller where a replica's share is smaller (both sides alike).
        const group = Math.min(o.bnGroup, batch / threads);
        if (!Number.isInteger(group) || batch % group !== 0 || (batch / group) % threads !== 0) {
          rows.push({
            batch,
            threads,
            ours: null,
            torch: null,
            errs: [
              `batch ${batch} does not split into ${threads} replicas of whole BN groups of ${group}; skipped`,
            ],
          });
          continue;
        }
        let torch: { result: Result | null; err: string } = { result: null, err: '' };
        if (o.torch) {
          process.stderr.write(`  running batch ${batch}, ${threads} thread(s): PyTorch…\n`);
          const py = path.join(here, 'maskcon_step.py');
          torch = sub(o.python, [
            py,
            '--batch',
            `${batch}`,
            '--threads',
            `${threads}`,
            '--bn-group-size',
            `${group}`,
            '--stem',
            stemOf(o),
            ...common,
          ]);
        }
        for (const config of configsFor(threads)) {
          const errs: string[] = [];
          process.stderr.write(
            `  running batch ${batch}, ${threads} thread(s): ${config.label}…\n`,
          );
          const ours = sub(
            process.execPath,
            [
              ...process.execArgv,
              self,
              '--worker',
              'ours',
              '--batch',
              `${batch}`,
              '--thread',
              `${config.replicas}`,
              '--index',
              index,
              '--backend',
              config.backend,
              '--micro-batch',
              `${o.microBatch}`,
              '--bn-group-size',
              `${group}`,
              '--stem',
              stemOf(o),
              ...common,
              ...(o.profile ? [] : ['--no-profile']),
            ],
            { ...process.env, MASKCON_NATIVE_THREADS: `${config.omp}` },
          );
          if (ours.err) errs.push(`ours (${config.label}): ${ours.err}`);
          if (torch.err)
            errs.push(
              `pytorch: ${torch.err} (install with: apt-get install python3-torch python3-torchvision)`,
            );
          rows.push({
            batch,
            threads,
            group,
            config,
            ours: ours.result,
            torch: torch.result,
            errs,
          });
        }
      }
    }
    const ob = rows.find((r) => r.ours)?.ours;
    const tb = rows.find((r) => r.torch)?.torch;
    console.log(
      `ours: ${ob?.version ?? '?'} (T threads = T data-parallel replicas, or for 'OpenMP' one replica with T oneDNN threads);  PyTorch: ${tb?.version ?? 'not run'} CPU (torch.set_num_threads(T));  load: ${loadavg()
        .map((l) => l.toFixed(2))
        .join(' ')}`,
    );
    console.log('');
    console.log(
      '| batch | threads | BN group | ours | ours img/s | PyTorch img/s | ours/PyTorch | ours s/step (min–max) | PyTorch s/step (min–max) | CPU s/step ours / PyTorch | ours peak RSS MB | PyTorch peak RSS MB | RSS ratio |',
    );
    console.log('|---:|---:|---:|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|');
    for (const r of rows) {
      const ratio = r.ours && r.torch ? r.ours.images_per_s / r.torch.images_per_s : NaN;
      const rss = r.ours && r.torch ? r.ours.peak_rss_mb / r.torch.peak_rss_mb : NaN;
      console.log(
        `| ${r.batch} | ${r.threads} | ${r.group ?? '—'} | ${r.config?.label ?? '—'} | ${fmt(r.ours?.images_per_s)} | ${fmt(r.torch?.images_per_s)} | ${fmt(ratio, 2)} | ` +
          `${fmt(r.ours?.step_s_min, 2)}–${fmt(r.ours?.step_s_max, 2)} | ${fmt(r.torch?.step_s_min, 2)}–${fmt(r.torch?.step_s_max, 2)} | ` +
          `${fmt(r.ours?.cpu_s_per_step, 2)} / ${fmt(r.torch?.cpu_s_per_step, 2)} | ` +
          `${fmt(r.ours?.peak_rss_mb, 0)} | ${fmt(r.torch?.peak_rss_mb, 0)} | ${fmt(rss, 2)} |`,
      );
    }
    for (const r of rows)
      for (const e of r.errs) console.log(`  batch ${r.batch}, ${r.threads} thread(s): ${e}`);
    for (const r of rows)
      if (r.ours?.error) console.log(`  batch ${r.batch} ours: WARNING ${r.ours.error}`);
    for (const r of rows) {
      if (!r.ours?.profile || !r.config) continue;
      console.log('');
      const total = r.ours.profile_total_ms || 1;
      const stepMs = r.ours.profile_step_ms ?? total;
      const nativeMs = r.ours.profile.reduce((a, p) => a + (p.native ? p.ms : 0), 0);
      const cpuPeak = peak.get(r.config.omp);
      const pct = (ms: number): string => `${fmt((100 * ms) / stepMs, 0)}%`;
      console.log(
        `Profile of one step of ours, batch ${r.batch}, ${r.config.label} (tf.profile): ${fmt(stepMs, 0)} ms wall — ` +
          `oneDNN kernels ${fmt(nativeMs, 0)} ms (${pct(nativeMs)}), wasm kernels ${fmt(total - nativeMs, 0)} ms (${pct(total - nativeMs)}), ` +
          `outside kernels (JS, tape, allocation, augmentation) ${fmt(stepMs - total, 0)} ms (${pct(stepMs - total)}).`,
      );
      console.log(
        `Every convolution and product by shape, then the 10 slowest other kernels (GFLOP/s = useful FLOPs / kernel time; peak = oneDNN sgemm on ${r.config.omp} thread(s): ${fmt(cpuPeak, 0)} GFLOP/s):`,
      );
      console.log('| kernel and shape | on | ms | share of step | calls | GFLOP/s | % of peak |');
      console.log('|---|---|---:|---:|---:|---:|---:|');
      const rowsShown = [
        ...r.ours.profile.filter((p) => p.flops > 0),
        ...r.ours.profile.filter((p) => p.flops === 0).slice(0, 10),
      ];
      for (const p of rowsShown) {
        const g = p.flops ? p.flops / p.ms / 1e6 : NaN;
        console.log(
          `| ${p.name} | ${p.native ? 'oneDNN' : 'wasm'} | ${fmt(p.ms, 1)} | ${pct(p.ms)} | ${p.calls} | ${p.flops ? fmt(g, 1) : ''} | ${p.flops && cpuPeak ? fmt((100 * g) / cpuPeak, 0) : ''} |`,
        );
      }
    }
  } finally {
    rmSync(work, { recursive: true, force: true });
  }
}

runCli(main);
