import { beforeAll, describe, expect, it } from 'vitest';
import { spawn, spawnSync } from 'node:child_process';
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import Database from 'better-sqlite3';
import sharp from 'sharp';
import { createNetwork, exportBackbone, initBackend } from '@maskcon/model';
import {
  decodeForModel,
  embedCatalogue,
  EmbeddingStore,
  imagesCatalogue,
  modelIdentity,
  openEngine,
  resolveModel,
} from '../src/index.js';

const repo = resolve(import.meta.dirname, '..', '..', '..');
const work = mkdtempSync(join(tmpdir(), 'maskcon-search-embed-'));
const modelDir = join(work, 'model');
const images = join(work, 'images');

/** A seeded image with a class-like pattern, so features differ between images. */
function pattern(seed: number, w: number, h: number): Buffer {
  let s = seed * 2654435761;
  const rnd = () => (s = (Math.imul(s, 1664525) + 1013904223) >>> 0) / 4294967296;
  const px = Buffer.alloc(w * h * 3);
  for (let y = 0; y < h; y++)
    for (let x = 0; x < w; x++)
      for (let c = 0; c < 3; c++)
        px[(y * w + x) * 3 + c] =
          ((x * ((seed % 5) + 1) + y * c + seed * 17) % 200) + Math.floor(rnd() * 40);
  return px;
}

async function writeImage(file: string, seed: number, w = 20, h = 20): Promise<void> {
  const img = sharp(pattern(seed, w, h), { raw: { width: w, height: h, channels: 3 } });
  if (file.endsWith('.png')) await img.png().toFile(file);
  else if (file.endsWith('.webp')) await img.webp({ lossless: true }).toFile(file);
  else await img.jpeg({ quality: 95 }).toFile(file);
}

function cli(args: string[]) {
  return spawnSync(process.execPath, ['--import', 'tsx', 'packages/search/src/cli.ts', ...args], {
    cwd: repo,
    encoding: 'utf8',
    timeout: 300_000,
  });
}

function storeRows(file: string): Map<string, Buffer> {
  const db = new Database(file, { readonly: true });
  const rows = db.prepare('SELECT source, vector FROM items').all() as {
    source: string;
    vector: Buffer;
  }[];
  db.close();
  return new Map(rows.map((r) => [r.source, r.vector]));
}

beforeAll(async () => {
  await initBackend('wasm', () => {});
  const p = createNetwork(
    { arch: 'resnet-mini', width: 8, inChannels: 3, projHidden: 8, projDim: 4 },
    7,
  );
  await exportBackbone(p, modelDir, {
    arch: 'resnet-mini',
    inputShape: [16, 16, 3],
    mean: [0.5, 0.5, 0.5],
    std: [0.25, 0.25, 0.25],
  });
  mkdirSync(join(images, 'sub', 'deeper'), { recursive: true });
  const exts = ['.png', '.jpg', '.webp'];
  for (let i = 0; i < 60; i++) {
    const dir =
      i % 3 === 0 ? join(images, 'sub') : i % 7 === 0 ? join(images, 'sub', 'deeper') : images;
    // Any size and aspect: some non-square, some large.
    const [w, h] = i % 5 === 0 ? [40, 24] : i % 11 === 0 ? [300, 300] : [20, 20];
    await writeImage(join(dir, `img${String(i).padStart(3, '0')}${exts[i % 3]}`), i, w, h);
  }
  writeFileSync(join(images, 'notes.txt'), 'not an image, and not looked at');
});

