/**
 * `pnpm bench ann`: `--ann` (usearch HNSW) against exact search (@maskcon/eval's topK) on the
 * same seeded clustered unit vectors: build time, queries/s and recall@k of the graph's lists
 * against the exact ones, side by side.
 * usage: pnpm bench ann [--n 100000] [--dim 128] [--queries 500] [--k 10]
 */
import { loadavg } from 'node:os';
import { Command } from 'commander';
import { topK } from '@maskcon/eval';
import { AnnIndex, type Gallery } from '../src/index.js';

const o = new Command('pnpm bench ann')
  .option('--n <n>', 'gallery vectors', '100000')
  .option('--dim <n>', 'dimension', '128')
  .option('--queries <n>', 'queries (gallery rows)', '500')
  .option('--k <n>', 'k', '10')
  .parse()
  .opts();
const n = Number(o.n);
const dim = Number(o.dim);
const q = Number(o.queries);
const k = Number(o.k);
const load = () =>
  loadavg()
    .map((v) => v.toFixed(2))
    .join(' ');
console.log(`load average before: ${load()}`);

let s = 7;
const rnd = () => (s = (Math.imul(s, 1664525) + 1013904223) >>> 0) / 4294967296 - 0.5;
const centres = Array.from({ length: 1000 }, () => Float32Array.from({ length: dim }, rnd));
const vectors = new Float32Array(n * dim);
for (let i = 0; i < n; i++) {
  let norm = 0;
  for (let c = 0; c < dim; c++) {
    const v = centres[i % 1000][c] + 0.5 * rnd();
    vectors[i * dim + c] = v;
    norm += v * v;
  }
  for (let c = 0; c < dim; c++) vectors[i * dim + c] /= Math.sqrt(norm);
}
const ids = Int32Array.from({ length: n }, (_, i) => i + 1);
const g: Gallery = { ids, vectors, dim, coarse: [], rowOf: new Map() };
const queries = vectors.slice(0, q * dim);

let t = performance.now();
const exact = await topK(queries, vectors, k, { dim });
const exactS = (performance.now() - t) / 1000;
t = performance.now();
const ann = await AnnIndex.build(g);
const buildS = (performance.now() - t) / 1000;
t = performance.now();
let found = 0;
for (let i = 0; i < q; i++) {
  const r = ann.search(queries.subarray(i * dim, (i + 1) * dim), k);
  const want = new Set(Array.from(exact.indices.subarray(i * k, (i + 1) * k), (row) => row + 1));
  for (const id of r.ids) if (want.has(id)) found++;
}
const annS = (performance.now() - t) / 1000;
console.log(`\n${n} unit vectors (dim ${dim}, 1000 clusters), ${q} queries, k ${k}\n`);
console.log('search                       build s   queries/s   recall@k vs exact');
console.log(
  `exact (eval topK, ${exact.backend.padEnd(11)})  ${'-'.padStart(7)}   ${(q / exactS).toFixed(1).padStart(9)}   1.0000`,
);
console.log(
  `usearch HNSW (M 16, ef 128)  ${buildS.toFixed(1).padStart(7)}   ${(q / annS).toFixed(1).padStart(9)}   ${(found / (q * k)).toFixed(4)}`,
);
console.log(`\nload average after: ${load()}`);
