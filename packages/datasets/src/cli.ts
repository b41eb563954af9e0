#!/usr/bin/env node
/**
 * pnpm datasets:build <name> [--root DIR] [--out DIR] [--force] [--skip-bad] [--short-side N] [--seed N]
 * pnpm datasets:build csv --name NAME [--csv FILE] [--root DIR] [--image-size N] …
 * pnpm datasets:stats <name> [--out DIR] [--json]
 */
import { existsSync } from 'node:fs';
import { createCommand, intOption, Option, runCli } from './cli-kit.js';
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
import { DEFAULT_SHORT_SIDE, type SkippedImage } from './image-files.js';
import { describeImageChanges } from './image-inventory.js';
import { CSV_DEFAULT_IMAGE_SIZE } from './sources/csv.js';
import type { SourceOptions } from './source-options.js';

interface BuildFlags {
  root?: string;
  out?: string;
  force: boolean;
  skipBad: boolean;
  shortSide?: number;
  seed?: number;
  name?: string;
  csv?: string;
  imageSize?: number;
  allowSymlinks: boolean;
  download: boolean;
}

async function build(dataset: string, values: BuildFlags): Promise<void> {
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
    skipBad: values.skipBad,
    onSkip: (item) => skipped.push(item),
    shortSide: values.shortSide,
    seed: values.seed,
    name: values.name,
    csvFile: values.csv,
    imageSize: values.imageSize,
    allowSymlinks: values.allowSymlinks,
  };
  if (values.imageSize !== undefined && dataset !== 'csv') {
    throw new DatasetError(
      `--image-size only applies to the csv dataset; ${dataset}'s training size is in its recipe.`,
    );
  }
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
  for (const note of result.notes ?? []) console.log(`${name}: ${note}`);
  if (result.upToDate) {
    const what = result.imageChanges
      ? 'same metadata checksums, settings, builder version and image files'
      : 'same source checksums, settings and builder version';
    console.log(
      `${name}: ${result.path} is up to date (${what}; ${result.counts.train} train / ${result.counts.test} test images). Use --force to rebuild.`,
    );
  } else {
    if (result.imageChanges) {
      const reused = result.reusedImages ? `; ${result.reusedImages} unchanged images reused` : '';
      console.log(`${name}: ${describeImageChanges(result.imageChanges)}${reused}.`);
    }
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

function stats(target: string, values: { out?: string; json: boolean }): void {
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

const datasetsHelp = `Datasets: ${DATASET_NAMES.join(', ')}`;

const program = createCommand(
  'pnpm datasets',
  'Build SQLite indexes from the published dataset files, and print their statistics.',
);

program
  .command('build')
  .description('build the SQLite index of a dataset from its published files')
  .argument('<name>', 'dataset to build')
  .option(
    '--root <dir>',
    "directory with the dataset's published files (csv: the folder image paths are relative to)",
  )
  .option('--out <dir>', 'directory for the index (default: $MASKCON_DATA or ./data)')
  .option('--force', 'rebuild even when the index is up to date', false)
  .option(
    '--skip-bad',
    'leave out unreadable images and list them at the end, instead of stopping',
    false,
  )
  .addOption(
    new Option(
      '--short-side <n>',
      `JPEG datasets: shorter side of the stored copies in pixels (default: ${DEFAULT_SHORT_SIDE})`,
    ).argParser(intOption('--short-side', { min: 1 })),
  )
  .addOption(
    new Option(
      '--seed <n>',
      'seed of splits a dataset derives itself (SOP recipes, csv without a split column)',
    ).argParser(intOption('--seed', { min: 0 })),
  )
  .addOption(
    new Option(
      '--image-size <n>',
      `csv: side of the square crops training uses, recorded in the index (default: ${CSV_DEFAULT_IMAGE_SIZE})`,
    ).argParser(intOption('--image-size', { min: 8, max: 4096 })),
  )
  .option(
    '--allow-symlinks',
    'SOP, Cars196, csv: follow symlinks inside --root that lead outside it (image folders on another disk)',
    false,
  )
  .option('--name <name>', 'csv: name of the index (<out>/NAME.sqlite)')
  .option('--csv <file>', 'csv: the CSV/TSV file (default: <root>/labels.csv)')
  .option(
    '--download',
    'cifar100, cifartoy_*, fashion_mnist: fetch the published files into $MASKCON_CACHE (default data/cache), resuming and md5-checking',
    false,
  )
  .addHelpText(
    'after',
    `\n${datasetsHelp}\nA user CSV: pnpm datasets:build csv --name NAME [--csv FILE] [--root DIR] …`,
  )
  .action((name: string, values: BuildFlags) => build(name, values));

program
  .command('stats')
  .description("print an index's image and class counts per split")
  .argument('<name|index.sqlite>', 'dataset name, or the path of an index file')
  .option('--out <dir>', 'directory of the index (default: $MASKCON_DATA or ./data)')
  .option('--json', 'print the statistics as JSON', false)
  .addHelpText('after', `\n${datasetsHelp}`)
  .action((target: string, values: { out?: string; json: boolean }) => stats(target, values));

runCli(async () => {
  await program.parseAsync();
});
