/**
 * Dataset benchmark: build rate and random batch reads of an ImageNet32 index.
 *
 *   node_modules/.bin/tsx packages/datasets/scripts/bench-datasets.ts [--n 1281167] [--batches 2000] [--batch 256] [--keep] [--dir DIR]
 *
 * 1. Generates `--n` train images (default 1,281,167, ImageNet32's train size) as the 10
 *    pickled `train_data_batch_*` files plus a `val_data` of min(50,000, n/25) images and a
 *    `map_clsloc.txt`, in the real format, streamed to disk in 2,048-row chunks (the pixels of
 *    the full set are ~3.9 GB and never in memory at once).
 * 2. Builds the index in a child process (`buildDataset('imagenet32')`), reporting images/s
 *    and the child's peak RSS.
 * 3. Reads `--batches` batches of `--batch` random train indices with `images()` in another
 *    child, the split opened with preloading disabled so every image comes from SQLite;
 *    reports batches/s, images/s and that child's peak RSS (its own, not the builder's).
 *
 * Everything lives in a temp folder (or `--dir`), deleted at the end unless `--keep`.
 */
import { spawnSync } from 'node:child_process';
import {
  closeSync,
  mkdirSync,
  mkdtempSync,
  openSync,
  rmSync,
  statSync,
  writeFileSync,
  writeSync,
} from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { parseArgs } from 'node:util';
import {
  buildDataset,
  createProgressPrinter,
  IMAGENET_GROUP_OF_WNID,
  openIndex,
} from '../src/index.js';
import { pickle, py } from '../test/archive-writers.js';

const PIXELS = 3072;
const CHUNK_ROWS = 2048;
const TRAIN_BATCHES = 10;

/** xorshift32: cheap deterministic bytes for the generated pixels and labels. */
class Rng {
  constructor(private state: number) {}
  next(): number {
    let x = this.state;
    x ^= x << 13;
    x ^= x >>> 17;
    x ^= x << 5;
    this.state = x >>> 0;
    return this.state;
  }
  fill(out: Uint8Array): void {
    const words = new Uint32Array(out.buffer, out.byteOffset, out.byteLength >>> 2);
    for (let i = 0; i < words.length; i++) words[i] = this.next();
  }
}

/**
 * Write one ImageNet32 batch pickle (protocol 2) with `count` images without holding its
 * pixels: the pickle is made with a marker in place of the pixel bytes, then written as
 * prefix (with the real length patched in) + streamed pixels + suffix.
 */
function writeBatch(path: string, count: number, rng: Rng): void {
  const labels = Array.from({ length: count }, () => (rng.next() % 1000) + 1);
  const marker = Buffer.alloc(300, 0xa5);
  const whole = pickle(
    py.dict([
      ['labels', py.ints(labels)],
      ['data', py.u8array([count, PIXELS], marker)],
    ]),
    'py2',
  );
  const at = whole.indexOf(marker);
  if (at < 5 || whole[at - 5] !== 0x54)
    throw new Error('unexpected pickle layout (BINSTRING expected before the pixels)');
  const prefix = Buffer.from(whole.subarray(0, at));
  prefix.writeUInt32LE(count * PIXELS, at - 4);
  const fd = openSync(path, 'w');
  try {
    writeSync(fd, prefix);
    const chunk = new Uint8Array(CHUNK_ROWS * PIXELS);
    for (let r = 0; r < count; r += CHUNK_ROWS) {
      const n = Math.min(CHUNK_ROWS, count - r);
      const view = chunk.subarray(0, n * PIXELS);
      rng.fill(view);
      writeSync(fd, view);
    }
    writeSync(fd, whole.subarray(at + marker.length));
  } finally {
    closeSync(fd);
  }
}

function generate(root: string, n: number): { train: number; test: number; bytes: number } {
  mkdirSync(root, { recursive: true });
  const wnids = Object.keys(IMAGENET_GROUP_OF_WNID).sort();
  writeFileSync(
    join(root, 'map_clsloc.txt'),
    wnids.map((w, i) => `${w} ${i + 1} class_${i + 1}`).join('\n') + '\n',
  );
  const rng = new Rng(0x9e3779b9);
  let bytes = 0;
  for (let b = 0; b < TRAIN_BATCHES; b++) {
    const count = Math.floor((n * (b + 1)) / TRAIN_BATCHES) - Math.floor((n * b) / TRAIN_BATCHES);
    const path = join(root, `train_data_batch_${b + 1}`);
    writeBatch(path, count, rng);
    bytes += statSync(path).size;
  }
  const test = Math.max(1, Math.min(50_000, Math.round(n / 25)));
  writeBatch(join(root, 'val_data'), test, rng);
  bytes += statSync(join(root, 'val_data')).size;
  return { train: n, test, bytes };
}

const mib = (bytes: number) => `${(bytes / 2 ** 20).toFixed(0)} MiB`;

