import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { spawn, type ChildProcess } from 'node:child_process';
import { existsSync, mkdirSync, mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import sharp from 'sharp';
import { createNetwork, exportBackbone, initBackend } from '@maskcon/model';
import {
  embedCatalogue,
  EmbeddingStore,
  imagesCatalogue,
  modelIdentity,
  openEngine,
  resolveModel,
  searchApp,
  type EmbeddingEngine,
} from '../src/index.js';

const CHROMIUM = '/usr/bin/chromium';
const repo = resolve(import.meta.dirname, '..', '..', '..');
const work = mkdtempSync(join(tmpdir(), 'maskcon-serve-'));
const modelDir = join(work, 'model');
const images = join(work, 'images');
const storeFile = join(work, 'store.sqlite');
let engine: EmbeddingEngine;
let store: EmbeddingStore;

function pattern(seed: number, w: number, h: number): Buffer {
  const px = Buffer.alloc(w * h * 3);
  for (let y = 0; y < h; y++)
    for (let x = 0; x < w; x++)
      for (let c = 0; c < 3; c++)
        px[(y * w + x) * 3 + c] =
          (x * ((seed % 7) + 1) + y * (c + 1) * ((seed % 3) + 1) + seed * 29) % 256;
  return px;
}
const png = (seed: number, w = 24, h = 24) =>
  sharp(pattern(seed, w, h), { raw: { width: w, height: h, channels: 3 } })
    .png()
    .toBuffer();

beforeAll(async () => {
  await initBackend('wasm', () => {});
  const p = createNetwork(
    { arch: 'resnet-mini', width: 8, inChannels: 3, projHidden: 8, projDim: 4 },
    3,
  );
  await exportBackbone(p, modelDir, {
    arch: 'resnet-mini',
    inputShape: [24, 24, 3],
    mean: [0.5, 0.5, 0.5],
    std: [0.25, 0.25, 0.25],
  });
  mkdirSync(images);
  for (let i = 0; i < 30; i++)
    writeFileSync(join(images, `p${String(i).padStart(2, '0')}.png`), await png(i));
  const m = resolveModel(modelDir);
  engine = await openEngine(m.modelDir, { engine: 'auto' });
  store = EmbeddingStore.open(storeFile, { create: true });
  await embedCatalogue(
    store,
    await imagesCatalogue(images),
    engine,
    modelIdentity(m, engine.meta, engine.dim),
  );
});

afterAll(async () => {
  store?.close();
  await engine?.close();
});

const idOf = (name: string) => store.items(0, 1000).find((i) => i.path.endsWith(name))!.id;

describe('the search API', () => {
  it('answers searches by upload and by id, and refuses bad input with a sentence', async () => {
    const { app, close } = searchApp(store, engine, {
      maxUploadBytes: 200_000,
      maxPixels: 1_000_000,
    });
    const post = (body: Uint8Array | string, type: string, q = '') =>
      app.request(`/api/search${q}`, {
        method: 'POST',
        body: typeof body === 'string' ? body : new Blob([new Uint8Array(body)]),
        headers: { 'content-type': type },
      });

    const up = await post(readFileSync(join(images, 'p07.png')), 'image/png', '?k=5');
    expect(up.status).toBe(200);
    const res = (await up.json()) as { hits: { id: number; score: number; rank: number }[] };
    expect(res.hits.map((h) => h.rank)).toEqual([1, 2, 3, 4, 5]);
    expect(res.hits[0].id).toBe(idOf('p07.png'));
    expect(res.hits[0].score).toBeGreaterThan(0.9999);

    const form = new FormData();
    form.append(
      'image',
      new Blob([readFileSync(join(images, 'p11.png'))], { type: 'image/png' }),
      'q.png',
    );
    const viaForm = await app.request('/api/search?k=3', { method: 'POST', body: form });
    expect(viaForm.status).toBe(200);
    expect(((await viaForm.json()) as { hits: { id: number }[] }).hits[0].id).toBe(idOf('p11.png'));

    const byId = await app.request(`/api/search?id=${idOf('p03.png')}&k=4`);
    const idHits = ((await byId.json()) as { hits: { id: number }[] }).hits;
    expect(idHits).toHaveLength(4);
    expect(idHits.map((h) => h.id)).not.toContain(idOf('p03.png'));

    const text = await post('hello, not a picture', 'image/png');
    expect(text.status).toBe(400);
    expect(((await text.json()) as { error: string }).error).toBe(
      'The upload is not an image; JPEG, PNG and WebP are supported.',
    );
    const big = await post(new Uint8Array(300_000), 'image/png');
    expect(big.status).toBe(413);
    expect(((await big.json()) as { error: string }).error).toMatch(/larger than/);
    // 2000×2000 = 4 Mpx > the 1 Mpx limit; small on the wire (a flat PNG).
    const huge = await sharp({
      create: { width: 2000, height: 2000, channels: 3, background: '#808080' },
    })
      .png()
      .toBuffer();
    expect(huge.byteLength).toBeLessThan(200_000);
    const px = await post(huge, 'image/png');
    expect(px.status).toBe(400);
    expect(((await px.json()) as { error: string }).error).toMatch(/larger than 1 megapixels/);
    expect((await post(new Uint8Array(0), 'image/png')).status).toBe(400);
    expect((await app.request('/api/search?id=999999')).status).toBe(404);
    expect((await app.request('/api/search?id=1&k=0')).status).toBe(400);

    // Images only by store id.
    const img = await app.request(`/api/image/${idOf('p05.png')}`);
    expect(img.status).toBe(200);
    expect(img.headers.get('content-type')).toBe('image/jpeg');
    const meta = await sharp(Buffer.from(await img.arrayBuffer())).metadata();
    expect([meta.width, meta.height]).toEqual([24, 24]);
    for (const bad of [
      '/api/image/..%2F..%2Fetc%2Fpasswd',
      '/api/image/-1',
      '/api/image/1.5',
      '/api/image/%2Fetc%2Fpasswd',
    ])
      expect((await app.request(bad)).status, bad).toBe(400);
    expect((await app.request('/api/image/424242')).status).toBe(404);

    // Still serving after all of that.
    const again = await post(readFileSync(join(images, 'p07.png')), 'image/png', '?k=1');
    expect(((await again.json()) as { hits: { id: number }[] }).hits[0].id).toBe(idOf('p07.png'));
    close();
  });
});

describe('pnpm serve in a browser', () => {
  let server: ChildProcess | undefined;
  afterAll(() => {
    server?.kill('SIGTERM');
  });

  it('uploads an image and shows k tiles, the first its own item; a non-image shows the error', async () => {
    if (!existsSync(CHROMIUM)) {
      console.warn(
        `SKIPPED the browser check: ${CHROMIUM} is missing (apt-get install chromium; scripts/install.sh --with-test-deps and .ci/run do this).`,
      );
      return;
    }
    const child = spawn(
      process.execPath,
      [
        '--import',
        'tsx',
        'packages/search/src/cli.ts',
        'serve',
        storeFile,
        '--port',
        '0',
        '--k',
        '6',
      ],
      { cwd: repo, stdio: ['ignore', 'pipe', 'pipe'] },
    );
    server = child;
    let stderr = '';
    child.stderr!.on('data', (d) => (stderr += d));
    const url = await new Promise<string>((resolveUrl, reject) => {
      let out = '';
      const timer = setTimeout(() => reject(new Error(`serve did not start: ${stderr}`)), 90_000);
      child.stdout!.on('data', (d) => {
        out += d;
        const m = /at (http:\/\/127\.0\.0\.1:\d+)/.exec(out);
        if (m) {
          clearTimeout(timer);
          resolveUrl(m[1]);
        }
      });
      child.once('exit', (code) => reject(new Error(`serve exited with ${code}: ${stderr}`)));
    });
    const { chromium } = await import('playwright-core');
    const browser = await chromium.launch({
      executablePath: CHROMIUM,
      args: [
        '--headless',
        '--no-sandbox',
        '--disable-gpu',
        '--disable-background-networking',
        '--disable-component-update',
        '--disable-sync',
        '--no-first-run',
      ],
    });
    try {
      const page = await browser.newPage({ viewport: { width: 1200, height: 900 } });
      await page.goto(url);
      await page.waitForSelector('body[data-ready="1"]');
      expect(await page.locator('#gallery figure').count()).toBe(30);
      expect(await page.locator('#k').inputValue()).toBe('6');

      await page.setInputFiles('#file', join(images, 'p13.png'));
      await page.waitForFunction(
        () => document.querySelectorAll('#results figure.tile').length === 6,
      );
      const first = page.locator('#results figure.tile').first();
      expect(await first.getAttribute('data-id')).toBe(String(idOf('p13.png')));
      expect(await first.locator('figcaption').innerText()).toMatch(/^#1 · 1\.000/);
      // The tile's picture is loaded from the server by id.
      await page.waitForFunction(() => {
        const img = document.querySelector('#results figure.tile img') as HTMLImageElement | null;
        return img?.complete === true && img.naturalWidth === 24;
      });

      const notImage = join(work, 'notes.png');
      writeFileSync(notImage, 'plain text pretending to be a PNG');
      await page.setInputFiles('#file', notImage);
      await page.waitForFunction(
        () => (document.getElementById('error')?.textContent ?? '') !== '',
      );
      expect(await page.locator('#error').innerText()).toBe(
        'The upload is not an image; JPEG, PNG and WebP are supported.',
      );

      await page.setInputFiles('#file', join(images, 'p21.png'));
      await page.waitForFunction(
        (id) => document.querySelector('#results figure.tile')?.getAttribute('data-id') === id,
        String(idOf('p21.png')),
      );
      expect(await page.locator('#error').innerText()).toBe('');
      expect(await page.locator('#results figure.tile').count()).toBe(6);

      // Clicking a catalogue item searches by id: the item itself is not among its neighbours.
      const itemId = idOf('p02.png');
      await page.locator(`#gallery figure[data-id="${itemId}"]`).click();
      await page.waitForFunction(
        (id) => document.querySelector('#query figure')?.getAttribute('data-id') === id,
        String(itemId),
      );
      await page.waitForFunction(
        () => document.querySelectorAll('#results figure.tile').length === 6,
      );
      const ids = await page
        .locator('#results figure.tile')
        .evaluateAll((els) => els.map((e) => e.getAttribute('data-id')));
      expect(ids).not.toContain(String(itemId));
      await page.screenshot({ path: join(work, 'serve.png') });
    } finally {
      await browser.close();
    }
  });
});