describe('pnpm embed over a folder of images', () => {
  it('embeds every image, then only what changed; ONNX and TF.js engines agree', async () => {
    const m = resolveModel(modelDir);
    const tfjs = await openEngine(m.modelDir, { engine: 'tfjs', backend: 'cpu' });
    const onnx = await openEngine(m.modelDir, { engine: 'auto' });
    expect(onnx.name).toBe('onnx'); // onnxruntime-node loads here, so auto picks it
    const identity = modelIdentity(m, tfjs.meta, tfjs.dim);
    const a = EmbeddingStore.open(join(work, 'a.sqlite'), { create: true });
    const r1 = await embedCatalogue(a, await imagesCatalogue(images), tfjs, identity, {
      batchSize: 7,
    });
    expect(r1).toMatchObject({ added: 60, updated: 0, unchanged: 0, removed: 0 });
    const b = EmbeddingStore.open(join(work, 'b.sqlite'), { create: true });
    await embedCatalogue(b, await imagesCatalogue(images), onnx, identity, { batchSize: 16 });
    const va = storeRows(a.file);
    const vb = storeRows(b.file);
    expect([...va.keys()].sort()).toEqual([...vb.keys()].sort());
    let worst = 1;
    for (const [k, x] of va) {
      const fa = new Float32Array(new Uint8Array(x).buffer);
      const fb = new Float32Array(new Uint8Array(vb.get(k)!).buffer);
      let dot = 0;
      let na = 0;
      for (let i = 0; i < fa.length; i++) {
        dot += fa[i] * fb[i];
        na += fa[i] * fa[i];
      }
      expect(Math.abs(na - 1)).toBeLessThan(1e-5); // stored unit vectors
      worst = Math.min(worst, dot);
    }
    expect(worst).toBeGreaterThan(0.99999);
    b.close();

    // Change one file, add one, delete one: only those are touched.
    await writeImage(join(images, 'img001.jpg'), 1001);
    await writeImage(join(images, 'new.png'), 2002);
    rmSync(join(images, 'img002.webp'));
    const before = storeRows(a.file);
    const r2 = await embedCatalogue(a, await imagesCatalogue(images), tfjs, identity, {
      batchSize: 7,
    });
    expect(r2).toMatchObject({ added: 1, updated: 1, unchanged: 58, removed: 1 });
    const after = storeRows(a.file);
    expect(after.size).toBe(60);
    expect(after.has(`file:${join(images, 'img002.webp')}`)).toBe(false);
    expect(
      after
        .get(`file:${join(images, 'img001.jpg')}`)!
        .equals(before.get(`file:${join(images, 'img001.jpg')}`)!),
    ).toBe(false);
    expect(
      after
        .get(`file:${join(images, 'img004.jpg')}`)!
        .equals(before.get(`file:${join(images, 'img004.jpg')}`)!),
    ).toBe(true);

    // Another model's store is refused with a sentence.
    const other = { ...identity, weightsHash: 'f'.repeat(64) };
    await expect(embedCatalogue(a, await imagesCatalogue(images), tfjs, other)).rejects.toThrow(
      /holds features of another model .*--replace-model/,
    );
    a.close();
    await tfjs.close();
    await onnx.close();
  });

  it('applies EXIF orientation', async () => {
    const w = 24;
    const h = 16;
    const upright = join(work, 'upright.jpg');
    await sharp(pattern(5, w, h), { raw: { width: w, height: h, channels: 3 } })
      .jpeg({ quality: 100 })
      .toFile(upright);
    // The same picture stored rotated 90° counter-clockwise, tagged "rotate 90° clockwise to display" (6).
    const tagged = join(work, 'tagged.jpg');
    await sharp(pattern(5, w, h), { raw: { width: w, height: h, channels: 3 } })
      .rotate(-90)
      .jpeg({ quality: 100 })
      .withMetadata({ orientation: 6 })
      .toFile(tagged);
    const a = await decodeForModel(upright, 16, 3);
    const b = await decodeForModel(tagged, 16, 3);
    let diff = 0;
    for (let i = 0; i < a.data.length; i++) diff += Math.abs(a.data[i] - b.data[i]);
    expect(diff / a.data.length).toBeLessThan(4);
    // Without the tag the stored pixels are far from the upright picture.
    const untagged = join(work, 'untagged.jpg');
    await sharp(tagged).jpeg({ quality: 100 }).toFile(untagged); // metadata dropped
    const c = await decodeForModel(untagged, 16, 3);
    let far = 0;
    for (let i = 0; i < a.data.length; i++) far += Math.abs(a.data[i] - c.data[i]);
    expect(far / a.data.length).toBeGreaterThan(10);
  });

  it('names a file that is not an image, or skips it with --skip-bad', () => {
    const bad = join(work, 'bad-images');
    mkdirSync(bad, { recursive: true });
    writeFileSync(join(bad, 'a.jpg'), 'this is text with a .jpg name');
    spawnSync('cp', [join(images, 'img004.jpg'), join(bad, 'b.jpg')]);
    const out = join(work, 'bad.sqlite');
    const r = cli(['embed', modelDir, '--images', bad, '--out', out, '--engine', 'onnx']);
    expect(r.status).toBe(1);
    expect(r.stderr).toMatch(/a\.jpg (is not an image|could not be decoded).*--skip-bad/);
    const s = cli([
      'embed',
      modelDir,
      '--images',
      bad,
      '--out',
      out,
      '--engine',
      'onnx',
      '--skip-bad',
    ]);
    expect(s.status, s.stderr).toBe(0);
    expect(s.stderr).toMatch(/skipped .*a\.jpg/);
    expect(s.stdout).toMatch(/1 items \(1 added, 0 changed, 0 unchanged, 0 removed, 1 skipped\)/);
  });

  it('resumes after kill -9 with only whole rows, ending as an uninterrupted run', async () => {
    const many = join(work, 'many');
    mkdirSync(many);
    for (let i = 0; i < 400; i++)
      await writeImage(join(many, `m${String(i).padStart(4, '0')}.png`), 5000 + i, 16, 16);
    const clean = join(work, 'clean.sqlite');
    const c = cli([
      'embed',
      modelDir,
      '--images',
      many,
      '--out',
      clean,
      '--engine',
      'onnx',
      '--threads',
      '1',
    ]);
    expect(c.status, c.stderr).toBe(0);

    const killed = join(work, 'killed.sqlite');
    const child = spawn(
      process.execPath,
      [
        '--import',
        'tsx',
        'packages/search/src/cli.ts',
        'embed',
        modelDir,
        '--images',
        many,
        '--out',
        killed,
        '--engine',
        'onnx',
        '--threads',
        '1',
        '--batch-size',
        '4',
      ],
      { cwd: repo, stdio: 'ignore' },
    );
    // Kill it once some, but not all, batches are committed.
    let count = 0;
    const deadline = Date.now() + 120_000;
    while (Date.now() < deadline) {
      await new Promise((r) => setTimeout(r, 25));
      try {
        const db = new Database(killed, { readonly: true, fileMustExist: true });
        count = (db.prepare('SELECT COUNT(*) AS n FROM items').get() as { n: number }).n;
        db.close();
      } catch {
        count = 0;
      }
      if (count >= 8) break;
    }
    child.kill('SIGKILL');
    await new Promise((r) => child.once('exit', r));
    const partial = storeRows(killed);
    expect(partial.size).toBeGreaterThan(0);
    expect(partial.size).toBeLessThan(400);
    expect(partial.size % 4).toBe(0); // whole batches only
    const resumed = cli([
      'embed',
      modelDir,
      '--images',
      many,
      '--out',
      killed,
      '--engine',
      'onnx',
      '--threads',
      '1',
    ]);
    expect(resumed.status, resumed.stderr).toBe(0);
    expect(resumed.stdout).toMatch(
      new RegExp(
        `400 items \\(${400 - partial.size} added, 0 changed, ${partial.size} unchanged, 0 removed\\)`,
      ),
    );
    const want = storeRows(clean);
    const got = storeRows(killed);
    expect(got.size).toBe(400);
    for (const [k, v] of want) expect(got.get(k)?.equals(v), k).toBe(true);
  });
});
