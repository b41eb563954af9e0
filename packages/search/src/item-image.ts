import { readFileSync } from 'node:fs';
import sharp from 'sharp';
import { openIndex, type CoarseFineDataset, type Split } from '@maskcon/datasets';
import type { StoreItem } from './store.js';

/**
 * The picture of a stored item, looked up by the item (so by store id): the file the store
 * recorded, or the pixels of its index row. A path never comes from a request.
 */
export class ItemImages {
  private readonly indexes = new Map<string, CoarseFineDataset>();

  private dataset(path: string, split: string): CoarseFineDataset {
    const key = `${path}#${split}`;
    let ds = this.indexes.get(key);
    if (!ds) {
      ds = openIndex(path, split as Split);
      this.indexes.set(key, ds);
    }
    return ds;
  }

  /** A PNG or JPEG thumbnail (longer side ≤ `side`, never enlarged beyond 4×) with its type. */
  async thumbnail(item: StoreItem, side = 192): Promise<{ bytes: Buffer; type: string }> {
    let img: sharp.Sharp;
    if (item.kind === 'index') {
      const px = this.dataset(item.path, item.split ?? 'test').image(item.row ?? 0);
      img = sharp(Buffer.from(px.data.buffer, px.data.byteOffset, px.data.byteLength), {
        raw: { width: px.width, height: px.height, channels: px.channels as 1 | 3 },
      });
      // Small dataset images (28–64 px) are shown enlarged with crisp pixels.
      const scale = Math.max(1, Math.min(4, Math.floor(side / Math.max(px.width, px.height))));
      if (scale > 1) img = img.resize({ width: px.width * scale, kernel: 'nearest' });
    } else {
      img = sharp(readFileSync(item.path), { limitInputPixels: 64 * 2 ** 20 })
        .rotate()
        .resize({ width: side, height: side, fit: 'inside', withoutEnlargement: true });
      return { bytes: await img.jpeg({ quality: 85 }).toBuffer(), type: 'image/jpeg' };
    }
    return { bytes: await img.png().toBuffer(), type: 'image/png' };
  }

  close(): void {
    for (const ds of this.indexes.values()) ds.close();
    this.indexes.clear();
  }
}
