import { copyFileSync, existsSync, mkdirSync, mkdtempSync, readFileSync, rmSync } from 'node:fs';
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { buildWeightsProgram } from '../src/weights-cli.js';

const run = (args: string[], lines: string[] = []) =>
  buildWeightsProgram(
    (l) => lines.push(l),
    () => {},
  ).parseAsync(args, { from: 'user' });

const fixture = resolve(import.meta.dirname, '../../model/test/fixtures/resnet18-w8-standard.pth');
const BODY = readFileSync(fixture);
let server: http.Server;
let base = '';
const seen: string[] = [];
let tmp = '';
beforeAll(async () => {
  tmp = mkdtempSync(join(tmpdir(), 'maskcon-weights-cli-'));
  server = http.createServer((req, res) => {
    seen.push(req.url ?? '');
    res.writeHead(200, { 'content-length': BODY.length });
    res.end(BODY);
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  base = `http://127.0.0.1:${(server.address() as AddressInfo).port}/models`;
});
afterAll(async () => {
  await new Promise<void>((r) => server.close(() => r()));
  rmSync(tmp, { recursive: true, force: true });
});

describe('pnpm weights', () => {
  it('fetch refuses a file whose SHA-256 does not match the name and leaves nothing', async () => {
    const dir = join(tmp, 'w');
    await expect(run(['fetch', 'resnet18', '--dir', dir, '--base-url', base])).rejects.toThrow(
      /has sha256 [0-9a-f]{64}, but the published file has a sha256 starting with f37072fd; .*deleted/,
    );
    expect(seen.at(-1)).toBe('/models/resnet18-f37072fd.pth');
    expect(existsSync(join(dir, 'resnet18-f37072fd.pth'))).toBe(false);
    expect(existsSync(join(dir, 'resnet18-f37072fd.pth.part'))).toBe(false);
  });

  it('fetch names the architectures it knows; list shows what is cached', async () => {
    await expect(run(['fetch', 'resnet18', 'resnet101', '--dir', tmp])).rejects.toThrow(
      /for resnet18, resnet34, resnet50, not 'resnet101'/,
    );
    expect(seen).toHaveLength(1); // refused before downloading anything
    const dir = join(tmp, 'listed');
    mkdirSync(dir, { recursive: true });
    copyFileSync(fixture, join(dir, 'resnet50-0676ba61.pth'));
    const lines: string[] = [];
    await run(['list', '--dir', dir], lines);
    expect(lines).toHaveLength(3);
    expect(lines[0]).toMatch(/^resnet18 .*not cached — pnpm weights fetch resnet18/);
    expect(lines[2]).toMatch(/^resnet50 .*resnet50-0676ba61\.pth .*\(cached, 0\.7 MB\)/);
  });
});
