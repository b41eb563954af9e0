#!/usr/bin/env node
// `pnpm bench <name> [args…]`: runs one of the project's benchmark scripts.
import { spawnSync } from 'node:child_process';
import { existsSync } from 'node:fs';

const BENCHES = {
  methods: [
    'packages/train',
    'bench/methods.ts',
    'SelfCon vs MaskCon (and others) on Fashion-MNIST: fine Recall@K side by side',
  ],
  train: [
    'packages/train',
    'bench/bench-train.ts',
    'MaskCon training step: ours vs PyTorch (CPU), images/s and peak RSS',
  ],
  augment: [
    'packages/augment',
    'scripts/bench-augment.ts',
    'augmentation pipelines: ours vs torchvision + PIL',
  ],
  eval: ['packages/eval', 'scripts/bench-recall.ts', 'Recall@K on N embeddings'],
  datasets: [
    'packages/datasets',
    'scripts/bench-datasets.ts',
    'index build rate and random batch reads of 1,281,167 generated 32×32 images, peak RSS',
  ],
  kernels: ['packages/model', 'src/kernels/bench-kernels.ts', 'wasm gradient kernels vs tfjs'],
};

const [name, ...args] = process.argv.slice(2);
const bench = BENCHES[name];
if (!bench || !existsSync(`${bench[0]}/${bench[1]}`)) {
  console.error(
    `usage: pnpm bench <name> [args…]\n${Object.entries(BENCHES)
      .map(([n, b]) => `  ${n.padEnd(8)} ${b[2]}`)
      .join('\n')}`,
  );
  process.exit(name ? 1 : 0);
}
// Benchmarks run from the repository root so that data/ and runs/ resolve as for `pnpm train`.
const r = spawnSync('node_modules/.bin/tsx', [`${bench[0]}/${bench[1]}`, ...args], {
  stdio: 'inherit',
});
process.exit(r.status ?? 1);
