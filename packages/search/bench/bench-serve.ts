/**
 * `pnpm bench serve`: a bounded load test of `pnpm serve` on 127.0.0.1. C concurrent clients
 * each send R requests (default 8 × 200) — searches by id, image uploads, thumbnails — to a
 * server over a store of N vectors; prints p50/p99 latency per kind, errors, throughput and
 * the server's resident memory at each quarter of the run. Stops by itself (request count, and
 * a time cap).
 *
 * usage: pnpm bench serve [--clients 8] [--requests 200] [--items 20000] [--max-seconds 300]
 */
import { spawn } from 'node:child_process';
import { mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { loadavg, tmpdir } from 'node:os';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { Command } from 'commander';
import sharp from 'sharp';
import { createNetwork, exportBackbone, initBackend } from '@maskcon/model';
import { EmbeddingStore, modelIdentity, resolveModel, type NewItem } from '../src/index.js';

const here = dirname(fileURLToPath(import.meta.url));
const repo = resolve(here, '..', '..', '..');
const o = new Command('pnpm bench serve')
  .option('--clients <n>', 'concurrent clients', '8')
  .option('--requests <n>', 'requests per client', '200')
  .option('--items <n>', 'stored vectors', '20000')
  .option('--max-seconds <s>', 'time cap', '300')
  .parse()
  .opts();
const clients = Number(o.clients);
const perClient = Number(o.requests);
const items = Number(o.items);
const load = () =>
  loadavg()
    .map((v) => v.toFixed(2))
    .join(' ');

console.log(`load average before: ${load()}`);
await initBackend('wasm', () => {});
const work = mkdtempSync(join(tmpdir(), 'maskcon-bench-serve-'));
const modelDir = join(work, 'model');
const p = createNetwork(
  { arch: 'resnet-mini', width: 32, inChannels: 3, projHidden: 64, projDim: 16 },
  0,
);
await exportBackbone(p, modelDir, {
  arch: 'resnet-mini',
  inputShape: [32, 32, 3],
  mean: [0.5, 0.5, 0.5],
  std: [0.25, 0.25, 0.25],
});
const m = resolveModel(modelDir);
const dim = 128;
const identity = modelIdentity(
  m,
  { arch: 'resnet-mini', inputShape: [32, 32, 3], mean: [0.5, 0.5, 0.5], std: [0.25, 0.25, 0.25] },
  dim,
);

// A store of N seeded unit vectors; 64 of them point at real PNG files (thumbnails).
const imgDir = join(work, 'images');
mkdirSync(imgDir);
const pngs: Buffer[] = [];
for (let i = 0; i < 64; i++) {
  const px = Buffer.alloc(48 * 40 * 3);
  for (let j = 0; j < px.length; j++) px[j] = (j * (i + 3) + i * 41) % 251;
  const buf = await sharp(px, { raw: { width: 48, height: 40, channels: 3 } })
    .png()
    .toBuffer();
  writeFileSync(join(imgDir, `i${i}.png`), buf);
  pngs.push(buf);
}
const storeFile = join(work, 'store.sqlite');
const store = EmbeddingStore.open(storeFile, { create: true });
let s = 12345;
const rnd = () => (s = (Math.imul(s, 1664525) + 1013904223) >>> 0) / 4294967296 - 0.5;
for (let b = 0; b < items; b += 1000) {
  const batch: NewItem[] = [];
  for (let i = b; i < Math.min(items, b + 1000); i++) {
    const v = Float32Array.from({ length: dim }, rnd);
    const n = Math.hypot(...v);
    for (let c = 0; c < dim; c++) v[c] /= n;
    const f = join(imgDir, `i${i % 64}.png`);
    batch.push({
      source: `file:${f}#${i}`,
      kind: 'file',
      path: f,
      row: null,
      split: null,
      collection: 'bench',
      coarseLabel: i % 5,
      fineLabel: i % 50,
      coarseName: `c${i % 5}`,
      fineName: `f${i % 50}`,
      size: null,
      mtimeMs: null,
      contentHash: String(i),
      vector: v,
    });
  }
  store.writeBatch(batch, [], 1, b === 0 ? identity : undefined);
}
store.close();

const server = spawn(
  process.execPath,
  [
    '--import',
    'tsx',
    'packages/search/src/cli.ts',
    'serve',
    storeFile,
    '--port',
    '0',
    '--threads',
    '1',
  ],
  {
    cwd: repo,
    stdio: ['ignore', 'pipe', 'inherit'],
  },
);
const rss = () => {
  const m = /VmRSS:\s+(\d+) kB/.exec(readFileSync(`/proc/${server.pid}/status`, 'utf8'));
  return m ? Number(m[1]) / 1024 : Number.NaN;
};
try {
  const url = await new Promise<string>((ok, fail) => {
    let out = '';
    server.stdout!.on('data', (d) => {
      out += d;
      const mm = /at (http:\/\/127\.0\.0\.1:\d+)/.exec(out);
      if (mm) ok(mm[1]);
    });
    server.once('exit', (c) => fail(new Error(`serve exited with ${c}`)));
  });
  // Warm-up: one of each kind.
  await fetch(`${url}/api/search?id=1`);
  await fetch(`${url}/api/search`, {
    method: 'POST',
    body: new Uint8Array(pngs[0]),
    headers: { 'content-type': 'image/png' },
  });
  await fetch(`${url}/api/image/1`);
  const memory: string[] = [`start ${rss().toFixed(0)} MB`];
  const total = clients * perClient;
  let done = 0;
  let errors = 0;
  const lat: Record<string, number[]> = {
    'search by id': [],
    'search by upload': [],
    thumbnail: [],
  };
  const deadline = Date.now() + Number(o.maxSeconds) * 1000;
  const t0 = performance.now();
  const client = async (c: number) => {
    for (let r = 0; r < perClient && Date.now() < deadline; r++) {
      const kind = (c + r) % 4;
      const id = 1 + ((c * 7919 + r * 104729) % items);
      const t = performance.now();
      let res: Response;
      let name: string;
      try {
        if (kind === 0) {
          name = 'search by upload';
          res = await fetch(`${url}/api/search?k=10`, {
            method: 'POST',
            body: new Uint8Array(pngs[r % 64]),
            headers: { 'content-type': 'image/png' },
          });
        } else if (kind === 1) {
          name = 'thumbnail';
          res = await fetch(`${url}/api/image/${id}`);
        } else {
          name = 'search by id';
          res = await fetch(
            `${url}/api/search?id=${id}&k=10${kind === 3 ? `&coarse=c${id % 5}` : ''}`,
          );
        }
        await res.arrayBuffer();
        if (!res.ok) errors++;
      } catch {
        errors++;
        continue;
      }
      lat[name].push(performance.now() - t);
      done++;
      if (done % (total / 4) === 0) memory.push(`${(100 * done) / total}% ${rss().toFixed(0)} MB`);
    }
  };
  await Promise.all(Array.from({ length: clients }, (_, c) => client(c)));
  const wall = (performance.now() - t0) / 1000;
  const pct = (a: number[], q: number) => {
    const x = [...a].sort((u, v) => u - v);
    return x.length ? x[Math.min(x.length - 1, Math.floor(q * x.length))] : Number.NaN;
  };
  console.log(
    `\n${clients} clients × ${perClient} requests on 127.0.0.1, store of ${items} vectors (dim ${dim}), resnet-mini 32 px uploads\n`,
  );
  console.log('kind               requests   p50 ms   p99 ms');
  const all = Object.values(lat).flat();
  for (const [k, v] of [...Object.entries(lat), ['all', all] as [string, number[]]])
    console.log(
      `${k.padEnd(18)} ${String(v.length).padStart(8)} ${pct(v, 0.5).toFixed(1).padStart(8)} ${pct(v, 0.99).toFixed(1).padStart(8)}`,
    );
  console.log(
    `\nerrors: ${errors}; completed ${done}/${total} in ${wall.toFixed(1)} s (${(done / wall).toFixed(1)} requests/s)`,
  );
  console.log(`server RSS: ${memory.join(' → ')}`);
  console.log(`load average after: ${load()}`);
  if (errors > 0 || done < total) process.exitCode = 1;
} finally {
  server.kill('SIGTERM');
  rmSync(work, { recursive: true, force: true });
}
