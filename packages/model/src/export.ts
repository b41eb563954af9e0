import * as tf from '@tensorflow/tfjs';
import { mkdirSync, readFileSync, renameSync, rmSync, writeFileSync, existsSync } from 'node:fs';
import { dirname, join, basename } from 'node:path';
import type { ParamStore } from './params.js';
import { blockStride, stemOf } from './resnet.js';

/**
 * Export of a trained backbone as a standard TensorFlow.js LayersModel (model.json +
 * weights.bin): loadable with `tf.loadLayersModel` by anyone, without this project's training
 * code. The layer graph mirrors `backbone()` in eval mode (BN with running statistics);
 * PyTorch-style symmetric padding is expressed as ZeroPadding2D + 'valid' convolutions.
 */

export interface ExportMetadata {
  arch: string;
  /** Input image [height, width, channels]. */
  inputShape: [number, number, number];
  /** Per-channel normalisation the model expects ((x/255 − mean)/std). */
  mean: readonly number[];
  std: readonly number[];
  [key: string]: unknown;
}

const layerName = (name: string) => name.replace(/\./g, '_');

/** Builds the eval-mode backbone as a tf.LayersModel with the store's weights. */
export function buildBackboneLayersModel(
  p: ParamStore,
  inputShape: [number, number, number],
): tf.LayersModel {
  const weights: [tf.layers.Layer, tf.Tensor[]][] = [];
  const conv = (x: tf.SymbolicTensor, name: string, stride: number): tf.SymbolicTensor => {
    const w = p.get(`${name}.weight`);
    const k = w.shape[0]!;
    const pad = (k - 1) / 2;
    const input =
      pad > 0
        ? (tf.layers
            .zeroPadding2d({ padding: pad, name: layerName(`${name}.pad`) })
            .apply(x) as tf.SymbolicTensor)
        : x;
    const layer = tf.layers.conv2d({
      filters: w.shape[3]!,
      kernelSize: k,
      strides: stride,
      padding: 'valid',
      useBias: false,
      name: layerName(name),
    });
    const out = layer.apply(input) as tf.SymbolicTensor;
    weights.push([layer, [w]]);
    return out;
  };
  const bn = (x: tf.SymbolicTensor, name: string): tf.SymbolicTensor => {
    const layer = tf.layers.batchNormalization({ axis: -1, epsilon: 1e-5, name: layerName(name) });
    const out = layer.apply(x) as tf.SymbolicTensor;
    weights.push([
      layer,
      [
        p.get(`${name}.weight`),
        p.get(`${name}.bias`),
        p.get(`${name}.running_mean`),
        p.get(`${name}.running_var`),
      ],
    ]);
    return out;
  };
  const relu = (x: tf.SymbolicTensor) => tf.layers.reLU().apply(x) as tf.SymbolicTensor;

  const input = tf.input({ shape: inputShape, name: 'image' });
  let h: tf.SymbolicTensor;
  if (stemOf(p) === 'standard') {
    h = relu(bn(conv(input, 'conv1', 2), 'bn1'));
    // After ReLU every value is ≥ 0, so zero padding equals PyTorch's −∞ max-pool padding.
    h = tf.layers.zeroPadding2d({ padding: 1, name: 'maxpool_pad' }).apply(h) as tf.SymbolicTensor;
    h = tf.layers
      .maxPooling2d({ poolSize: 3, strides: 2, padding: 'valid', name: 'maxpool' })
      .apply(h) as tf.SymbolicTensor;
  } else {
    h = relu(bn(conv(input, 'conv1', 1), 'bn1'));
  }
  const bottleneck = p.trainable.has('layer1.0.conv3.weight');
  for (let i = 0; p.trainable.has(`layer${i + 1}.0.conv1.weight`); i++) {
    for (let j = 0; p.trainable.has(`layer${i + 1}.${j}.conv1.weight`); j++) {
      const name = `layer${i + 1}.${j}`;
      const s = blockStride(i, j);
      let out: tf.SymbolicTensor;
      if (bottleneck) {
        out = relu(bn(conv(h, `${name}.conv1`, 1), `${name}.bn1`));
        out = relu(bn(conv(out, `${name}.conv2`, s), `${name}.bn2`));
        out = bn(conv(out, `${name}.conv3`, 1), `${name}.bn3`);
      } else {
        out = relu(bn(conv(h, `${name}.conv1`, s), `${name}.bn1`));
        out = bn(conv(out, `${name}.conv2`, 1), `${name}.bn2`);
      }
      const sc = p.trainable.has(`${name}.downsample.0.weight`)
        ? bn(conv(h, `${name}.downsample.0`, s), `${name}.downsample.1`)
        : h;
      h = relu(
        tf.layers.add({ name: layerName(`${name}.add`) }).apply([out, sc]) as tf.SymbolicTensor,
      );
    }
  }
  const pooled = tf.layers
    .globalAveragePooling2d({ name: 'avgpool' })
    .apply(h) as tf.SymbolicTensor;
  const model = tf.model({ inputs: input, outputs: pooled, name: 'maskcon_backbone' });
  for (const [layer, w] of weights) layer.setWeights(w);
  return model;
}

/**
 * Writes `dir/model.json` + `dir/weights.bin` (TensorFlow.js layers-model format), atomically:
 * into a temporary sibling folder that is renamed into place.
 */
