import { createHash } from 'node:crypto';
import { existsSync, readFileSync, statSync } from 'node:fs';
import { opendir } from 'node:fs/promises';
import { dirname, extname, join, resolve } from 'node:path';
import { parse as parseCsv } from 'csv-parse/sync';
import { DatasetRoot, openIndex, type ImageU8, type Split } from '@maskcon/datasets';
import { decodeForModel, IMAGE_EXTENSIONS } from './images.js';
import type { ItemKind } from './store.js';

/**
 * What `pnpm embed` reads: a dataset index split, a folder of image files, or a CSV listing
 * image files with labels. Each is a collection of items, enumerated lazily (memory does not
 * grow with the catalogue) with what change detection needs.
 */

export interface CatalogueItem {
  source: string;
  kind: ItemKind;
  path: string;
  row: number | null;
  split: string | null;
  coarseLabel: number | null;
  fineLabel: number | null;
  coarseName: string | null;
  fineName: string | null;
  /** Files: size and mtime, the cheap change check; index rows: null. */
  size: number | null;
  mtimeMs: number | null;
  /** Content hash (sha1 of the file or of the stored pixels). */
  hash(): Promise<string>;
  /** The decoded image; `size`/`channels` are the network input's. */
  image(size: number, channels: number): Promise<ImageU8>;
}

export interface Catalogue {
  /** Key of the collection: items of it no longer present are pruned after a full pass. */
  collection: string;
  /** Number of items (known before enumerating, for the progress bar). */
  total: number;
  items(): AsyncIterable<CatalogueItem>;
  close(): void;
}

const sha1 = (b: Uint8Array) => createHash('sha1').update(b).digest('hex');

/** One split of a dataset index (`pnpm datasets:build`). */
export function indexCatalogue(indexFile: string, split: Split): Catalogue {
  const path = resolve(indexFile);
  const ds = openIndex(path, split);
  const fine = ds.fineLabels();
  const coarse = ds.coarseLabels();
  return {
    collection: `index:${path}#${split}`,
    total: ds.size,
    async *items() {
      const chunk = 256;
      for (let s = 0; s < ds.size; s += chunk) {
        const idx = Array.from({ length: Math.min(chunk, ds.size - s) }, (_, i) => s + i);
        const imgs = ds.images(idx);
        for (let j = 0; j < idx.length; j++) {
          const i = idx[j];
          const img = imgs[j];
          yield {
            source: `index:${path}#${split}/${i}`,
            kind: 'index',
            path,
            row: i,
            split,
            coarseLabel: coarse[i],
            fineLabel: fine[i],
            coarseName: ds.coarseClassNames[coarse[i]] ?? String(coarse[i]),
            fineName: ds.fineClassNames[fine[i]] ?? String(fine[i]),
            size: null,
            mtimeMs: null,
            hash: async () => sha1(img.data),
            image: async (_size, channels) => {
              if (img.channels !== channels)
                throw new Error(
                  `${path} has ${img.channels}-channel images but the model expects ${channels}; embed it with a model trained on such images.`,
                );
              return img;
            },
          };
        }
      }
    },
    close: () => ds.close(),
  };
}

function fileItem(
  file: string,
  labels: {
    coarseLabel: number | null;
    fineLabel: number | null;
    coarseName: string | null;
    fineName: string | null;
  },
): CatalogueItem {
  let st: ReturnType<typeof statSync>;
  try {
    st = statSync(file);
  } catch {
    throw new Error(
      `Image ${file} is missing or unreadable; fix the path or remove it from the list.`,
    );
  }
  return {
    source: `file:${file}`,
    kind: 'file',
    path: file,
    row: null,
    split: null,
    ...labels,
    size: Number(st.size),
    mtimeMs: Math.round(Number(st.mtimeMs)),
    hash: async () => sha1(readFileSync(file)),
    image: (size, channels) => decodeForModel(file, size, channels),
  };
}

