import { mkdirSync, mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { spawnSync } from 'node:child_process';
import { join, resolve } from 'node:path';
import { gzipSync } from 'node:zlib';

export function tempDir(prefix: string): string {
  return mkdtempSync(join(tmpdir(), `maskcon-datasets-${prefix}-`));
}

/** IDX bytes: big-endian magic 0x000008DD, DD big-endian u32 sizes, then the elements. */
export function idxBytes(
  dims: number[],
  elements: Uint8Array,
  magic = 0x0800 | dims.length,
): Buffer {
  const header = Buffer.alloc(4 + 4 * dims.length);
  header.writeUInt32BE(magic, 0);
  dims.forEach((d, i) => header.writeUInt32BE(d, 4 + 4 * i));
  return Buffer.concat([header, Buffer.from(elements)]);
}

/** Deterministic, distinct pixels for image `i` of a split (28×28 grey). */
export function expectedPixels(split: 'train' | 'test', i: number): Uint8Array {
  const out = new Uint8Array(28 * 28);
  const salt = split === 'train' ? 0 : 101;
  for (let p = 0; p < out.length; p++) out[p] = (i * 37 + p * 7 + salt + ((p * p) >> 3)) & 0xff;
  return out;
}

export function expectedLabel(split: 'train' | 'test', i: number): number {
  return split === 'train' ? (i * 7 + 9) % 10 : (i * 3 + 1) % 10;
}

export interface FakeFashionOptions {
  train?: number;
  test?: number;
  /** Replace a file's decompressed bytes before gzip (key: file name). */
  mutate?: Record<string, (bytes: Buffer) => Buffer>;
  /** Write these raw bytes as the file instead of gzip (key: file name). */
  raw?: Record<string, Buffer>;
  /** Leave these files out. */
  omit?: string[];
}

/** Write the four Fashion-MNIST .gz files in the real IDX format into `dir`. */
export function writeFakeFashionMnist(dir: string, options: FakeFashionOptions = {}): void {
  mkdirSync(dir, { recursive: true });
  const counts = { train: options.train ?? 12, test: options.test ?? 6 };
  for (const split of ['train', 'test'] as const) {
    const prefix = split === 'train' ? 'train' : 't10k';
    const n = counts[split];
    const pixels = new Uint8Array(n * 784);
    const labels = new Uint8Array(n);
    for (let i = 0; i < n; i++) {
      pixels.set(expectedPixels(split, i), i * 784);
      labels[i] = expectedLabel(split, i);
    }
    const files: Record<string, Buffer> = {
      [`${prefix}-images-idx3-ubyte.gz`]: idxBytes([n, 28, 28], pixels),
      [`${prefix}-labels-idx1-ubyte.gz`]: idxBytes([n], labels),
    };
    for (const [name, bytes] of Object.entries(files)) {
      if (options.omit?.includes(name)) continue;
      const raw = options.raw?.[name];
      if (raw) {
        writeFileSync(join(dir, name), raw);
        continue;
      }
      const mutate = options.mutate?.[name];
      writeFileSync(join(dir, name), gzipSync(mutate ? mutate(bytes) : bytes));
    }
  }
}

const REPO_ROOT = resolve(import.meta.dirname, '../../..');

/** Runs the datasets CLI (`pnpm datasets:*`) from the repository root, stack traces off. */
export function runDatasetsCli(args: string[]): {
  status: number | null;
  stdout: string;
  stderr: string;
} {
  const result = spawnSync(
    process.execPath,
    ['--import', 'tsx', 'packages/datasets/src/cli.ts', ...args],
    {
      cwd: REPO_ROOT,
      encoding: 'utf8',
      env: { ...process.env, MASKCON_DEBUG: '' },
    },
  );
  return { status: result.status, stdout: result.stdout, stderr: result.stderr };
}
