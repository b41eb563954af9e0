import { join } from 'node:path';
import { writeFile } from './image-fixtures.js';
import { MatWriter, type MatIn } from './mat5-writer.js';

/**
 * Writers of the published SOP and Cars196 layouts, shared by the source tests here and the
 * end-to-end tests in tests/ (which train on what they write).
 */

/** One SOP product: its class_id, super_class_id, image count, and which Ebay file lists it. */
export interface SopProduct {
  classId: number;
  superId: number;
  images: number;
  /** Listed in Ebay_train.txt (else Ebay_test.txt). */
  train: boolean;
}

const EBAY_HEADER = 'image_id class_id super_class_id path';

/**
 * The Stanford_Online_Products layout under `root`: `Ebay_train.txt`, `Ebay_test.txt` and
 * `Ebay_info.txt` (every image) as published — header `image_id class_id super_class_id path`,
 * image ids counting from 1 in product order — and the JPEG `image(product, k)` at
 * `<category>_final/<1000 + class_id>_<k>.JPG`. `trainLines` may rewrite Ebay_train.txt's lines.
 * Returns path → [class_id, super_class_id].
 */
export async function writeSopFolder(
  root: string,
  products: readonly SopProduct[],
  categories: readonly string[],
  image: (product: SopProduct, k: number) => Promise<Uint8Array>,
  trainLines: (lines: string[]) => string[] = (l) => l,
): Promise<Map<string, [number, number]>> {
  const labels = new Map<string, [number, number]>();
  const files = { train: [EBAY_HEADER], test: [EBAY_HEADER], info: [EBAY_HEADER] };
  let imageId = 1;
  for (const p of products) {
    for (let k = 0; k < p.images; k++) {
      const path = `${categories[p.superId - 1]}_final/${1000 + p.classId}_${k}.JPG`;
      writeFile(join(root, path), await image(p, k));
      labels.set(path, [p.classId, p.superId]);
      const line = `${imageId++} ${p.classId} ${p.superId} ${path}`;
      files[p.train ? 'train' : 'test'].push(line);
      files.info.push(line);
    }
  }
  writeFile(join(root, 'Ebay_train.txt'), trainLines(files.train).join('\n') + '\n');
  writeFile(join(root, 'Ebay_test.txt'), files.test.join('\n') + '\n');
  writeFile(join(root, 'Ebay_info.txt'), files.info.join('\n') + '\n');
  return labels;
}

const scalar = (v: number): MatIn => ({ kind: 'double', dims: [1, 1], values: [v] });

/** One Cars196 annotation: image file name and 1-based class. */
export interface CarsAnnotation {
  fname: string;
  classId: number;
}

/** A cars_*_annos.mat `annotations` struct array, fields in the devkit's order. */
export function annotationsMat(rows: readonly CarsAnnotation[]): MatIn {
  return {
    kind: 'struct',
    dims: [1, rows.length],
    fields: ['bbox_x1', 'bbox_y1', 'bbox_x2', 'bbox_y2', 'class', 'fname'],
    elements: rows.map((r) => ({
      bbox_x1: scalar(1),
      bbox_y1: scalar(2),
      bbox_x2: scalar(10),
      bbox_y2: scalar(8),
      class: scalar(r.classId),
      fname: { kind: 'char', text: r.fname },
    })),
  };
}

/**
 * The Cars196 devkit layout under `root`: `devkit/cars_meta.mat` (class_names), the train
 * annotations in `devkit/cars_train_annos.mat`, the test ones in
 * `cars_test_annos_withlabels.mat` (MAT v5, optionally compressed), and each annotated image
 * `image(split, row)` at `cars_{train,test}/<fname>`.
 */
export async function writeCarsDevkit(
  root: string,
  names: readonly string[],
  rows: Record<'train' | 'test', readonly CarsAnnotation[]>,
  image: (split: 'train' | 'test', row: CarsAnnotation) => Promise<Uint8Array>,
  compress = false,
): Promise<void> {
  const w = new MatWriter();
  const meta: MatIn = {
    kind: 'cell',
    dims: [1, names.length],
    cells: names.map((text) => ({ kind: 'char', text })),
  };
  writeFile(join(root, 'devkit', 'cars_meta.mat'), w.file({ class_names: meta }, { compress }));
  for (const split of ['train', 'test'] as const) {
    for (const r of rows[split])
      writeFile(join(root, `cars_${split}`, r.fname), await image(split, r));
    const file =
      split === 'train' ? join('devkit', 'cars_train_annos.mat') : 'cars_test_annos_withlabels.mat';
    writeFile(join(root, file), w.file({ annotations: annotationsMat(rows[split]) }, { compress }));
  }
}
