import Database from 'better-sqlite3';
import { spawn, spawnSync } from 'node:child_process';
import { createHash } from 'node:crypto';
import { existsSync, mkdirSync, readdirSync, readFileSync, statSync, writeFileSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { describe, expect, it } from 'vitest';
import { buildDataset } from '../src/index.js';
import { removeStaleTempFiles } from '../src/write-index.js';
import { tempDir } from './helpers.js';

const REPO = resolve(import.meta.dirname, '../../..');

/**
 * A CIFAR-10 binary folder big enough that building cifartoy_good from it takes a while:
 * 5 train batches of `perBatch` records and a test batch of `perBatch / 2`. Record bytes are
 * a cheap function of (batch, index) so every image differs.
 */
function writeCifar10Binary(root: string, perBatch: number): void {
  const folder = join(root, 'cifar-10-batches-bin');
  mkdirSync(folder, { recursive: true });
  const pattern = Buffer.alloc(3072);
  for (let p = 0; p < 3072; p++) pattern[p] = (p * 7 + (p >> 10) * 50) & 0xff;
  const batch = (b: number, n: number): Buffer => {
    const out = Buffer.alloc(n * 3073);
    for (let i = 0; i < n; i++) {
      const at = i * 3073;
      out[at] = (b * 3 + i * 7) % 10;
      pattern.copy(out, at + 1);
      out.writeUInt32LE((b << 24) | i, at + 1); // first pixels encode (batch, index)
    }
    return out;
  };
  for (let b = 1; b <= 5; b++)
    writeFileSync(join(folder, `data_batch_${b}.bin`), batch(b, perBatch));
  writeFileSync(join(folder, 'test_batch.bin'), batch(0, perBatch / 2));
}

/** Every table's rows in primary-key order, hashed; meta as an object without built_at. */
function indexDump(path: string) {
  const db = new Database(path, { readonly: true });
  try {
    const schema = db.prepare('SELECT type, name, sql FROM sqlite_master ORDER BY name').all();
    const meta = Object.fromEntries(
      (
        db.prepare('SELECT key, value FROM meta ORDER BY key').all() as {
          key: string;
          value: string;
        }[]
      )
        .filter((r) => r.key !== 'built_at')
        .map((r) => [r.key, r.value]),
    );
    const hashRows = (sql: string) => {
      const h = createHash('sha256');
      let n = 0;
      for (const row of db.prepare(sql).raw(true).iterate() as IterableIterator<unknown[]>) {
        for (const v of row) h.update(Buffer.isBuffer(v) ? v : Buffer.from(JSON.stringify(v)));
        n += 1;
      }
      return { rows: n, sha256: h.digest('hex') };
    };
    return {
      schema,
      meta,
      sources: db.prepare('SELECT name, path, bytes, sha256 FROM sources ORDER BY name').all(),
      classes: db.prepare('SELECT level, id, name FROM classes ORDER BY level, id').all(),
      images: hashRows(
        'SELECT split, idx, fine, coarse, height, width, channels, pixels, source_path FROM images ORDER BY split, idx',
      ),
      builtAt: (
        db.prepare("SELECT value FROM meta WHERE key = 'built_at'").get() as { value: string }
      ).value,
    };
  } finally {
    db.close();
  }
}

describe('an interrupted build (kill -9)', () => {
  it('leaves no index; the next build removes the stale temp file and writes an index identical to an uninterrupted one', async () => {
    const root = tempDir('kill-root');
    writeCifar10Binary(root, 1500); // 8,250 records, 25 MB
    const out = tempDir('kill-out');
    const index = join(out, 'cifartoy_good.sqlite');

    const child = spawn(
      process.execPath,
      [
        '--import',
        'tsx',
        'packages/datasets/src/cli.ts',
        'build',
        'cifartoy_good',
        '--root',
        root,
        '--out',
        out,
      ],
      {
        cwd: REPO,
        stdio: 'ignore',
      },
    );
    const tmp = `${index}.tmp-${child.pid}`;
    const exited = new Promise<number | null>((done) => child.on('exit', (code) => done(code)));
    let running = true;
    void exited.then(() => (running = false));
    // Kill once the writer has put some rows into its temp file (the whole index is ~27 MB).
    const deadline = Date.now() + 30_000;
    while (running && Date.now() < deadline && !(existsSync(tmp) && statSync(tmp).size > 2 ** 19)) {
      await new Promise((r) => setTimeout(r, 5));
    }
    expect(running, 'the build finished before it could be killed; make the dataset bigger').toBe(
      true,
    );
    child.kill('SIGKILL');
    await exited;

    expect(existsSync(index)).toBe(false);
    expect(readdirSync(out)).toEqual([`cifartoy_good.sqlite.tmp-${child.pid}`]); // what kill -9 leaves

    const rebuilt = await buildDataset('cifartoy_good', { root, outDir: out });
    expect(rebuilt.upToDate).toBe(false);
    expect(readdirSync(out)).toEqual(['cifartoy_good.sqlite']); // stale temp file removed

    const cleanOut = tempDir('kill-clean');
    const clean = await buildDataset('cifartoy_good', { root, outDir: cleanOut });
    // 8 of 10 CIFAR-10 classes are kept: labels (3b + 7i) % 10 skip 4 and 6.
    const kept = (b: number, n: number) =>
      Array.from({ length: n }, (_, i) => (b * 3 + i * 7) % 10).filter((l) => l !== 4 && l !== 6)
        .length;
    const train = [1, 2, 3, 4, 5].reduce((s, b) => s + kept(b, 1500), 0);
    expect(clean.counts).toEqual({ train, test: kept(0, 750) });
    expect(rebuilt.counts).toEqual(clean.counts);

    const a = indexDump(rebuilt.path);
    const b = indexDump(clean.path);
    expect(a.images.rows).toBe(train + kept(0, 750));
    expect(a.classes).toHaveLength(8 + 2);
    expect(a.sources).toHaveLength(6); // 5 train batches and the test batch
    const { builtAt: builtA, ...restA } = a;
    const { builtAt: builtB, ...restB } = b;
    expect(restA).toEqual(restB);

    // Deterministic down to the bytes: only the built_at value differs.
    const bytesA = readFileSync(rebuilt.path);
    const bytesB = readFileSync(clean.path);
    expect(bytesA.length).toBe(bytesB.length);
    const at = bytesA.indexOf(builtA);
    expect(at).toBeGreaterThan(0);
    Buffer.from(builtB).copy(bytesA, at);
    expect(bytesA.equals(bytesB)).toBe(true);
  }, 60_000);

  it.each([
    'SIGINT',
    'SIGTERM',
  ] as const)('%s during a build deletes its temp file before the process exits (issue 16 item 10)', async (signal) => {
    const root = tempDir('sig-root');
    writeCifar10Binary(root, 1500);
    const out = tempDir('sig-out');
    const index = join(out, 'cifartoy_good.sqlite');
    const child = spawn(
      process.execPath,
      [
        '--import',
        'tsx',
        'packages/datasets/src/cli.ts',
        'build',
        'cifartoy_good',
        '--root',
        root,
        '--out',
        out,
      ],
      { cwd: REPO, stdio: 'ignore' },
    );
    const tmp = `${index}.tmp-${child.pid}`;
    const exited = new Promise<[number | null, NodeJS.Signals | null]>((done) =>
      child.on('exit', (code, sig) => done([code, sig])),
    );
    let running = true;
    void exited.then(() => (running = false));
    const deadline = Date.now() + 30_000;
    while (running && Date.now() < deadline && !(existsSync(tmp) && statSync(tmp).size > 2 ** 19)) {
      await new Promise((r) => setTimeout(r, 5));
    }
    expect(running, 'the build finished before the signal; make the dataset bigger').toBe(true);
    expect(readdirSync(out)).toContain(`cifartoy_good.sqlite.tmp-${child.pid}`);
    child.kill(signal);
    // The process ends as killed by the signal (the default action, raised again).
    expect(await exited).toEqual([null, signal]);
    expect(readdirSync(out)).toEqual([]);
  }, 60_000);

  it('removes temp files of dead builds only', () => {
    const dir = tempDir('stale');
    const index = join(dir, 'x.sqlite');
    const dead = spawnSync(process.execPath, ['-e', '0']).pid as number; // exited: its pid is free
    for (const name of [
      `x.sqlite.tmp-${dead}`,
      `x.sqlite.tmp-${process.ppid}`,
      `x.sqlite.tmp-${process.pid}`,
      'x.sqlite.tmp-abc',
      'y.sqlite.tmp-1',
    ]) {
      writeFileSync(join(dir, name), '');
    }
    expect(removeStaleTempFiles(index)).toEqual([join(dir, `x.sqlite.tmp-${dead}`)]);
    expect(readdirSync(dir).sort()).toEqual(
      [
        `x.sqlite.tmp-${process.pid}`,
        `x.sqlite.tmp-${process.ppid}`,
        'x.sqlite.tmp-abc',
        'y.sqlite.tmp-1',
      ].sort(),
    );
  });
});
