import { existsSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { DatasetError } from '../errors.js';
import {
  decodeImageFiles,
  DEFAULT_SHORT_SIDE,
  checkShortSide,
  imageDecodeKey,
  type ImageFileItem,
} from '../image-files.js';
import { DatasetRoot } from '../safe-path.js';
import { checkSeed, seededRandom, seededShuffle } from '../seeded-split.js';
import type { DatasetSource, ReadContext, SourceFile, SplitRecords } from '../source.js';
import type { SourceOptions } from '../source-options.js';
import type { Split } from '../types.js';

/**
 * Stanford Online Products (Song et al., 2016) in the two splits of the MaskCon supplementary.
 *
 * Inputs, in the dataset root: `Ebay_train.txt` and `Ebay_test.txt` (a header line
 * `image_id class_id super_class_id path`, then one image per line; paths like
 * `bicycle_final/111085122871_0.JPG` relative to the root) — or, when present, the authors'
 * exact split `sop_split{1,2}/{train,test}_{path,fine_label,coarse_label}.json`, which then
 * wins. The published train/test division of SOP is ignored: both files are pooled.
 *
 * - `sop_split1`: products with ≥ 8 images (5,035 in SOP), shuffled with the seed; the first
 *   ⌊n/2⌋ products (2,517) are train, the rest (2,518) test. Train and test share no product.
 * - `sop_split2`: products with exactly 12 images (1,498); per product, with the seed, 2
 *   images go to test and 10 to train. Train and test share every product.
 * Coarse labels are the 12 super-categories (`super_class_id` − 1), named by the folder of
 * their paths without `_final`; fine labels are the selected products re-numbered 0..n−1 in
 * `class_id` order. Images are listed in `image_id` order within a split. The recipe
 * reproduces the class counts of the paper; its image counts (25,368 / 25,278 for split1)
 * depend on the authors' random draw — drop their JSON files in for exactly theirs.
 */

export type SopSplitName = 'sop_split1' | 'sop_split2';

export const SOP_DEFAULT_SEED = 0;

export interface SopOptions extends SourceOptions {
  /** The Stanford_Online_Products folder (default ./Stanford_Online_Products). */
  readonly root?: string;
}

interface SopImage {
  readonly imageId: number;
  readonly productId: number;
  readonly superId: number;
  readonly path: string;
  readonly where: string;
}

interface SopPlan {
  readonly fineClassNames: string[];
  readonly coarseClassNames: string[];
  readonly items: Record<Split, ImageFileItem[]>;
}

const EBAY_FILES = ['Ebay_train.txt', 'Ebay_test.txt'] as const;
const JSON_PARTS = ['path', 'fine_label', 'coarse_label'] as const;

function jsonFileName(
  dataset: SopSplitName,
  split: Split,
  part: (typeof JSON_PARTS)[number],
): string {
  return `${dataset}/${split}_${part}.json`;
}

export function sopSource(dataset: SopSplitName, options: SopOptions = {}): DatasetSource {
  const rootPath = options.root ?? 'Stanford_Online_Products';
  const seed = checkSeed(options.seed ?? SOP_DEFAULT_SEED);
  const shortSide = checkShortSide(options.shortSide ?? DEFAULT_SHORT_SIDE);
  const jsonFiles = (['train', 'test'] as const).flatMap((split) =>
    JSON_PARTS.map((part) => jsonFileName(dataset, split, part)),
  );
  const useAuthorsSplit = jsonFiles.every((f) => existsSync(join(rootPath, f)));
  const datasetRoot = new DatasetRoot(rootPath, { allowSymlinks: options.allowSymlinks });
  const rootReal = datasetRoot.real;
  const names = useAuthorsSplit ? jsonFiles : [...EBAY_FILES];
  const sourceFiles: SourceFile[] = names.map((name) => ({ name, path: join(rootPath, name) }));

  let planned: SopPlan | undefined;
  const plan = (): SopPlan => {
    planned ??= useAuthorsSplit
      ? planFromAuthorsJson(dataset, rootPath, datasetRoot)
      : planFromRecipe(dataset, rootPath, seed, datasetRoot);
    return planned;
  };

  return {
    name: dataset,
    builderVersion: '1',
    get fineClassNames() {
      return plan().fineClassNames;
    },
    get coarseClassNames() {
      return plan().coarseClassNames;
    },
    sourceFiles,
    // The root is part of the inputs: identical metadata under another root is another dataset.
    config: useAuthorsSplit
      ? { split: 'authors-json', root: rootReal, shortSide, skipBad: options.skipBad ?? false }
      : { split: 'recipe', root: rootReal, seed, shortSide, skipBad: options.skipBad ?? false },
    imageFiles: {
      paths: () => [...plan().items.train, ...plan().items.test].map((item) => item.path),
      decodeKey: imageDecodeKey(shortSide),
    },
    missingFileHint: `Pass --root DIR pointing at the Stanford_Online_Products folder (with ${EBAY_FILES.join(' and ')} and the <category>_final/ image folders).`,
    readSplit(split: Split, context?: ReadContext): SplitRecords {
      const items = plan().items[split];
      return {
        // Under --skip-bad the count is unknown until the images are decoded.
        expectedCount: options.skipBad ? undefined : items.length,
        records: decodeImageFiles(dataset, split, items, {
          ...options,
          shortSide,
          reuse: context?.reuse,
        }),
      };
    },
  };
}

/** Parse one Ebay_*.txt file; every problem names the file and line. */
export function readEbayFile(path: string, name: string): SopImage[] {
  let text: string;
  try {
    text = readFileSync(path, 'utf8');
  } catch (error) {
    throw new DatasetError(
      `Cannot read the SOP metadata file ${path} (${(error as Error).message}); pass --root DIR pointing at the Stanford_Online_Products folder.`,
    );
  }
  const lines = text.split(/\r?\n/);
  const header = lines[0]?.trim().split(/\s+/).join(' ');
  if (header !== 'image_id class_id super_class_id path') {
    throw new DatasetError(
      `${path} line 1 is ${JSON.stringify(lines[0] ?? '')}, but an SOP metadata file starts with the header "image_id class_id super_class_id path"; it is not ${name} from Stanford Online Products.`,
    );
  }
  const out: SopImage[] = [];
  for (let i = 1; i < lines.length; i++) {
    const line = lines[i].trim();
    if (line === '') continue;
    const where = `${name} line ${i + 1}`;
    const fields = line.split(/\s+/);
    if (fields.length !== 4) {
      throw new DatasetError(
        `${path} line ${i + 1} has ${fields.length} fields; SOP metadata lines are "image_id class_id super_class_id path".`,
      );
    }
    const [imageId, productId, superId] = fields
      .slice(0, 3)
      .map((f) => (/^\d+$/.test(f) ? Number(f) : NaN));
    if (![imageId, productId, superId].every((v) => Number.isSafeInteger(v) && v >= 1)) {
      throw new DatasetError(
        `${path} line ${i + 1} has ids ${fields.slice(0, 3).join(' ')}; image_id, class_id and super_class_id must be positive integers.`,
      );
    }
    out.push({ imageId, productId, superId, path: fields[3], where });
  }
  return out;
}

/** The super-category name of a path: its first folder without `_final` (`bicycle_final/…` → `bicycle`). */
function categoryOfPath(path: string): string {
  const folder = path.split(/[\\/]/)[0];
  return folder.replace(/_final$/, '');
}

function planFromRecipe(
  dataset: SopSplitName,
  rootPath: string,
  seed: number,
  root: DatasetRoot,
): SopPlan {
  const images = EBAY_FILES.flatMap((name) => readEbayFile(join(rootPath, name), name));
  // Every path is checked, selected or not: a metadata file with one hostile path is refused whole.
  const resolved = new Map(images.map((image) => [image, root.resolve(image.path, image.where)]));

  // Coarse classes: super_class_id 1..K, each named by the one folder its paths live in.
  const superName = new Map<number, { name: string; where: string }>();
  for (const image of images) {
    const name = categoryOfPath(image.path);
    const seen = superName.get(image.superId);
    if (!seen) superName.set(image.superId, { name, where: image.where });
    else if (seen.name !== name) {
      throw new DatasetError(
        `${image.where} puts ${image.path} in super_class_id ${image.superId}, but ${seen.where} puts that super-category in folder ${seen.name}; the SOP metadata is inconsistent.`,
      );
    }
  }
  const maxSuper = Math.max(...superName.keys());
  const coarseClassNames: string[] = [];
  for (let s = 1; s <= maxSuper; s++) {
    const entry = superName.get(s);
    if (!entry)
      throw new DatasetError(
        `The SOP metadata has super_class_id up to ${maxSuper} but none with ${s}; the files are incomplete.`,
      );
    coarseClassNames.push(entry.name);
  }

  const byProduct = new Map<number, SopImage[]>();
  const seenImageIds = new Set<number>();
  for (const image of images) {
    if (seenImageIds.has(image.imageId)) {
      throw new DatasetError(
        `${image.where} repeats image_id ${image.imageId}; the SOP metadata files overlap or are corrupt.`,
      );
    }
    seenImageIds.add(image.imageId);
    const list = byProduct.get(image.productId);
    if (list) {
      if (list[0].superId !== image.superId) {
        throw new DatasetError(
          `${image.where} gives product ${image.productId} super_class_id ${image.superId}, but ${list[0].where} gives it ${list[0].superId}.`,
        );
      }
      list.push(image);
    } else byProduct.set(image.productId, [image]);
  }

  const keep = (n: number) => (dataset === 'sop_split1' ? n >= 8 : n === 12);
  const products = [...byProduct.keys()]
    .filter((p) => keep(byProduct.get(p)!.length))
    .sort((a, b) => a - b);
  if (products.length < 2) {
    throw new DatasetError(
      `Only ${products.length} SOP products have ${dataset === 'sop_split1' ? 'at least 8' : 'exactly 12'} images; ${dataset} needs the full Ebay_train.txt and Ebay_test.txt.`,
    );
  }
  const fineOf = new Map(products.map((p, i) => [p, i]));
  const random = seededRandom(seed);
  const chosen: Record<Split, SopImage[]> = { train: [], test: [] };

  if (dataset === 'sop_split1') {
    const shuffled = seededShuffle(products, random);
    const nTrain = Math.floor(shuffled.length / 2);
    shuffled.forEach((p, i) => chosen[i < nTrain ? 'train' : 'test'].push(...byProduct.get(p)!));
  } else {
    for (const p of products) {
      const own = byProduct
        .get(p)!
        .slice()
        .sort((a, b) => a.imageId - b.imageId);
      const shuffled = seededShuffle(own, random);
      chosen.test.push(...shuffled.slice(0, 2));
      chosen.train.push(...shuffled.slice(2));
    }
  }

  const toItems = (list: SopImage[]): ImageFileItem[] =>
    list
      .sort((a, b) => a.imageId - b.imageId)
      .map((image) => ({
        path: resolved.get(image)!,
        fine: fineOf.get(image.productId)!,
        coarse: image.superId - 1,
        where: image.where,
      }));
  return {
    fineClassNames: products.map((p) => `product ${p}`),
    coarseClassNames,
    items: { train: toItems(chosen.train), test: toItems(chosen.test) },
  };
}

function readJsonList(path: string, name: string): unknown[] {
  let parsed: unknown;
  try {
    parsed = JSON.parse(readFileSync(path, 'utf8'));
  } catch (error) {
    throw new DatasetError(
      `The split file ${path} is not valid JSON (${(error as Error).message}); replace it with the authors' original.`,
    );
  }
  if (!Array.isArray(parsed))
    throw new DatasetError(
      `The split file ${path} should hold a JSON list, as ${name} does in the authors' release.`,
    );
  return parsed;
}

function planFromAuthorsJson(dataset: SopSplitName, rootPath: string, root: DatasetRoot): SopPlan {
  const raw = {} as Record<
    Split,
    { paths: unknown[]; fine: unknown[]; coarse: unknown[]; files: string[] }
  >;
  for (const split of ['train', 'test'] as const) {
    const files = JSON_PARTS.map((part) => jsonFileName(dataset, split, part));
    const [paths, fine, coarse] = files.map((f) => readJsonList(join(rootPath, f), f));
    if (fine.length !== paths.length || coarse.length !== paths.length) {
      throw new DatasetError(
        `The ${dataset} ${split} split files disagree: ${files[0]} lists ${paths.length} images, ${files[1]} ${fine.length} fine labels and ${files[2]} ${coarse.length} coarse labels.`,
      );
    }
    raw[split] = { paths, fine, coarse, files };
  }
  const label = (value: unknown, file: string, i: number): number => {
    if (typeof value !== 'number' || !Number.isSafeInteger(value) || value < 0) {
      throw new DatasetError(
        `${file} entry ${i} is ${JSON.stringify(value)}; labels must be non-negative integers.`,
      );
    }
    return value;
  };
  let maxFine = -1;
  const coarseName = new Map<number, string>();
  const items = {} as Record<Split, ImageFileItem[]>;
  for (const split of ['train', 'test'] as const) {
    const { paths, fine, coarse, files } = raw[split];
    items[split] = paths.map((p, i) => {
      const where = `${files[0]} entry ${i}`;
      if (typeof p !== 'string')
        throw new DatasetError(`${where} is ${JSON.stringify(p)}; image paths must be strings.`);
      const f = label(fine[i], files[1], i);
      const c = label(coarse[i], files[2], i);
      maxFine = Math.max(maxFine, f);
      const name = categoryOfPath(p);
      const seen = coarseName.get(c);
      if (seen === undefined) coarseName.set(c, name);
      else if (seen !== name) {
        throw new DatasetError(
          `${files[2]} entry ${i} gives ${p} coarse label ${c}, which other entries give to folder ${seen}; the split files are inconsistent.`,
        );
      }
      return { path: root.resolve(p, where), fine: f, coarse: c, where };
    });
  }
  const maxCoarse = Math.max(...coarseName.keys());
  const coarseClassNames = Array.from(
    { length: maxCoarse + 1 },
    (_, c) => coarseName.get(c) ?? `coarse ${c}`,
  );
  return {
    fineClassNames: Array.from({ length: maxFine + 1 }, (_, f) => `product ${f}`),
    coarseClassNames,
    items,
  };
}