/** Child: build the index and report. */
async function buildPhase(root: string, out: string): Promise<void> {
  const started = performance.now();
  const print = createProgressPrinter('imagenet32', undefined, 5000);
  let hashedAt = started; // when the checksum phase ended and writing began
  const result = await buildDataset('imagenet32', {
    root,
    outDir: out,
    force: true,
    onProgress: (p) => {
      if (p.phase === 'hash') hashedAt = performance.now();
      print(p);
    },
  });
  const seconds = (performance.now() - started) / 1000;
  const hashSeconds = (hashedAt - started) / 1000;
  const images = result.counts.train + result.counts.test;
  const cpu = process.cpuUsage();
  console.log(
    JSON.stringify({
      seconds,
      hashSeconds,
      images,
      cpuSeconds: (cpu.user + cpu.system) / 1e6,
      indexBytes: statSync(result.path).size,
      maxRssKiB: process.resourceUsage().maxRSS,
    }),
  );
}

/** Child: random batch reads from SQLite (no preload) and report. */
function readPhase(index: string, batches: number, batchSize: number): void {
  const opened = performance.now();
  const ds = openIndex(index, 'train', { preloadMaxBytes: 0 });
  const openSeconds = (performance.now() - opened) / 1000;
  const rng = new Rng(12345);
  const indices = new Int32Array(batchSize);
  let checksum = 0;
  const started = performance.now();
  for (let b = 0; b < batches; b++) {
    for (let k = 0; k < batchSize; k++) indices[k] = rng.next() % ds.size;
    const images = ds.images(indices);
    checksum = (checksum + images[batchSize - 1].data[b % PIXELS]) & 0xffff;
  }
  const seconds = (performance.now() - started) / 1000;
  ds.close();
  console.log(
    JSON.stringify({
      openSeconds,
      seconds,
      batches,
      batchSize,
      checksum,
      maxRssKiB: process.resourceUsage().maxRSS,
    }),
  );
}

function child(args: string[]): Record<string, number> {
  const run = spawnSync(
    process.execPath,
    [...process.execArgv, fileURLToPath(import.meta.url), ...args],
    {
      encoding: 'utf8',
      stdio: ['ignore', 'pipe', 'inherit'],
      maxBuffer: 1 << 20,
    },
  );
  if (run.status !== 0)
    throw new Error(`bench child ${args[0]} failed with status ${run.status}: ${run.stdout}`);
  return JSON.parse(run.stdout.trim().split('\n').pop() as string) as Record<string, number>;
}

async function main(): Promise<void> {
  const { values } = parseArgs({
    options: {
      n: { type: 'string', default: '1281167' },
      batches: { type: 'string', default: '2000' },
      batch: { type: 'string', default: '256' },
      dir: { type: 'string' },
      keep: { type: 'boolean', default: false },
      phase: { type: 'string' },
      root: { type: 'string' },
      out: { type: 'string' },
      index: { type: 'string' },
    },
  });
  if (values.phase === 'build') return buildPhase(values.root as string, values.out as string);
  if (values.phase === 'read')
    return readPhase(values.index as string, Number(values.batches), Number(values.batch));

  const n = Number(values.n);
  if (!Number.isInteger(n) || n < TRAIN_BATCHES)
    throw new Error(`--n must be an integer ≥ ${TRAIN_BATCHES}`);
  const dir = values.dir ?? mkdtempSync(join(tmpdir(), 'maskcon-bench-datasets-'));
  const root = join(dir, 'imagenet32');
  const out = join(dir, 'out');
  try {
    let t = performance.now();
    const gen = generate(root, n);
    console.log(
      `generated ${gen.train} train + ${gen.test} val ImageNet32 images as pickles (${mib(gen.bytes)}) in ${((performance.now() - t) / 1000).toFixed(1)}s in ${dir}`,
    );

    t = performance.now();
    const build = child(['--phase', 'build', '--root', root, '--out', out]);
    console.log(
      `build: ${build.images} images in ${build.seconds.toFixed(1)}s = ${Math.round(build.images / build.seconds)} images/s ` +
        `(checksums ${build.hashSeconds.toFixed(1)}s, then writing ${Math.round(build.images / (build.seconds - build.hashSeconds))} images/s); ` +
        `CPU ${build.cpuSeconds.toFixed(1)}s (${((100 * build.cpuSeconds) / build.seconds).toFixed(0)}% of one core); index ${mib(build.indexBytes)}; peak RSS ${mib(build.maxRssKiB * 1024)}`,
    );

    const read = child([
      '--phase',
      'read',
      '--index',
      join(out, 'imagenet32.sqlite'),
      '--batches',
      values.batches as string,
      '--batch',
      values.batch as string,
    ]);
    console.log(
      `read:  open ${read.openSeconds.toFixed(2)}s; ${read.batches} random batches of ${read.batchSize} in ${read.seconds.toFixed(2)}s = ${(read.batches / read.seconds).toFixed(1)} batches/s (${Math.round((read.batches * read.batchSize) / read.seconds)} images/s), no preload; peak RSS ${mib(read.maxRssKiB * 1024)}`,
    );
  } finally {
    if (!values.keep) rmSync(dir, { recursive: true, force: true });
  }
}

main().catch((error: unknown) => {
  console.error(error instanceof Error ? error.message : String(error));
  process.exitCode = 1;
});
