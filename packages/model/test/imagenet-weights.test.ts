import { createHash } from 'node:crypto';
import {
  copyFileSync,
  existsSync,
  mkdirSync,
  mkdtempSync,
  readFileSync,
  rmSync,
  statSync,
} from 'node:fs';
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import {
  IMAGENET_WEIGHTS,
  fetchImagenetWeights,
  fetchWeightsFile,
  imagenetWeightsPath,
  resolvePretrained,
  weightsFile,
} from '../src/index.js';

const PTH = path.join(
  path.dirname(fileURLToPath(import.meta.url)),
  'fixtures',
  'resnet18-w8-standard.pth',
);
const FILE = readFileSync(PTH);
const SHA = createHash('sha256').update(FILE).digest('hex');

/** Serves FILE under any name, honouring Range; the first request for /cut-* is dropped half-way. */
const requests: { url: string; range?: string }[] = [];
let server: http.Server;
let base = '';
let cutOnce = true;
let tmp = '';
beforeAll(async () => {
  tmp = mkdtempSync(path.join(tmpdir(), 'maskcon-weights-'));
  server = http.createServer((req, res) => {
    requests.push({ url: req.url ?? '', range: req.headers.range });
    if (req.url?.startsWith('/cut-') && cutOnce) {
      cutOnce = false;
      res.writeHead(200, { 'content-length': FILE.length });
      res.write(FILE.subarray(0, 300_000), () => res.destroy());
      return;
    }
    const range = /^bytes=(\d+)-$/.exec(req.headers.range ?? '');
    if (range) {
      const start = Number(range[1]);
      res.writeHead(206, {
        'content-length': FILE.length - start,
        'content-range': `bytes ${start}-${FILE.length - 1}/${FILE.length}`,
      });
      res.end(FILE.subarray(start));
      return;
    }
    res.writeHead(200, { 'content-length': FILE.length });
    res.end(FILE);
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  base = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
});
afterAll(async () => {
  await new Promise<void>((r) => server.close(() => r()));
  rmSync(tmp, { recursive: true, force: true });
});

describe('torchvision ImageNet weights: catalogue, fetch, cache', () => {
  it("names each file by the first 8 hex digits of its SHA-256, as torchvision's URLs do", () => {
    expect(IMAGENET_WEIGHTS.resnet18).toEqual({
      url: 'https://download.pytorch.org/models/resnet18-f37072fd.pth',
      sha256Prefix: 'f37072fd',
    });
    expect(IMAGENET_WEIGHTS.resnet34.sha256Prefix).toBe('b627a593');
    expect(IMAGENET_WEIGHTS.resnet50.sha256Prefix).toBe('0676ba61');
    expect(() => weightsFile('https://x/resnet18.pth')).toThrow(/SHA-256/);
  });

  it('downloads from a server on 127.0.0.1, resumes a cut transfer, verifies the hash prefix, then reuses the cache', async () => {
    const dir = path.join(tmp, 'fetch');
    const entry = weightsFile(`https://example.invalid/models/cut-w8-${SHA.slice(0, 8)}.pth`);
    await expect(fetchWeightsFile(entry, { weightsDir: dir, baseUrl: base })).rejects.toThrow(
      /cut short after \d+ of \d+ bytes .*; the partial file .*\.part was kept/,
    );
    const part = path.join(dir, `cut-w8-${SHA.slice(0, 8)}.pth.part`);
    const have = statSync(part).size;
    expect(have).toBeGreaterThan(0);
    expect(have).toBeLessThanOrEqual(300_000);
    const file = await fetchWeightsFile(entry, { weightsDir: dir, baseUrl: base });
    expect(requests.at(-1)).toEqual({
      url: `/cut-w8-${SHA.slice(0, 8)}.pth`,
      range: `bytes=${have}-`,
    });
    expect(readFileSync(file).equals(FILE)).toBe(true);
    expect(existsSync(`${file}.part`)).toBe(false);
    const before = requests.length;
    expect(await fetchWeightsFile(entry, { weightsDir: dir, baseUrl: base })).toBe(file);
    expect(requests.length).toBe(before); // verified copy in the cache: no request
  });

  it('deletes a download whose SHA-256 does not start with the published prefix', async () => {
    const dir = path.join(tmp, 'bad');
    // The test server sends the w8 fixture, not torchvision's resnet18-f37072fd.pth.
    await expect(
      fetchImagenetWeights('resnet18', { weightsDir: dir, baseUrl: base }),
    ).rejects.toThrow(
      new RegExp(
        `has sha256 ${SHA}, but the published file has a sha256 starting with f37072fd.*deleted`,
      ),
    );
    expect(requests.at(-1)?.url).toBe('/resnet18-f37072fd.pth');
    expect(existsSync(imagenetWeightsPath('resnet18', dir))).toBe(false);
    expect(existsSync(`${imagenetWeightsPath('resnet18', dir)}.part`)).toBe(false);
  });

  it('--pretrained imagenet resolves to the cached file, or says which command fetches it', () => {
    const dir = path.join(tmp, 'cache');
    const saved = process.env.MASKCON_CACHE;
    process.env.MASKCON_CACHE = dir;
    try {
      expect(() => resolvePretrained('imagenet', 'resnet34')).toThrow(
        /ImageNet weights are not in the cache \(.*cache\/weights\/resnet34-b627a593\.pth\)\. Fetch them first with: pnpm weights fetch resnet34/,
      );
      expect(() => resolvePretrained('imagenet', 'resnet-mini')).toThrow(
        /for resnet18, resnet34, resnet50, not for --arch resnet-mini/,
      );
      mkdirSync(path.join(dir, 'weights'), { recursive: true });
      copyFileSync(PTH, path.join(dir, 'weights', 'resnet34-b627a593.pth'));
      expect(resolvePretrained('imagenet', 'resnet34')).toBe(
        path.join(dir, 'weights', 'resnet34-b627a593.pth'),
      );
      expect(resolvePretrained(PTH, 'resnet18')).toBe(PTH);
      expect(() => resolvePretrained(path.join(dir, 'nope.pth'), 'resnet18')).toThrow(
        /--pretrained file .*nope\.pth does not exist/,
      );
    } finally {
      if (saved === undefined) delete process.env.MASKCON_CACHE;
      else process.env.MASKCON_CACHE = saved;
    }
  });
});
