import { serve as serveNode, type ServerType } from '@hono/node-server';
import { Hono, type Context } from 'hono';
import { bodyLimit } from 'hono/body-limit';
import { ImageDecodeError, DEFAULT_MAX_PIXELS } from './images.js';
import { ItemImages } from './item-image.js';
import type { EmbeddingEngine } from './model.js';
import { embedImage } from './query.js';
import { loadGallery, searchGallery, type Gallery, type SearchHit } from './search.js';
import type { EmbeddingStore } from './store.js';
import { SEARCH_PAGE } from './page.js';

/**
 * `pnpm serve`: a local search page and JSON API over one embedding store, on hono. Images are
 * served by store id only (the path comes from the store, never from a request), uploads are
 * capped in bytes and pixels, and a bad upload gets a 4xx with a sentence while the server
 * carries on.
 */

export interface ServeOptions {
  /** Largest upload in bytes (default 16 MiB). */
  maxUploadBytes?: number;
  /** Largest decoded image in pixels (default 64 Mpx). */
  maxPixels?: number;
  /** Default and largest k. */
  defaultK?: number;
  maxK?: number;
}

export const DEFAULT_MAX_UPLOAD_BYTES = 16 * 1024 * 1024;

const hitJson = (h: SearchHit) => ({
  rank: h.rank,
  id: h.id,
  score: h.score,
  coarse: h.item.coarseName,
  fine: h.item.fineName,
  source: h.item.kind === 'index' ? `${h.item.split}/${h.item.row}` : h.item.path.split('/').pop(),
});

