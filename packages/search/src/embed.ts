import { makePipeline } from '@maskcon/augment';
import { Rng } from '@maskcon/random';
import type { Catalogue, CatalogueItem } from './catalogue.js';
import type { EmbeddingEngine } from './model.js';
import type { EmbeddingStore, ModelIdentity, NewItem } from './store.js';

export interface EmbedOptions {
  /** Images per forward pass and per transaction (default 64). */
  batchSize?: number;
  /** A store embedded with another model is emptied and re-embedded (default: refuse). */
  replaceModel?: boolean;
  /** Leave out files that fail to decode (default: stop with the file's name). */
  skipBad?: boolean;
  onSkip?: (path: string, reason: string) => void;
  /** Keep items of this collection that are no longer in the catalogue (default: remove them). */
  keepMissing?: boolean;
  /** After each batch: items looked at, items embedded. */
  onProgress?: (seen: number, embedded: number) => void;
}

export interface EmbedResult {
  added: number;
  updated: number;
  unchanged: number;
  removed: number;
  skipped: number;
  seconds: number;
}

/** In place: each row of n×dim scaled to unit length (all-zero rows stay zero). */
export function l2NormalizeInPlace(x: Float32Array, dim: number): Float32Array {
  for (let r = 0; r < x.length; r += dim) {
    let s = 0;
    for (let c = 0; c < dim; c++) s += x[r + c] * x[r + c];
    const inv = s > 0 ? 1 / Math.sqrt(s) : 0;
    for (let c = 0; c < dim; c++) x[r + c] *= inv;
  }
  return x;
}

/** Refuses (or, with replaceModel, empties) a store that holds another model's vectors. */
export function checkStoreModel(
  store: EmbeddingStore,
  model: ModelIdentity,
  replaceModel: boolean,
): void {
  const had = store.model();
  if (!had || had.weightsHash === model.weightsHash) return;
  if (!replaceModel)
    throw new Error(
      `${store.file} holds features of another model (${had.arch}${had.runId !== null ? `, run ${had.runId}` : ''}, weights ${had.weightsHash.slice(0, 12)}); ` +
        `this model is ${model.arch}${model.runId !== null ? `, run ${model.runId}` : ''}, weights ${model.weightsHash.slice(0, 12)}. ` +
        'Use another --out file, or --replace-model to re-embed everything.',
    );
  store.clear();
}

/**
 * Embeds a catalogue into the store, incrementally: items whose content is already stored are
 * only marked as seen; new or changed ones are decoded, passed through the test transform and
 * the engine, L2-normalised and written — one transaction per batch, so a killed run resumes
 * where its last batch ended. Memory holds one batch of images.
 */
export async function embedCatalogue(
  store: EmbeddingStore,
  catalogue: Catalogue,
  engine: EmbeddingEngine,
  model: ModelIdentity,
  opts: EmbedOptions = {},
): Promise<EmbedResult> {
  const t0 = performance.now();
  const batchSize = opts.batchSize ?? 64;
  if (!Number.isInteger(batchSize) || batchSize < 1)
    throw new Error(`--batch-size must be a positive integer, got ${batchSize}.`);
  checkStoreModel(store, model, opts.replaceModel === true);
  const [size, , channels] = model.inputShape;
  const pipeline = makePipeline('test', { size, mean: model.mean, std: model.std });
  const rng = new Rng(0); // the test pipeline draws no random numbers
  const per = size * size * channels;
  const input = new Float32Array(batchSize * per);
  const generation = store.nextGeneration();
  const collection = catalogue.collection;
  const result: EmbedResult = {
    added: 0,
    updated: 0,
    unchanged: 0,
    removed: 0,
    skipped: 0,
    seconds: 0,
  };
  let pending: { item: CatalogueItem; hash: string; isNew: boolean }[] = [];
  let seen: { id: number; size: number | null; mtimeMs: number | null; collection: string }[] = [];
  let looked = 0;
  let modelWritten = store.model() !== null;

  const flush = async () => {
    const rows: NewItem[] = [];
    if (pending.length > 0) {
      const decoded = await Promise.all(
        pending.map(({ item }) =>
          item.image(size, channels).then(
            (img) => ({ img }),
            (err: Error) => ({ err }),
          ),
        ),
      );
      const ok: typeof pending = [];
      decoded.forEach((d, i) => {
        if ('err' in d) {
          if (!opts.skipBad)
            throw new Error(`${d.err.message} (use --skip-bad to leave such files out)`);
          result.skipped++;
          opts.onSkip?.(pending[i].item.path, d.err.message);
          return;
        }
        pipeline(d.img, rng, input, ok.length * per);
        ok.push(pending[i]);
      });
      if (ok.length > 0) {
        const features = await engine.embed(input.subarray(0, ok.length * per), ok.length);
        const dim = engine.dim;
        l2NormalizeInPlace(features, dim);
        ok.forEach(({ item, hash, isNew }, i) => {
          rows.push({
            source: item.source,
            kind: item.kind,
            path: item.path,
            row: item.row,
            split: item.split,
            collection,
            coarseLabel: item.coarseLabel,
            fineLabel: item.fineLabel,
            coarseName: item.coarseName,
            fineName: item.fineName,
            size: item.size,
            mtimeMs: item.mtimeMs,
            contentHash: hash,
            vector: features.slice(i * dim, (i + 1) * dim),
          });
          if (isNew) result.added++;
          else result.updated++;
        });
      }
    }
    store.writeBatch(rows, seen, generation, modelWritten ? undefined : model);
    modelWritten = true;
    pending = [];
    seen = [];
    opts.onProgress?.(looked, result.added + result.updated);
  };

  try {
    for await (const item of catalogue.items()) {
      looked++;
      const st = store.state(item.source);
      if (st && item.size !== null && st.size === item.size && st.mtimeMs === item.mtimeMs) {
        seen.push({ id: st.id, size: item.size, mtimeMs: item.mtimeMs, collection });
        result.unchanged++;
      } else {
        const hash = await item.hash();
        if (st && st.contentHash === hash) {
          seen.push({ id: st.id, size: item.size, mtimeMs: item.mtimeMs, collection });
          result.unchanged++;
        } else pending.push({ item, hash, isNew: !st });
      }
      if (pending.length >= batchSize || seen.length >= 4096) await flush();
    }
    await flush();
    if (!opts.keepMissing) result.removed = store.prune(collection, generation);
  } finally {
    catalogue.close();
  }
  result.seconds = (performance.now() - t0) / 1000;
  return result;
}
