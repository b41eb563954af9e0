#!/usr/bin/env node
/**
 * pnpm datasets:build <name> [--root DIR] [--out DIR] [--force]
 * pnpm datasets:stats <name> [--out DIR] [--json]
 */
import { existsSync } from 'node:fs';
import { parseArgs } from 'node:util';
import { DatasetError } from './errors.js';
import { createProgressPrinter } from './progress.js';
import { datasetStats, type DatasetStats } from './read-index.js';
import { assertDatasetName, buildDataset, DATASET_NAMES, defaultIndexPath } from './registry.js';

const USAGE = `Usage:
  pnpm datasets:build <name> [--root DIR] [--out DIR] [--force]
  pnpm datasets:stats <name|index.sqlite> [--out DIR] [--json]
Datasets: ${DATASET_NAMES.join(', ')}
--root  directory with the dataset's published files
--out   directory for the index (default $MASKCON_DATA or ./data)`;

async function build(args: string[]): Promise<void> {
  const { values, positionals } = parseArgs({
    args,
    allowPositionals: true,
    options: { root: { type: 'string' }, out: { type: 'string' }, force: { type: 'boolean', default: false } },
  });
  const name = onePositional(positionals, 'build');
  assertDatasetName(name);
  const started = performance.now();
  const result = await buildDataset(name, {
    root: values.root,
    outDir: values.out,
    force: values.force,
    onProgress: createProgressPrinter(name),
  });
  const seconds = (performance.now() - started) / 1000;
  const total = result.counts.train + result.counts.test;
  if (result.upToDate) {
    console.log(
      `${name}: ${result.path} is up to date (same source checksums and builder version; ${result.counts.train} train / ${result.counts.test} test images). Use --force to rebuild.`,
    );
  } else {
    console.log(
      `${name}: wrote ${result.path} (${result.counts.train} train / ${result.counts.test} test images) in ${seconds.toFixed(1)}s, ${Math.round(total / seconds)} images/s.`,
    );
  }
}

function stats(args: string[]): void {
  const { values, positionals } = parseArgs({
    args,
    allowPositionals: true,
    options: { out: { type: 'string' }, json: { type: 'boolean', default: false } },
  });
  const target = onePositional(positionals, 'stats');
  let path: string;
  if (target.endsWith('.sqlite') && existsSync(target)) {
    path = target;
  } else {
    assertDatasetName(target);
    path = defaultIndexPath(target, values.out);
  }
  const s = datasetStats(path);
  console.log(values.json ? JSON.stringify(s, null, 2) : formatStats(s));
}

function formatStats(s: DatasetStats): string {
  const fmt = (xs: readonly number[]) => `[${xs.map((x) => x.toFixed(4)).join(', ')}]`;
  const lines = [
    `${s.name}  (${s.path})`,
    `built ${s.builtAt}, builder version ${s.builderVersion}, image shape ${s.imageShape ? s.imageShape.join('×') : 'varies'}`,
    `fine classes: ${s.fineClassNames.length}, coarse classes: ${s.coarseClassNames.length}`,
  ];
  for (const split of ['train', 'test'] as const) {
    const t = s.splits[split];
    lines.push(`${split.padEnd(5)}: ${t.images} images, ${t.fineClasses} fine / ${t.coarseClasses} coarse classes present`);
  }
  lines.push('coarse class            fine classes  train images  test images');
  s.coarseClassNames.forEach((name, c) => {
    lines.push(
      `${String(c).padStart(2)} ${name.padEnd(21)} ${String(s.fineClassesPerCoarseClass[c]).padStart(12)}  ${String(s.splits.train.imagesPerCoarseClass[c]).padStart(12)}  ${String(s.splits.test.imagesPerCoarseClass[c]).padStart(11)}`,
    );
  });
  lines.push(`train channel mean ${fmt(s.channelMean)}, std ${fmt(s.channelStd)}`);
  for (const src of s.sources) lines.push(`source ${src.name}  ${src.bytes} bytes  sha256 ${src.sha256}`);
  return lines.join('\n');
}

function onePositional(positionals: string[], command: string): string {
  if (positionals.length !== 1) {
    throw new DatasetError(
      `'${command}' takes exactly one dataset name (got ${positionals.length}). Known datasets: ${DATASET_NAMES.join(', ')}.\n${USAGE}`,
    );
  }
  return positionals[0];
}

async function main(argv: string[]): Promise<void> {
  const [command, ...rest] = argv;
  if (command === 'build') return build(rest);
  if (command === 'stats') return stats(rest);
  if (command === undefined || command === 'help' || command === '--help' || command === '-h') {
    console.log(USAGE);
    return;
  }
  throw new DatasetError(`Unknown command '${command}'; use 'build' or 'stats'.\n${USAGE}`);
}

main(process.argv.slice(2)).catch((error: unknown) => {
  const message = error instanceof Error ? error.message : String(error);
  process.stderr.write(`error: ${message}\n`);
  if (process.env.MASKCON_DEBUG && error instanceof Error && error.stack) process.stderr.write(`${error.stack}\n`);
  process.exitCode = 1;
});