/** The hono app (usable with any adapter, and in tests with `app.request`). */
export function searchApp(
  store: EmbeddingStore,
  engine: EmbeddingEngine | null,
  opts: ServeOptions = {},
): { app: Hono; close: () => void } {
  const maxUpload = opts.maxUploadBytes ?? DEFAULT_MAX_UPLOAD_BYTES;
  const maxPixels = opts.maxPixels ?? DEFAULT_MAX_PIXELS;
  const defaultK = opts.defaultK ?? 10;
  const maxK = opts.maxK ?? 200;
  const gallery: Gallery = loadGallery(store);
  const images = new ItemImages();
  const model = store.model()!;
  // One forward pass at a time: the engine's threads already use the cores.
  let queue: Promise<unknown> = Promise.resolve();
  const serial = <T>(f: () => Promise<T>): Promise<T> => {
    const next = queue.then(f, f);
    queue = next.catch(() => {});
    return next;
  };

  const app = new Hono();
  const fail = (c: Context, status: 400 | 404 | 413 | 415 | 500 | 503, error: string) =>
    c.json({ error }, status);

  const params = (c: Context): { k: number; coarse?: string } | string => {
    const kRaw = c.req.query('k');
    const k = kRaw === undefined ? defaultK : Number(kRaw);
    if (!Number.isInteger(k) || k < 1 || k > maxK)
      return `k must be an integer from 1 to ${maxK}, got ${kRaw}.`;
    const coarse = c.req.query('coarse') || undefined;
    return { k, coarse };
  };

  app.onError((err, c) => {
    if (err instanceof ImageDecodeError) return fail(c, 400, err.message);
    if (/No item|coarse label/.test(err.message)) return fail(c, 404, err.message);
    return fail(c, 500, `The search failed: ${err.message}`);
  });

  app.get('/', (c) => c.html(SEARCH_PAGE));

  app.get('/api/info', (c) =>
    c.json({
      items: gallery.ids.length,
      dim: gallery.dim,
      model: { arch: model.arch, runId: model.runId, inputShape: model.inputShape },
      engine: engine?.name ?? null,
      coarse: store.coarseNames(),
      maxUploadBytes: maxUpload,
      defaultK,
    }),
  );

  app.get('/api/items', (c) => {
    const offset = Number(c.req.query('offset') ?? 0);
    const limit = Number(c.req.query('limit') ?? 60);
    if (
      !Number.isInteger(offset) ||
      offset < 0 ||
      !Number.isInteger(limit) ||
      limit < 1 ||
      limit > 500
    )
      return fail(c, 400, 'offset must be an integer ≥ 0 and limit an integer from 1 to 500.');
    return c.json(
      store
        .items(offset, limit)
        .map((it) => ({ id: it.id, coarse: it.coarseName, fine: it.fineName })),
    );
  });

  app.get('/api/search', async (c) => {
    const p = params(c);
    if (typeof p === 'string') return fail(c, 400, p);
    const idRaw = c.req.query('id');
    const id = Number(idRaw);
    if (!idRaw || !Number.isInteger(id) || id < 1)
      return fail(
        c,
        400,
        `id must be a stored item id (a positive integer), got ${idRaw ?? 'nothing'}.`,
      );
    if (!gallery.rowOf.has(id)) return fail(c, 404, `No item ${id} in this store.`);
    const hits = await searchGallery(store, gallery, { id, k: p.k, coarse: p.coarse });
    return c.json({ query: { id }, hits: hits.map(hitJson) });
  });

  app.post(
    '/api/search',
    bodyLimit({
      maxSize: maxUpload,
      onError: (c) =>
        fail(
          c,
          413,
          `The upload is larger than ${Math.round(maxUpload / 2 ** 20)} MiB; send a smaller image.`,
        ),
    }),
    async (c) => {
      const p = params(c);
      if (typeof p === 'string') return fail(c, 400, p);
      if (!engine)
        return fail(c, 503, 'This server has no model to embed uploads with; search by id.');
      const type = c.req.header('content-type') ?? '';
      let bytes: Buffer;
      if (type.startsWith('multipart/form-data')) {
        const form = await c.req.parseBody();
        const f = form.image;
        if (!(f instanceof File))
          return fail(
            c,
            400,
            "The form has no file field named 'image'; send the picture as 'image'.",
          );
        bytes = Buffer.from(await f.arrayBuffer());
      } else bytes = Buffer.from(await c.req.arrayBuffer());
      if (bytes.byteLength === 0)
        return fail(c, 400, 'The upload is empty; send a JPEG, PNG or WebP image.');
      const vector = await serial(() =>
        embedImage(engine, bytes, { maxPixels, what: 'The upload' }),
      );
      const hits = await searchGallery(store, gallery, { vector, k: p.k, coarse: p.coarse });
      return c.json({ query: { upload: true }, hits: hits.map(hitJson) });
    },
  );

  app.get('/api/image/:id', async (c) => {
    const id = Number(c.req.param('id'));
    if (!Number.isInteger(id) || id < 1)
      return fail(c, 400, 'Images are served by stored item id (a positive integer).');
    const item = store.item(id);
    if (!item) return fail(c, 404, `No item ${id} in this store.`);
    try {
      const t = await images.thumbnail(item);
      return c.body(new Uint8Array(t.bytes), 200, {
        'content-type': t.type,
        'cache-control': 'max-age=3600',
      });
    } catch {
      return fail(c, 404, `The image of item ${id} is no longer readable at its recorded source.`);
    }
  });

  return { app, close: () => images.close() };
}

/** Starts the server; resolves with its address once listening. */
export function startServer(
  app: Hono,
  opts: { port: number; host: string },
): Promise<{ server: ServerType; url: string }> {
  return new Promise((resolveStart, reject) => {
    const server = serveNode({ fetch: app.fetch, port: opts.port, hostname: opts.host }, (info) => {
      const host = info.family === 'IPv6' ? `[${info.address}]` : info.address;
      resolveStart({ server, url: `http://${host}:${info.port}` });
    });
    server.once('error', (err: NodeJS.ErrnoException) =>
      reject(
        new Error(
          err.code === 'EADDRINUSE'
            ? `Port ${opts.port} on ${opts.host} is in use; pick another with --port.`
            : `Cannot listen on ${opts.host}:${opts.port}: ${err.message}`,
        ),
      ),
    );
  });
}
