import * as tf from '@tensorflow/tfjs';
import type { CoarseFineDataset } from '@maskcon/datasets';
import type { Pipeline } from '@maskcon/augment';
import { streamRng } from '@maskcon/random';

/**
 * Features of dataset images `indices` (test transform), in batches: `forward` maps an
 * n×H×W×C batch to n×dim features (the query encoder's backbone in training, an exported
 * model in `pnpm eval`). Returns n×dim row-major.
 */
export function embedImages(
  ds: CoarseFineDataset,
  indices: Int32Array,
  pipeline: Pipeline,
  forward: (x: tf.Tensor4D) => tf.Tensor2D,
  opts: { batchSize?: number; onProgress?: (done: number) => void } = {},
): { features: Float32Array; dim: number } {
  const batchSize = opts.batchSize ?? 256;
  const rng = streamRng('evaluation', 0); // the test pipeline draws no random numbers
  const size = pipeline.size;
  let features = new Float32Array(0);
  let dim = 0;
  for (let s = 0; s < indices.length; s += batchSize) {
    const idx = indices.subarray(s, Math.min(indices.length, s + batchSize));
    const images = ds.images(idx);
    const c = images[0].channels;
    const per = size * size * c;
    const buf = new Float32Array(idx.length * per);
    for (let i = 0; i < idx.length; i++) pipeline(images[i], rng, buf, i * per);
    const f = tf.tidy(() => forward(tf.tensor4d(buf, [idx.length, size, size, c])));
    if (s === 0) {
      dim = f.shape[1];
      features = new Float32Array(indices.length * dim);
    }
    features.set(f.dataSync() as Float32Array, s * dim);
    f.dispose();
    opts.onProgress?.(s + idx.length);
  }
  return { features, dim };
}
