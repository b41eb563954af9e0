/**
 * Augmentation throughput (images/s) of the paper's strong and weak pipelines, ours beside
 * torchvision + PIL on the same images in the same run.
 *   32×32:   CIFAR-style strong (RRC → flip → CIFAR10Policy) and weak (RRC → flip) on 32×32 images
 *   224×224: cars196 strong (RRC → flip → perspective → jitter → grey → blur) and sop/cars weak
 *            (RRC → perspective → flip) on 256×320 images (256 short side)
 * Columns: one thread in-process (augmentBatch), the BatchLoader with 1 worker and with one
 * worker per core (both views of a batch use the pipeline, counted as two images), and
 * torchvision in one process and in a pool of one process per core. Our side reuses its batch
 * arrays (augmentBatch's `out`, BatchLoader.release), as a training loop would.
 *
 * Run: pnpm exec tsx packages/augment/scripts/bench-augment.ts [seconds per cell, default 3]
 */
import { writeIndex, type DatasetSource, type ImageU8 } from '@maskcon/datasets';
import { spawnSync } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { availableParallelism, tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import {
  augmentBatch,
  BatchLoader,
  makePipeline,
  Rng,
  type Pipeline,
  type PipelineSpec,
} from '../src/index.js';

const SECONDS = Number(process.argv[2] ?? 3);
const COUNT = 64;
const H = 256;
const W = 320;
const CORES = availableParallelism();
const IMAGENET = { mean: [0.485, 0.456, 0.406], std: [0.229, 0.224, 0.225] };

/** A photo-like test image: smooth colour gradients, a few edges, mild noise. */
function photo(h: number, w: number, seed: number): ImageU8 {
  const rng = new Rng(seed);
  const data = new Uint8Array(h * w * 3);
  const fx = 1 + rng.int(5);
  const fy = 1 + rng.int(5);
  for (let y = 0; y < h; y++) {
    for (let x = 0; x < w; x++) {
      const o = (y * w + x) * 3;
      const edge = ((x * fx) >> 6) % 2 === ((y * fy) >> 6) % 2 ? 40 : 0;
      data[o] = Math.min(255, (x * 200) / w + edge + rng.int(24));
      data[o + 1] = Math.min(255, (y * 200) / h + rng.int(24));
      data[o + 2] = Math.min(255, ((x + y) * 120) / (w + h) + 60 - edge / 2 + rng.int(24));
    }
  }
  return { data, height: h, width: w, channels: 3 };
}

function crop32(img: ImageU8): ImageU8 {
  const data = new Uint8Array(32 * 32 * 3);
  for (let y = 0; y < 32; y++)
    data.set(img.data.subarray(y * img.width * 3, y * img.width * 3 + 96), y * 96);
  return { data, height: 32, width: 32, channels: 3 };
}

function source(name: string, images: ImageU8[]): DatasetSource {
  return {
    name,
    builderVersion: '1',
    fineClassNames: ['a', 'b'],
    coarseClassNames: ['ab'],
    sourceFiles: [],
    readSplit: (split) => ({
      records: (split === 'train' ? images : images.slice(0, 2)).map((image, i) => ({
        fine: i % 2,
        coarse: 0,
        image,
      })),
    }),
  };
}

function inProcess(images: ImageU8[], pipeline: Pipeline): number {
  const rng = new Rng(1);
  const batch = images.slice(0, 16);
  const out = augmentBatch(batch, pipeline, rng); // warm-up; its array is reused below
  let n = 0;
  const t0 = performance.now();
  while (performance.now() - t0 < SECONDS * 1000) {
    augmentBatch(batch, pipeline, rng, out);
    n += 16;
  }
  return n / ((performance.now() - t0) / 1000);
}

async function viaLoader(indexPath: string, spec: PipelineSpec, workers: number): Promise<number> {
  const loader = new BatchLoader({
    indexPath,
    batchSize: 16,
    seed: 1,
    query: spec,
    key: spec,
    workers,
    prefetch: workers + 2,
  });
  try {
    for await (const _ of loader.epoch(0)) void _; // warm-up (worker start, JIT)
    let n = 0;
    const t0 = performance.now();
    for (let e = 1; performance.now() - t0 < SECONDS * 1000; e++) {
      for await (const b of loader.epoch(e)) {
        n += 2 * b.indices.length;
        loader.release(b);
      }
    }
    return n / ((performance.now() - t0) / 1000);
  } finally {
    await loader.close();
  }
}

function torchvision(
  dir: string,
  big: ImageU8[],
): Record<string, { single: number; all: number }> | string {
  const python = ['/usr/bin/python3', 'python3'].find(
    (p) => spawnSync(p, ['-c', 'import torchvision, PIL'], { stdio: 'ignore' }).status === 0,
  );
  if (!python)
    return 'python3 with torchvision and PIL not found (apt-get install python3-torchvision python3-pil): torchvision column skipped';
  const bin = join(dir, 'images.bin');
  const all = new Uint8Array(COUNT * H * W * 3);
  big.forEach((img, i) => all.set(img.data, i * H * W * 3));
  writeFileSync(bin, all);
  const script = fileURLToPath(new URL('./bench-augment.py', import.meta.url));
  const r = spawnSync(
    python,
    [script, bin, String(COUNT), String(H), String(W), String(SECONDS), String(CORES)],
    { encoding: 'utf8' },
  );
  if (r.status !== 0)
    return `torchvision benchmark failed: ${r.stderr.trim().split('\n').slice(-3).join(' ')}`;
  return JSON.parse(r.stdout.trim().split('\n').at(-1)!) as Record<
    string,
    { single: number; all: number }
  >;
}

async function main(): Promise<void> {
  const dir = mkdtempSync(join(tmpdir(), 'maskcon-bench-'));
  try {
    const big = Array.from({ length: COUNT }, (_, i) => photo(H, W, i + 1));
    const small = big.map(crop32);
    const bigIndex = join(dir, 'bench224.sqlite');
    const smallIndex = join(dir, 'bench32.sqlite');
    await writeIndex(source('bench224', big), bigIndex);
    await writeIndex(source('bench32', small), smallIndex);

    const rows: {
      name: string;
      images: ImageU8[];
      index: string;
      spec: PipelineSpec;
      pipeline: Pipeline;
      key: string;
    }[] = [
      {
        name: 'strong 32×32 (CIFAR10Policy)',
        images: small,
        index: smallIndex,
        spec: { kind: 'strong', size: 32, ...IMAGENET },
        pipeline: makePipeline('strong', { size: 32, ...IMAGENET }),
        key: 'strong32',
      },
      {
        name: 'weak 32×32',
        images: small,
        index: smallIndex,
        spec: { kind: 'weak', size: 32, ...IMAGENET },
        pipeline: makePipeline('weak', { size: 32, ...IMAGENET }),
        key: 'weak32',
      },
      {
        name: 'strong 224×224 (cars196)',
        images: big,
        index: bigIndex,
        spec: { kind: 'strong', size: 224, ...IMAGENET, family: 'cars196' },
        pipeline: makePipeline('strong', { size: 224, ...IMAGENET, family: 'cars196' }),
        key: 'strong224',
      },
      {
        name: 'weak 224×224 (sop/cars196)',
        images: big,
        index: bigIndex,
        spec: { kind: 'weak', size: 224, ...IMAGENET, family: 'sop' },
        pipeline: makePipeline('weak', { size: 224, ...IMAGENET, family: 'sop' }),
        key: 'weak224',
      },
    ];
    console.error(`measuring ${rows.length} pipelines, ${SECONDS} s per cell, ${CORES} cores…`);
    const ours: { thread: number; one: number; all: number }[] = [];
    for (const r of rows) {
      ours.push({
        thread: inProcess(r.images, r.pipeline),
        one: await viaLoader(r.index, r.spec, 1),
        all: await viaLoader(r.index, r.spec, CORES),
      });
    }
    const tv = torchvision(dir, big);
    const fmt = (v: number | undefined) =>
      v === undefined ? 'n/a' : Math.round(v).toLocaleString('en-US');
    const header = `| pipeline | ours, 1 thread | ours, loader 1 worker | ours, loader ${CORES} workers | torchvision, 1 process | torchvision, ${CORES} processes | ours/torchvision per core |`;
    console.log(header);
    console.log(
      '|' +
        header
          .split('|')
          .slice(1, -1)
          .map(() => '---')
          .join('|') +
        '|',
    );
    rows.forEach((r, i) => {
      const t = typeof tv === 'string' ? undefined : tv[r.key];
      const ratio = t ? `${(ours[i].thread / t.single).toFixed(2)}×` : 'n/a';
      console.log(
        `| ${r.name} | ${fmt(ours[i].thread)} | ${fmt(ours[i].one)} | ${fmt(ours[i].all)} | ${fmt(t?.single)} | ${fmt(t?.all)} | ${ratio} |`,
      );
    });
    if (typeof tv === 'string') console.log(`\n${tv}`);
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}

await main();
