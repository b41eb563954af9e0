#!/usr/bin/env node
/**
 * pnpm datasets:build <name> [--root DIR] [--out DIR] [--force] [--skip-bad] [--short-side N] [--seed N]
 * pnpm datasets:build csv --name NAME [--csv FILE] [--root DIR] …
 * pnpm datasets:stats <name> [--out DIR] [--json]
 */
import { existsSync } from 'node:fs';
import { parseArgs } from 'node:util';
import { DatasetError } from './errors.js';
import { createProgressPrinter } from './progress.js';
import { createDownloadPrinter, downloadDataset } from './download.js';
import { formatStats } from './format-stats.js';
import { datasetStats } from './read-index.js';
import {
  assertDatasetName,
  buildDataset,
  DATASET_NAMES,
  defaultIndexPath,
  isDatasetName,
} from './registry.js';
import type { SkippedImage } from './image-files.js';
import type { SourceOptions } from './source-options.js';

const USAGE = `Usage:
  pnpm datasets:build <name> [--root DIR] [--out DIR] [--force] [--skip-bad] [--short-side N] [--seed N]
  pnpm datasets:build csv --name NAME [--csv FILE] [--root DIR] [--out DIR] …
  pnpm datasets:stats <name|index.sqlite> [--out DIR] [--json]
Datasets: ${DATASET_NAMES.join(', ')}
--root        directory with the dataset's published files (csv: the folder image paths are relative to)
--out         directory for the index (default $MASKCON_DATA or ./data)
--skip-bad    leave out unreadable images and list them at the end, instead of stopping
--short-side  JPEG datasets: shorter side of the stored copies in pixels (default 256)
--seed        seed of splits a dataset derives itself (SOP recipes, csv without a split column)
--name        csv: name of the index (<out>/NAME.sqlite)
--csv         csv: the CSV/TSV file (default <root>/labels.csv)
--download    cifar100, cifartoy_*, fashion_mnist: fetch the published files into $MASKCON_CACHE (default data/cache), resuming and md5-checking`;

async function build(args: string[]): Promise<void> {
  const { values, positionals } = parseArgs({
    args,
    allowPositionals: true,
    options: {
      root: { type: 'string' },
      out: { type: 'string' },
      force: { type: 'boolean', default: false },
      'skip-bad': { type: 'boolean', default: false },
      'short-side': { type: 'string' },
      seed: { type: 'string' },
      name: { type: 'string' },
      csv: { type: 'string' },
      download: { type: 'boolean', default: false },
    },
  });
  const dataset = onePositional(positionals, 'build');
  assertDatasetName(dataset);
  if (values.name !== undefined && dataset !== 'csv') {
    throw new DatasetError(
      `--name only applies to the csv dataset; ${dataset} is always indexed as ${dataset}.`,
    );
  }
  if (dataset === 'csv' && values.name !== undefined && isDatasetName(values.name)) {
    throw new DatasetError(
      `--name ${values.name} is the name of a built-in dataset; choose another name so its index is not overwritten.`,
    );
  }
  const skipped: SkippedImage[] = [];
  const sourceOptions: SourceOptions = {
    skipBad: values['skip-bad'],
    onSkip: (item) => skipped.push(item),
    shortSide: integerOption(values['short-side'], '--short-side'),
    seed: integerOption(values.seed, '--seed'),
    name: values.name,
    csvFile: values.csv,
  };
  const name = dataset === 'csv' ? (values.name ?? 'csv') : dataset;
  // --download: fetch and md5-check the published files into the cache, then build from there.
  const root =
    values.download && values.root === undefined
      ? await downloadDataset(dataset, { onProgress: createDownloadPrinter() })
      : values.root;
  const started = performance.now();
  const result = await buildDataset(dataset, {
    root,
    outDir: values.out,
    force: values.force,
    onProgress: createProgressPrinter(name),
    sourceOptions,
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
  if (skipped.length > 0) {
    console.log(
      `${name}: skipped ${skipped.length} unreadable image${skipped.length === 1 ? '' : 's'} (--skip-bad):`,
    );
    for (const s of skipped) console.log(`  ${s.split} ${s.path} (${s.where}): ${s.reason}`);
  }
}

function integerOption(value: string | undefined, flag: string): number | undefined {
  if (value === undefined) return undefined;
  if (!/^\d+$/.test(value))
    throw new DatasetError(`${flag} takes a non-negative integer, not ${JSON.stringify(value)}.`);
  return Number(value);
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
  } else if (!isDatasetName(target) && existsSync(defaultIndexPath(target, values.out))) {
    path = defaultIndexPath(target, values.out); // a csv dataset built with --name
  } else {
    assertDatasetName(target);
    path = defaultIndexPath(target, values.out);
  }
  const s = datasetStats(path);
  console.log(values.json ? JSON.stringify(s, null, 2) : formatStats(s));
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
  if (process.env.MASKCON_DEBUG && error instanceof Error && error.stack)
    process.stderr.write(`${error.stack}\n`);
  process.exitCode = 1;
});
