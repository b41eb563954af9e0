import type { ImageFileOptions } from './image-files.js';

/**
 * Build settings beyond the dataset root that some sources take (the CLI's `--skip-bad`,
 * `--short-side`, `--seed`, `--name`, `--csv`). A source ignores what it does not use.
 */
export interface SourceOptions extends ImageFileOptions {
  /** Seed for splits a source derives itself (SOP recipes, CSV without a split column). */
  readonly seed?: number;
  /** `csv` only: the index name (`<out>/<name>.sqlite`). */
  readonly name?: string;
  /** `csv` only: the CSV/TSV file (default `<root>/labels.csv`). */
  readonly csvFile?: string;
  /** `csv` only: side of the square crops training uses (`--image-size`, default 224). */
  readonly imageSize?: number;
  /** JPEG datasets: follow symlinks inside the root that lead outside it (`--allow-symlinks`). */
  readonly allowSymlinks?: boolean;
}
