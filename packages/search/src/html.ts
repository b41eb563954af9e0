import { mkdirSync, renameSync, writeFileSync } from 'node:fs';
import { basename, dirname, join } from 'node:path';
import { ItemImages } from './item-image.js';
import type { SearchHit } from './search.js';
import type { EmbeddingStore } from './store.js';

const esc = (s: string) => s.replace(/[&<>"']/g, (c) => `&#${c.charCodeAt(0)};`);

/** A self-contained HTML page (thumbnails inlined) of one search's results. */
export async function writeSearchHtml(
  file: string,
  store: EmbeddingStore,
  hits: SearchHit[],
  query: string,
): Promise<void> {
  const images = new ItemImages();
  const tiles: string[] = [];
  try {
    for (const h of hits) {
      let src = '';
      try {
        const t = await images.thumbnail(h.item);
        src = `data:${t.type};base64,${t.bytes.toString('base64')}`;
      } catch {
        // A file that disappeared since embedding: the tile says so instead of a picture.
      }
      tiles.push(
        `<figure>${src ? `<img src="${src}" alt="item ${h.id}">` : '<div class="missing">image missing</div>'}<figcaption>#${h.rank} · id ${h.id} · ${h.score.toFixed(3)}<br>${esc(h.item.coarseName ?? '')} ${esc(h.item.fineName ?? '')}</figcaption></figure>`,
      );
    }
  } finally {
    images.close();
  }
  const html = `<!doctype html><meta charset="utf-8"><title>search: ${esc(query)}</title>
<style>body{font:14px system-ui;margin:1.5em}figure{display:inline-block;margin:6px;text-align:center;width:200px}img{max-width:192px;max-height:192px;image-rendering:pixelated}.missing{width:192px;height:96px;background:#eee}</style>
<h1>${hits.length} nearest items of ${esc(query)}</h1><p>${esc(store.file)}</p>
${tiles.join('\n')}`;
  mkdirSync(dirname(file), { recursive: true });
  const tmp = join(dirname(file), `.${basename(file)}.tmp-${process.pid}`);
  writeFileSync(tmp, html);
  renameSync(tmp, file);
}
