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

/** The image files a JPEG dataset decodes, for the per-image up-to-date check. */
export interface ImageFileList {
  /** Every image file a build reads (both splits), as the absolute paths records carry. */
  paths(): readonly string[];
  /**
   * The settings that decide a file's decoded pixels (short side, decoder version): pixels of
   * an earlier build are reused for unchanged files only when this is equal.
   */
  readonly decodeKey: string;
}

/** What `writeIndex` hands a source when it asks for a split. */
export interface ReadContext {
  /** Pixels an earlier build decoded from this file, when the file has not changed since. */
  readonly reuse?: (path: string) => ImageU8 | undefined;
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
  /**
   * JPEG datasets: their image files, whose size, mtime and sha256 are recorded per image so
   * that a repaired, replaced or deleted image makes the index out of date.
   */
  readonly imageFiles?: ImageFileList;
  /**
   * The side of the square crops training uses for this dataset, when the builder decides it
   * (csv `--image-size`); stored as `meta.image_size` and read back as `imageSize`.
   */
  readonly imageSize?: number;
  /** Sentences about choices the builder made (e.g. how it split), for the build output. */
  notes?(): readonly string[];
  /** Stream a split's records in index order (idx 0, 1, …). */
  readSplit(split: Split, context?: ReadContext): SplitRecords | Promise<SplitRecords>;
}

/** Progress of a build, reported often (the listener throttles its own output). */
export interface BuildProgress {
  /** hash: checksums of the source files (bytes); images: the image-file check; write: records. */
  readonly phase: 'hash' | 'images' | 'write';
  /** Set when phase = 'write'. */
  readonly split?: Split;
  /** Bytes hashed or images written so far in this phase/split. */
  readonly done: number;
  readonly total?: number;
  readonly unit: 'bytes' | 'images';
}

export type ProgressListener = (progress: BuildProgress) => void;
