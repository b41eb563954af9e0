import { makePipeline } from '@maskcon/augment';
import { Rng } from '@maskcon/random';
import { existsSync } from 'node:fs';
import { join } from 'node:path';
import { l2NormalizeInPlace } from './embed.js';
import { decodeForModel } from './images.js';
import { modelHash, openEngine, type EmbeddingEngine, type EngineOptions } from './model.js';
import type { ModelIdentity } from './store.js';

/** Opens the engine of the model a store was embedded with, checking it is still that model. */
export async function openStoreEngine(
  model: ModelIdentity,
  storeFile: string,
  opts: EngineOptions = {},
): Promise<EmbeddingEngine> {
  if (!existsSync(join(model.modelDir, 'model.json')))
    throw new Error(
      `${storeFile} was embedded with the model at ${model.modelDir}, which is gone; searching by image needs it (search by --id works without it).`,
    );
  const hash = modelHash(model.modelDir);
  if (hash !== model.weightsHash)
    throw new Error(
      `The model at ${model.modelDir} changed since ${storeFile} was embedded (weights ${hash.slice(0, 12)}, store ${model.weightsHash.slice(0, 12)}); re-embed the store.`,
    );
  return openEngine(model.modelDir, opts);
}

/** The unit feature of one image (bytes or a file path), as `pnpm embed` computes it. */
export async function embedImage(
  engine: EmbeddingEngine,
  image: Buffer | string,
  opts: { maxPixels?: number; what?: string } = {},
): Promise<Float32Array> {
  const [size, , channels] = engine.meta.inputShape;
  const img = await decodeForModel(image, size, channels, opts);
  const x = makePipeline('test', { size, mean: engine.meta.mean, std: engine.meta.std })(
    img,
    new Rng(0),
  );
  const f = await engine.embed(x, 1);
  return l2NormalizeInPlace(Float32Array.from(f), engine.dim);
}
