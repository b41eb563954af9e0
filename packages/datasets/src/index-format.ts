/**
 * The on-disk SQLite index: one file per dataset, read by `openIndex`.
 * Bump INDEX_FORMAT_VERSION whenever the schema or the meaning of a column changes.
 *
 * Version history: 1 = first format; 2 = `images.source_path` (the file a JPEG dataset's
 * image was decoded from; NULL for datasets stored from raw pixels), the covering index
 * `images_labels`, and 16 KiB pages. Still 2: the `source_images` table (per image file of a
 * JPEG dataset: size, mtime, sha256, where it went), which only the writer reads — an index
 * without it is simply rebuilt.
 */
export const INDEX_FORMAT_VERSION = '2';

export const INDEX_SCHEMA = `
CREATE TABLE meta (
  key   TEXT PRIMARY KEY,
  value TEXT NOT NULL
);
CREATE TABLE sources (
  name   TEXT PRIMARY KEY,
  path   TEXT NOT NULL,
  bytes  INTEGER NOT NULL,
  sha256 TEXT NOT NULL
);
CREATE TABLE classes (
  level TEXT NOT NULL CHECK (level IN ('fine', 'coarse')),
  id    INTEGER NOT NULL,
  name  TEXT NOT NULL,
  PRIMARY KEY (level, id)
);
CREATE TABLE images (
  split    TEXT NOT NULL CHECK (split IN ('train', 'test')),
  idx      INTEGER NOT NULL,
  fine     INTEGER NOT NULL,
  coarse   INTEGER NOT NULL,
  height   INTEGER NOT NULL,
  width    INTEGER NOT NULL,
  channels INTEGER NOT NULL,
  pixels   BLOB NOT NULL, -- HWC, u8, length height*width*channels
  source_path TEXT,       -- absolute path of the decoded source file (JPEG datasets), else NULL
  PRIMARY KEY (split, idx)
);
-- JPEG datasets: every image file the metadata listed, as the build saw it. bytes = -1 when the
-- file was missing; split/idx NULL when it is not in images (missing, or left out by --skip-bad).
CREATE TABLE source_images (
  path     TEXT PRIMARY KEY,
  bytes    INTEGER NOT NULL,
  mtime_ns TEXT NOT NULL,
  sha256   TEXT NOT NULL,
  split    TEXT,
  idx      INTEGER
);
-- Covers the per-split scans a reader does on open (labels, sizes), so they read this small
-- index instead of every pixel page of the table.
CREATE INDEX images_labels ON images (split, idx, fine, coarse, height, width, channels);
`;

/** Keys of the `meta` table. Values are text; JSON where noted. */
export const META = {
  dataset: 'dataset',
  formatVersion: 'format_version',
  builderVersion: 'builder_version',
  sourceConfig: 'source_config', // JSON object
  builtAt: 'built_at', // ISO 8601
  channelMean: 'channel_mean', // JSON number[], train pixels in [0,1]
  channelStd: 'channel_std', // JSON number[]
  imageShape: 'image_shape', // JSON [height, width, channels], or null when sizes vary
  counts: 'counts', // JSON { train, test }
  imageDecode: 'image_decode', // JPEG datasets: the ImageFileList decodeKey of the build
  imageSize: 'image_size', // training crop side chosen at build time (csv --image-size)
} as const;