async function* walkImages(dir: string): AsyncGenerator<string> {
  const entries: { name: string; isDir: boolean; isFile: boolean }[] = [];
  for await (const e of await opendir(dir))
    entries.push({ name: e.name, isDir: e.isDirectory(), isFile: e.isFile() });
  entries.sort((a, b) => (a.name < b.name ? -1 : a.name > b.name ? 1 : 0));
  for (const e of entries) {
    if (e.name.startsWith('.')) continue;
    const p = join(dir, e.name);
    // Symbolic links are not followed: the catalogue stays inside its folder.
    if (e.isDir) yield* walkImages(p);
    else if (
      e.isFile &&
      (IMAGE_EXTENSIONS as readonly string[]).includes(extname(e.name).toLowerCase())
    )
      yield p;
  }
}

/** Every JPEG/PNG/WebP file under `dir`, recursively, in path order; no labels. */
export async function imagesCatalogue(dir: string): Promise<Catalogue> {
  const root = resolve(dir);
  if (!existsSync(root) || !statSync(root).isDirectory())
    throw new Error(`--images ${dir} is not a folder; give a folder of JPEG, PNG or WebP files.`);
  let total = 0;
  for await (const _ of walkImages(root)) total++;
  const none = { coarseLabel: null, fineLabel: null, coarseName: null, fineName: null };
  return {
    collection: `images:${root}`,
    total,
    async *items() {
      for await (const f of walkImages(root)) yield fileItem(f, none);
    },
    close: () => {},
  };
}

const COLUMNS = {
  path: ['path', 'image', 'image_path', 'file', 'filename'],
  coarse: ['coarse', 'coarse_label', 'coarse_class'],
  fine: ['fine', 'fine_label', 'fine_class', 'label'],
} as const;

/**
 * A CSV/TSV with a header naming an image path column (`path`, `image`, `file`, …) and
 * optionally coarse and fine label columns — the same column names as `pnpm datasets:build
 * csv`. Paths are relative to `root` (default the CSV's folder) and must stay inside it.
 * Labels are kept as names, numbered in sorted order.
 */
export function csvCatalogue(csvFile: string, rootDir?: string): Catalogue {
  const file = resolve(csvFile);
  if (!existsSync(file)) throw new Error(`--csv ${csvFile} does not exist.`);
  const text = readFileSync(file, 'utf8');
  let rows: string[][];
  try {
    rows = parseCsv(text, {
      delimiter: file.toLowerCase().endsWith('.tsv') ? '\t' : ',',
      skip_empty_lines: true,
      trim: true,
      bom: true,
    }) as string[][];
  } catch (err) {
    throw new Error(`${csvFile} is not valid CSV (${(err as Error).message}).`);
  }
  if (rows.length < 2)
    throw new Error(`${csvFile} has no data rows; it needs a header row and one row per image.`);
  const header = rows[0].map((h) => h.toLowerCase());
  const col = (names: readonly string[]) => header.findIndex((h) => names.includes(h));
  const pathCol = col(COLUMNS.path);
  const coarseCol = col(COLUMNS.coarse);
  const fineCol = col(COLUMNS.fine);
  if (pathCol < 0)
    throw new Error(
      `${csvFile} has no image path column (looked for ${COLUMNS.path.join(', ')}; found ${rows[0].join(', ')}).`,
    );
  const root = new DatasetRoot(rootDir ?? dirname(file));
  const data = rows.slice(1);
  const names = (c: number) => (c < 0 ? [] : [...new Set(data.map((r) => r[c] ?? ''))].sort());
  const coarseNames = names(coarseCol);
  const fineNames = names(fineCol);
  const paths = data.map((r, i) => {
    const p = r[pathCol] ?? '';
    if (p === '') throw new Error(`${csvFile} data row ${i + 1} has no image path.`);
    return root.resolve(p, `${csvFile} data row ${i + 1}`);
  });
  return {
    collection: `csv:${file}`,
    total: data.length,
    async *items() {
      for (let i = 0; i < data.length; i++) {
        const c = coarseCol >= 0 ? data[i][coarseCol] : undefined;
        const f = fineCol >= 0 ? data[i][fineCol] : undefined;
        yield fileItem(paths[i], {
          coarseName: c ?? null,
          fineName: f ?? null,
          coarseLabel: c === undefined ? null : coarseNames.indexOf(c),
          fineLabel: f === undefined ? null : fineNames.indexOf(f),
        });
      }
    },
    close: () => {},
  };
}
