/**
 * `pnpm bench embed`: images/s of the ResNet-18 backbone forward (the work of `pnpm embed` once
 * images are decoded), at 32 px (small stem) and 224 px (standard stem), side by side in one
 * run: tfjs-wasm in W worker processes (default 2, one per core), onnxruntime-node with T
 * threads, and PyTorch CPU (Debian's python3-torch) with T threads.
 *
 * usage: pnpm bench embed [--sizes 32,224] [--seconds 8] [--threads 2] [--workers 2]
 *                         [--no-torch] [--python /usr/bin/python3]
 */
import { spawn, spawnSync } from 'node:child_process';
import { existsSync, mkdtempSync, rmSync } from 'node:fs';
import { loadavg, tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import * as ort from 'onnxruntime-node';
import { Command } from 'commander';
import {
  createNetwork,
  exportBackbone,
  initBackend,
  layersModelToOnnx,
  loadBackbone,
  ONNX_INPUT_NAME,
} from '@maskcon/model';

const here = dirname(fileURLToPath(import.meta.url));
const o = new Command('pnpm bench embed')
  .option('--sizes <list>', 'image sizes', '32,224')
  .option('--seconds <s>', 'timed seconds per measurement', '8')
  .option('--threads <n>', 'ONNX Runtime and PyTorch threads', '2')
  .option('--workers <n>', 'tfjs-wasm worker processes', '2')
  .option('--no-torch', 'skip PyTorch')
  .option(
    '--python <path>',
    'python with torch',
    existsSync('/usr/bin/python3') ? '/usr/bin/python3' : 'python3',
  )
  .parse()
  .opts();
const sizes = String(o.sizes).split(',').map(Number);
const seconds = Number(o.seconds);
const threads = Number(o.threads);
const workers = Number(o.workers);
const batchOf = (px: number) => (px <= 64 ? 64 : 16);
const load = () =>
  loadavg()
    .map((v) => v.toFixed(2))
    .join(' ');

console.log(`load average before: ${load()} (2 cores shared; numbers are noisy when it is high)`);
await initBackend('wasm', () => {});
const work = mkdtempSync(join(tmpdir(), 'maskcon-bench-embed-'));
const rows: { px: number; engine: string; par: string; batch: number; ips: number }[] = [];

function worker(dir: string, batch: number): Promise<{ images: number; seconds: number }> {
  return new Promise((resolveRun, reject) => {
    const p = spawn(
      process.execPath,
      ['--import', 'tsx', join(here, 'embed-tfjs-worker.ts'), dir, String(batch), String(seconds)],
      {
        stdio: ['ignore', 'pipe', 'inherit'],
      },
    );
    let out = '';
    p.stdout.on('data', (d) => (out += d));
    p.once('exit', (code) =>
      code === 0
        ? resolveRun(JSON.parse(out.trim().split('\n').pop()!))
        : reject(new Error(`tfjs worker exited ${code}`)),
    );
  });
}

try {
  for (const px of sizes) {
    const batch = batchOf(px);
    const stem = px <= 64 ? 'small' : 'standard';
    const p = createNetwork(
      { arch: 'resnet18', width: 0, stem, inChannels: 3, projHidden: 512, projDim: 128 },
      0,
    );
    const dir = join(work, `r18-${px}`);
    await exportBackbone(p, dir, {
      arch: 'resnet18',
      inputShape: [px, px, 3],
      mean: [0.5, 0.5, 0.5],
      std: [0.25, 0.25, 0.25],
    });
    p.dispose();

    // tfjs-wasm, W processes at once.
    const res = await Promise.all(Array.from({ length: workers }, () => worker(dir, batch)));
    rows.push({
      px,
      engine: 'tfjs-wasm',
      par: `${workers} workers`,
      batch,
      ips: res.reduce((s, r) => s + r.images / r.seconds, 0),
    });

    // onnxruntime-node, T threads.
    const { model, meta } = await loadBackbone(dir);
    const session = await ort.InferenceSession.create(layersModelToOnnx(model, meta), {
      graphOptimizationLevel: 'all',
      executionMode: 'sequential',
      intraOpNumThreads: threads,
      interOpNumThreads: 1,
    });
    model.dispose();
    const x = new ort.Tensor(
      'float32',
      Float32Array.from({ length: batch * 3 * px * px }, (_, i) => Math.sin(i)),
      [batch, 3, px, px],
    );
    await session.run({ [ONNX_INPUT_NAME]: x }); // warm-up
    let n = 0;
    const t0 = performance.now();
    let dt = 0;
    do {
      await session.run({ [ONNX_INPUT_NAME]: x });
      n += batch;
      dt = (performance.now() - t0) / 1000;
    } while (dt < seconds);
    await session.release();
    rows.push({ px, engine: 'onnxruntime-node', par: `${threads} threads`, batch, ips: n / dt });

    if (o.torch) {
      const r = spawnSync(
        o.python,
        [join(here, 'embed_torch.py'), String(px), String(batch), String(seconds), String(threads)],
        { encoding: 'utf8' },
      );
      if (r.status === 0) {
        const t = JSON.parse(r.stdout.trim().split('\n').pop()!) as {
          images: number;
          seconds: number;
          threads: number;
        };
        rows.push({
          px,
          engine: 'pytorch (cpu)',
          par: `${t.threads} threads`,
          batch,
          ips: t.images / t.seconds,
        });
      } else
        console.log(
          `pytorch: failed (${r.stderr.trim().split('\n').pop()}); apt-get install python3-torch python3-torchvision`,
        );
    }
  }
} finally {
  rmSync(work, { recursive: true, force: true });
}

console.log(`\nResNet-18 backbone forward, images/s (batch as shown; random weights, float32)\n`);
const head = ['px', 'engine', 'parallelism', 'batch', 'images/s', 'vs PyTorch'];
const table = rows.map((r) => {
  const torch = rows.find((t) => t.px === r.px && t.engine.startsWith('pytorch'));
  return [
    String(r.px),
    r.engine,
    r.par,
    String(r.batch),
    r.ips.toFixed(1),
    torch ? `${(r.ips / torch.ips).toFixed(2)}×` : '-',
  ];
});
const w = head.map((h, c) => Math.max(h.length, ...table.map((r) => r[c].length)));
console.log(head.map((h, c) => h.padEnd(w[c])).join('  '));
for (const r of table) console.log(r.map((v, c) => v.padEnd(w[c])).join('  '));
console.log(`\nload average after: ${load()}`);
