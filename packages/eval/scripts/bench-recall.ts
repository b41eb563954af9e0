/**
 * Times recallAtK on random Gaussian embeddings.
 * Usage: pnpm exec tsx packages/eval/scripts/bench-recall.ts [N] [dim ...]
 * Defaults: N = 10000, dims 128 and 512, 100 labels, ks = [1, 2, 5, 10, 50, 100].
 */
import { recallAtK } from '../src/index.js';

const n = Number(process.argv[2] ?? 10_000);
const dims = process.argv.length > 3 ? process.argv.slice(3).map(Number) : [128, 512];

let state = 12345;
function uniform(): number {
  // xorshift32: deterministic data so timings are comparable between runs.
  state ^= state << 13;
  state ^= state >>> 17;
  state ^= state << 5;
  return (state >>> 0) / 4294967296;
}

for (const dim of dims) {
  const emb = new Float32Array(n * dim);
  for (let i = 0; i < emb.length; i++) emb[i] = uniform() - 0.5;
  const labels = Int32Array.from({ length: n }, () => Math.floor(uniform() * 100));
  const t0 = performance.now();
  const recalls = recallAtK(emb, dim, labels);
  const ms = performance.now() - t0;
  const gmacs = (n * n * dim) / 2 / ms / 1e6;
  console.log(
    `N=${n} d=${dim}: ${(ms / 1000).toFixed(2)} s (${gmacs.toFixed(2)} GMAC/s on the N²d/2 pairs) R@1=${(recalls[1] * 100).toFixed(2)}`,
  );
}