export async function exportBackbone(
  p: ParamStore,
  dir: string,
  meta: ExportMetadata,
): Promise<void> {
  const model = buildBackboneLayersModel(p, meta.inputShape);
  const tmp = join(dirname(dir), `.${basename(dir)}.tmp-${process.pid}`);
  rmSync(tmp, { recursive: true, force: true });
  mkdirSync(tmp, { recursive: true });
  try {
    await model.save(
      tf.io.withSaveHandler(async (artifacts) => {
        const data = artifacts.weightData;
        const bytes =
          data instanceof ArrayBuffer
            ? new Uint8Array(data)
            : new Uint8Array(Buffer.concat((data as ArrayBuffer[]).map((b) => Buffer.from(b))));
        writeFileSync(join(tmp, 'weights.bin'), bytes);
        const modelJson = {
          format: 'layers-model',
          generatedBy: `TensorFlow.js tfjs-layers v${tf.version_layers}`,
          convertedBy: '@maskcon/model exportBackbone',
          modelTopology: artifacts.modelTopology,
          weightsManifest: [{ paths: ['weights.bin'], weights: artifacts.weightSpecs }],
          userDefinedMetadata: { maskcon: meta },
        };
        writeFileSync(join(tmp, 'model.json'), JSON.stringify(modelJson));
        return {
          modelArtifactsInfo: {
            dateSaved: new Date(),
            modelTopologyType: 'JSON',
            weightDataBytes: bytes.byteLength,
          },
        };
      }),
    );
    if (existsSync(dir)) rmSync(dir, { recursive: true, force: true });
    renameSync(tmp, dir);
  } catch (err) {
    rmSync(tmp, { recursive: true, force: true });
    throw err;
  } finally {
    model.dispose();
  }
}

/** Loads an exported backbone (any backend; no training code involved) and its metadata. */
export async function loadBackbone(
  dir: string,
): Promise<{ model: tf.LayersModel; meta: ExportMetadata }> {
  await tf.ready(); // whichever backend is registered with the highest priority
  const jsonPath = join(dir, 'model.json');
  if (!existsSync(jsonPath))
    throw new Error(
      `No exported model at ${dir} (model.json missing); train a run first — it exports runs/<id>/model/.`,
    );
  const damaged = (what: string) =>
    new Error(
      `${what}; the exported model in ${dir} is damaged — export it again (pnpm train writes runs/<id>/model/).`,
    );
  let json: {
    modelTopology: object;
    weightsManifest: { paths: string[]; weights: tf.io.WeightsManifestEntry[] }[];
    userDefinedMetadata?: { maskcon?: ExportMetadata };
  };
  try {
    json = JSON.parse(readFileSync(jsonPath, 'utf8'));
  } catch (err) {
    throw damaged(`${jsonPath} is not valid JSON (${(err as Error).message})`);
  }
  if (
    typeof json?.modelTopology !== 'object' ||
    !Array.isArray(json.weightsManifest) ||
    !json.weightsManifest.every((g) => Array.isArray(g?.paths) && Array.isArray(g?.weights))
  )
    throw damaged(`${jsonPath} lacks a modelTopology or a weightsManifest of paths and weights`);
  const specs = json.weightsManifest.flatMap((g) => g.weights);
  const files = json.weightsManifest.flatMap((g) => g.paths);
  for (const f of files)
    if (typeof f !== 'string' || f !== basename(f) || f === '..' || f === '.')
      throw damaged(`${jsonPath} names the weights file "${f}", which is not a file beside it`);
  const buffers = files.map((f) => {
    try {
      return readFileSync(join(dir, f));
    } catch (err) {
      throw damaged(`cannot read ${join(dir, f)} (${(err as NodeJS.ErrnoException).code ?? err})`);
    }
  });
  const all = Buffer.concat(buffers);
  // Every weight's bytes must be there: a truncated weights.bin would otherwise load garbage.
  const bytesOf: Record<string, number> = { float32: 4, int32: 4, bool: 1 };
  const expected = specs.reduce(
    (n, w) => n + (bytesOf[w.dtype] ?? 4) * w.shape.reduce((a, b) => a * b, 1),
    0,
  );
  if (!specs.some((w) => w.quantization) && all.byteLength !== expected)
    throw damaged(
      `${files.map((f) => join(dir, f)).join(', ')} hold${files.length === 1 ? 's' : ''} ${all.byteLength.toLocaleString('en')} bytes but ${jsonPath} lists ${expected.toLocaleString('en')} bytes of weights (truncated, or from another export)`,
    );
  const weightData = all.buffer.slice(all.byteOffset, all.byteOffset + all.byteLength);
  let model: tf.LayersModel;
  try {
    model = await tf.loadLayersModel(
      tf.io.fromMemory({ modelTopology: json.modelTopology, weightSpecs: specs, weightData }),
    );
  } catch (err) {
    throw damaged(`${jsonPath} does not describe a loadable model (${(err as Error).message})`);
  }
  const meta = json.userDefinedMetadata?.maskcon;
  if (!meta)
    throw new Error(
      `${jsonPath} has no MaskCon metadata (userDefinedMetadata.maskcon); was it exported by this project?`,
    );
  return { model, meta };
}
