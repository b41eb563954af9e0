import { gzipSync } from 'node:zlib';
import { mkdirSync, writeFileSync } from 'node:fs';
import { buildDataset } from '@maskcon/datasets';
import { join } from 'node:path';

/** Writes a gzip IDX file (big-endian header: magic, dims) as Fashion-MNIST publishes them. */
function writeIdx(path: string, magic: number, dims: number[], body: Uint8Array): void {
  const header = Buffer.alloc(4 + 4 * dims.length);
  header.writeUInt32BE(magic, 0);
  dims.forEach((d, i) => header.writeUInt32BE(d, 4 + 4 * i));
  writeFileSync(path, gzipSync(Buffer.concat([header, Buffer.from(body)])));
}

/**
 * A small Fashion-MNIST lookalike in the real file layout: each class has its own bright
 * stripe pattern plus seeded noise, so a model can learn something in a few steps.
 */
export function writeFashionMnistLike(
  dir: string,
  perClassTrain: number,
  perClassTest: number,
  seed = 1,
): void {
  let s = seed >>> 0;
  const rnd = () => (s = (Math.imul(s, 1664525) + 1013904223) >>> 0) / 4294967296;
  const make = (prefix: string, perClass: number) => {
    const n = perClass * 10;
    const pixels = new Uint8Array(n * 784);
    const labels = new Uint8Array(n);
    for (let i = 0; i < n; i++) {
      const label = i % 10;
      labels[i] = label;
      for (let y = 0; y < 28; y++) {
        for (let x = 0; x < 28; x++) {
          const stripe = (x + label * 3) % 10 < 3 ? 180 : 20;
          pixels[i * 784 + y * 28 + x] = Math.min(255, stripe + Math.floor(rnd() * 60));
        }
      }
    }
    writeIdx(join(dir, `${prefix}-images-idx3-ubyte.gz`), 0x803, [n, 28, 28], pixels);
    writeIdx(join(dir, `${prefix}-labels-idx1-ubyte.gz`), 0x801, [n], labels);
  };
  make('train', perClassTrain);
  make('t10k', perClassTest);
}

/**
 * A tiny Fashion-MNIST lookalike (10·perClassTrain train, 10·perClassTest test images) written
 * under `work/raw` and built into `work/data/fashion_mnist.sqlite`; returns the index path.
 */
export async function buildTinyFashionIndex(
  work: string,
  perClassTrain: number,
  perClassTest: number,
  seed = 1,
): Promise<string> {
  const raw = join(work, 'raw');
  mkdirSync(raw, { recursive: true });
  writeFashionMnistLike(raw, perClassTrain, perClassTest, seed);
  return (await buildDataset('fashion_mnist', { root: raw, outDir: join(work, 'data') })).path;
}
