import type { ImageU8, Split } from './types.js';

/** One image of a split, as a source produces it, in split order. */
export interface DatasetRecord {
  readonly fine: number;
  readonly coarse: number;
  readonly image: ImageU8;
  /** The file the image was decoded from (JPEG datasets); stored as `images.source_path`. */
  readonly sourcePath?: string;
}

/** The records of one split. `expectedCount` (when the source knows it) drives the ETA. */
export interface SplitRecords {
  readonly expectedCount?: number;
  readonly records: Iterable<DatasetRecord> | AsyncIterable<DatasetRecord>;
}

/** A file whose bytes define the index: its sha256 decides whether a rebuild is needed. */
export interface SourceFile {
  /** Stable name relative to the dataset root (e.g. `train-images-idx3-ubyte.gz`). */
  readonly name: string;
  /** Where it is on this machine. */
  readonly path: string;
}

/**
 * A dataset in its real published format. Each dataset is one module in `src/sources/`
 * that returns one of these; `writeIndex` turns any of them into a SQLite index.
 */
export interface DatasetSource {
  /** Registry name, e.g. `fashion_mnist`. */
  readonly name: string;
  /** Bump when the records a builder produces change for the same input files. */
  readonly builderVersion: string;
  readonly fineClassNames: readonly string[];
  readonly coarseClassNames: readonly string[];
  /** Input files, hashed before building. */
  readonly sourceFiles: readonly SourceFile[];
  /**
   * Settings other than the files that change the records (e.g. a split seed). Part of the
   * up-to-date check; must be JSON-serialisable.
   */
  readonly config?: Readonly<Record<string, unknown>>;
  /** Appended to "file does not exist" errors, e.g. "Pass --root DIR …". */
  readonly missingFileHint?: string;
  /** Stream a split's records in index order (idx 0, 1, …). */
  readSplit(split: Split): SplitRecords | Promise<SplitRecords>;
}

/** Progress of a build, reported often (the listener throttles its own output). */
export interface BuildProgress {
  readonly phase: 'hash' | 'write';
  /** Set when phase = 'write'. */
  readonly split?: Split;
  /** Bytes hashed or images written so far in this phase/split. */
  readonly done: number;
  readonly total?: number;
  readonly unit: 'bytes' | 'images';
}

export type ProgressListener = (progress: BuildProgress) => void;
