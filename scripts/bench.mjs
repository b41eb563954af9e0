#!/usr/bin/env node
// `pnpm bench <name> [args…]`: runs one of the project's benchmark scripts. Runs under
// `node --import tsx` so it can use the project's CLI kit (commander) like every other command.
import { spawnSync } from 'node:child_process';
import { createCommand, runCli } from '../packages/datasets/src/cli-kit.ts';

/** name → [package folder, script inside it, one line of description] */
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
  kernels: ['packages/model', 'bench/bench-kernels.ts', 'wasm gradient kernels vs tfjs'],
  embed: [
    'packages/search',
    'bench/bench-embed.ts',
    'ResNet-18 embedding forward at 32 and 224 px: tfjs-wasm workers vs onnxruntime-node vs PyTorch',
  ],
  ann: [
    'packages/search',
    'bench/bench-ann.ts',
    '--ann (usearch HNSW) vs exact search: build time, queries/s, recall@k',
  ],
  serve: [
    'packages/search',
    'bench/bench-serve.ts',
    'bounded load test of pnpm serve on 127.0.0.1: p50/p99 latency, errors, server memory',
  ],
};

const program = createCommand(
  'pnpm bench',
  "Run one of the project's benchmarks; every argument after the name goes to the benchmark.",
).usage('<name> [args…]');

for (const [name, [folder, script, description]] of Object.entries(BENCHES)) {
  program
    .command(name)
    .description(description)
    // The benchmark parses its own flags (including --help), so pass everything through.
    .helpOption(false)
    .allowUnknownOption()
    .allowExcessArguments()
    .argument('[args...]')
    .action((args) => {
      // Benchmarks run from the repository root so that data/ and runs/ resolve as for `pnpm train`.
      const r = spawnSync('node_modules/.bin/tsx', [`${folder}/${script}`, ...args], {
        stdio: 'inherit',
      });
      process.exit(r.status ?? 1);
    });
}

runCli(() => {
  program.parse();
});
