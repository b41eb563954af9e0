import { createHash } from 'node:crypto';
import { existsSync, readFileSync, writeFileSync } from 'node:fs';
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { downloadVerified, type DownloadProgress } from '../src/download.js';
import { tempDir } from './helpers.js';

const FILE = Buffer.from(Array.from({ length: 200_000 }, (_, i) => (i * 131 + (i >> 9)) & 0xff));
const MD5 = createHash('md5').update(FILE).digest('hex');

/** Serves FILE at /good (with Range), /norange (ignores Range), /cut (drops the connection half-way). */
const requests: { path: string; range?: string }[] = [];
let server: http.Server;
let base = '';
beforeAll(async () => {
  server = http.createServer((req, res) => {
    requests.push({ path: req.url ?? '', range: req.headers.range });
    if (req.url === '/cut') {
      res.writeHead(200, { 'content-length': FILE.length });
      res.write(FILE.subarray(0, 70_000), () => res.destroy());
      return;
    }
    const range = /^bytes=(\d+)-$/.exec(req.headers.range ?? '');
    if (range && req.url === '/good') {
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
afterAll(() => new Promise<void>((r) => server.close(() => r())));

describe('download', () => {
  it('downloads, verifies the md5, reports progress, and then reuses the cached file', async () => {
    const dest = join(tempDir('dl'), 'cifar-10-python.tar.gz');
    const seen: DownloadProgress[] = [];
    await downloadVerified(`${base}/good`, dest, MD5, { onProgress: (p) => seen.push(p) });
    expect(readFileSync(dest).equals(FILE)).toBe(true);
    expect(existsSync(`${dest}.part`)).toBe(false);
    const last = seen[seen.length - 1];
    expect(last.done).toBe(FILE.length);
    expect(last.total).toBe(FILE.length);
    expect(last.bytesPerSecond).toBeGreaterThan(0);
    const before = requests.length;
    await downloadVerified(`${base}/good`, dest, MD5);
    expect(requests.length).toBe(before); // verified copy in the cache: no request
  });

  it('resumes a partial file with a Range request', async () => {
    const dest = join(tempDir('dl'), 'f.gz');
    writeFileSync(`${dest}.part`, FILE.subarray(0, 123_456));
    await downloadVerified(`${base}/good`, dest, MD5);
    expect(requests[requests.length - 1]).toEqual({ path: '/good', range: 'bytes=123456-' });
    expect(readFileSync(dest).equals(FILE)).toBe(true);
    // A server that ignores Range sends the whole file: the part is rewritten, not appended to.
    const dest2 = join(tempDir('dl'), 'g.gz');
    writeFileSync(`${dest2}.part`, FILE.subarray(0, 1000));
    await downloadVerified(`${base}/norange`, dest2, MD5);
    expect(readFileSync(dest2).equals(FILE)).toBe(true);
  });

  it('rejects and deletes a file with the wrong checksum', async () => {
    const dest = join(tempDir('dl'), 'f.gz');
    const wrong = '0123456789abcdef0123456789abcdef';
    await expect(downloadVerified(`${base}/good`, dest, wrong)).rejects.toThrow(
      new RegExp(`has md5 ${MD5}, but the published file has md5 ${wrong}.*deleted`),
    );
    expect(existsSync(dest)).toBe(false);
    expect(existsSync(`${dest}.part`)).toBe(false);
  });

  it('reports a transfer cut short and keeps the part for resuming', async () => {
    const dest = join(tempDir('dl'), 'f.gz');
    await expect(downloadVerified(`${base}/cut`, dest, MD5)).rejects.toThrow(
      /was cut short after \d+.*kept — run the command again to resume/,
    );
    expect(existsSync(dest)).toBe(false);
    const part = readFileSync(`${dest}.part`);
    expect(part.length).toBeGreaterThan(0);
    expect(part.equals(FILE.subarray(0, part.length))).toBe(true);
    await downloadVerified(`${base}/good`, dest, MD5); // resumes from the kept part
    expect(requests[requests.length - 1].range).toBe(`bytes=${part.length}-`);
    expect(readFileSync(dest).equals(FILE)).toBe(true);
  });
});
