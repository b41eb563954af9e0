/**
 * Throughput of the weak pipeline (RandomResizedCrop + flip + normalise), single thread.
 * Run: cd packages/augment && pnpm exec tsx scripts/bench.ts
 */
import type { ImageU8 } from '@maskcon/datasets';
import { augmentBatch, makePipeline, Rng } from '../src/index.js';

function noise(h: number, w: number, c: number, rng: Rng): ImageU8 {
  const data = new Uint8Array(h * w * c);
  for (let i = 0; i < data.length; i++) data[i] = rng.int(256);
  return { data, height: h, width: w, channels: c };
}

function bench(label: string, h: number, c: number, kind: 'weak' | 'test'): void {
  const rng = new Rng(0);
  const images = Array.from({ length: 256 }, () => noise(h, h, c, rng));
  const pipeline = makePipeline(kind, {
    size: h,
    mean: new Array(c).fill(0.5),
    std: new Array(c).fill(0.25),
  });
  for (let i = 0; i < 50; i++) augmentBatch(images, pipeline, rng); // warm-up
  const rounds = 400;
  const t0 = performance.now();
  for (let i = 0; i < rounds; i++) augmentBatch(images, pipeline, rng);
  const seconds = (performance.now() - t0) / 1000;
  const perSecond = (rounds * images.length) / seconds;
  console.log(`${label.padEnd(36)} ${Math.round(perSecond).toLocaleString('en-US')} images/s`);
}

bench('weak 28×28×1 (Fashion-MNIST)', 28, 1, 'weak');
bench('weak 32×32×3 (CIFAR)', 32, 3, 'weak');
bench('test 32×32×3 (Resize identity)', 32, 3, 'test');
