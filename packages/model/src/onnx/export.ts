import * as tf from '@tensorflow/tfjs';
import { existsSync, mkdirSync, readFileSync, renameSync, rmSync, writeFileSync } from 'node:fs';
import { basename, dirname, join } from 'node:path';
import type { ExportMetadata } from '../export.js';
import {
  ATTR_FLOAT,
  ATTR_INT,
  ATTR_INTS,
  ONNX_FLOAT,
  ONNX_INT64,
  decodeOnnxModel,
  encodeOnnxModel,
  type OnnxNode,
  type OnnxTensor,
} from '@maskcon/onnx';

/**
 * ONNX export of an exported backbone (the TF.js layers model of `exportBackbone`): the layer
 * graph is translated op by op into an ONNX graph over NCHW tensors, so ONNX Runtime, PyTorch's
 * onnx2torch, OpenCV's dnn and friends can run it. Input `image` is N×C×H×W float32, already
 * normalised ((x/255 − mean)/std per channel, RGB); output `features` is N×D, the pooled
 * backbone feature (not L2-normalised). Both facts are also written to metadata_props.
 */

/** ONNX operator set of the export; every op used has its current definition at 13. */
export const ONNX_OPSET = 13;
/** IR version that goes with opset 13. */
export const ONNX_IR_VERSION = 7;
export const ONNX_INPUT_NAME = 'image';
export const ONNX_OUTPUT_NAME = 'features';

interface LayerLike {
  name: string;
  getClassName(): string;
  getConfig(): Record<string, unknown>;
  getWeights(): tf.Tensor[];
  inboundNodes: { inboundLayers: LayerLike[] }[];
}

const f32Bytes = (a: Float32Array) => new Uint8Array(a.buffer, a.byteOffset, a.byteLength);

function pairOf(v: unknown, what: string, layer: string): [number, number] {
  const a = typeof v === 'number' ? [v, v] : (v as number[]);
  if (!Array.isArray(a) || a.length !== 2 || a.some((x) => !Number.isInteger(x)))
    throw new Error(`Layer ${layer}: unsupported ${what} ${JSON.stringify(v)}.`);
  return [a[0], a[1]];
}

/** ZeroPadding2D config → ONNX pads [top, left, bottom, right]. */
function paddingOf(cfg: Record<string, unknown>, layer: string): number[] {
  const p = cfg.padding as number | [number, number] | [[number, number], [number, number]];
  if (typeof p === 'number') return [p, p, p, p];
  if (Array.isArray(p) && typeof p[0] === 'number') {
    const [h, w] = p as [number, number];
    return [h, w, h, w];
  }
  if (Array.isArray(p) && Array.isArray(p[0])) {
    const [[t, b], [l, r]] = p as [[number, number], [number, number]];
    return [t, l, b, r];
  }
  throw new Error(`Layer ${layer}: unsupported ZeroPadding2D padding ${JSON.stringify(p)}.`);
}

/**
 * Translates a TF.js LayersModel made of the layers `buildBackboneLayersModel` uses (Conv2D,
 * BatchNormalization, ReLU, ZeroPadding2D, MaxPooling2D, Add, GlobalAveragePooling2D) into ONNX
 * bytes. Zero padding in front of a convolution becomes the convolution's own `pads`; elsewhere
 * it becomes a `Pad` node. Any other layer is refused with its name.
 */
export function layersModelToOnnx(model: tf.LayersModel, meta: ExportMetadata): Uint8Array {
  const [h, w, c] = meta.inputShape;
  const nodes: OnnxNode[] = [];
  const initializers: OnnxTensor[] = [];
  /** ONNX tensor name of each layer's output. */
  const out = new Map<string, string>();
  /** Pending zero paddings that the consuming conv folds into its pads. */
  const pendingPad = new Map<string, { input: string; pads: number[] }>();
  const layers = model.layers as unknown as LayerLike[];
  const consumers = new Map<string, number>();
  for (const l of layers)
    for (const n of l.inboundNodes)
      for (const src of n.inboundLayers)
        consumers.set(src.name, (consumers.get(src.name) ?? 0) + 1);

  const weight = (name: string, dims: number[], data: Float32Array) => {
    initializers.push({ name, dataType: ONNX_FLOAT, dims, rawData: f32Bytes(data) });
    return name;
  };
  const inputsOf = (l: LayerLike): string[] =>
    l.inboundNodes[0].inboundLayers.map((src) => {
      const name = out.get(src.name);
      if (name === undefined)
        throw new Error(`Layer ${l.name} reads ${src.name}, which has not been translated.`);
      return name;
    });
  const emit = (
    l: LayerLike,
    opType: string,
    input: string[],
    attribute: OnnxNode['attribute'] = [],
  ) => {
    const o = `${l.name}:0`;
    nodes.push({ opType, name: l.name, input, output: [o], attribute });
    out.set(l.name, o);
  };
  const ints = (name: string, v: number[]) => ({ name, type: ATTR_INTS, ints: v });

  for (const l of layers) {
    const cls = l.getClassName();
    const cfg = l.getConfig();
    if (cls === 'InputLayer') {
      out.set(l.name, ONNX_INPUT_NAME);
      continue;
    }
    if (l.inboundNodes.length !== 1)
      throw new Error(
        `Layer ${l.name} is used ${l.inboundNodes.length} times; shared layers are not supported.`,
      );
    const input = inputsOf(l);
    switch (cls) {
      case 'ZeroPadding2D': {
        const pads = paddingOf(cfg, l.name);
        const next = layers.filter((x) =>
          x.inboundNodes[0]?.inboundLayers.some((s) => s.name === l.name),
        );
        if (
          next.length === 1 &&
          next[0].getClassName() === 'Conv2D' &&
          consumers.get(l.name) === 1
        ) {
          pendingPad.set(l.name, { input: input[0], pads });
          out.set(l.name, input[0]);
        } else {
          // ONNX Pad (opset 13): pads as an int64 input, [x1_begin…, x1_end…] over N, C, H, W.
          const padsName = `${l.name}.pads`;
          const [t, left, b, r] = pads;
          initializers.push({
            name: padsName,
            dataType: ONNX_INT64,
            dims: [8],
            rawData: new Uint8Array(
              BigInt64Array.from([0, 0, t, left, 0, 0, b, r].map(BigInt)).buffer,
            ),
          });
          emit(l, 'Pad', [input[0], padsName]);
        }
        break;
      }
      case 'Conv2D': {
        const [kernel, bias] = l.getWeights();
        const [kh, kw, cin, cout] = kernel.shape;
        if (cfg.padding !== 'valid')
          throw new Error(
            `Layer ${l.name}: only 'valid' convolutions (with explicit ZeroPadding2D) are supported, got '${cfg.padding}'.`,
          );
        const dil = pairOf(cfg.dilationRate ?? 1, 'dilation', l.name);
        const strides = pairOf(cfg.strides, 'strides', l.name);
        // TF.js kernel [kh, kw, cin, cout] → ONNX [cout, cin, kh, kw].
        const wt = tf.tidy(() => tf.transpose(kernel, [3, 2, 0, 1]).dataSync() as Float32Array);
        const src = l.inboundNodes[0].inboundLayers[0].name;
        const folded = pendingPad.get(src);
        const ins = [
          folded ? folded.input : input[0],
          weight(`${l.name}.weight`, [cout, cin, kh, kw], wt),
        ];
        if (bias) ins.push(weight(`${l.name}.bias`, [cout], bias.dataSync() as Float32Array));
        emit(l, 'Conv', ins, [
          ints('kernel_shape', [kh, kw]),
          ints('strides', strides),
          ints('dilations', dil),
          ints('pads', folded ? folded.pads : [0, 0, 0, 0]),
          { name: 'group', type: ATTR_INT, i: 1 },
        ]);
        break;
      }
      case 'BatchNormalization': {
        const axis = cfg.axis as number;
        if (axis !== -1 && axis !== 3)
          throw new Error(
            `Layer ${l.name}: BatchNormalization over axis ${axis}; only the channel axis is supported.`,
          );
        if (cfg.center === false || cfg.scale === false)
          throw new Error(
            `Layer ${l.name}: BatchNormalization without centre or scale is not supported.`,
          );
        const [gamma, beta, mean, variance] = l
          .getWeights()
          .map((t) => t.dataSync() as Float32Array);
        const n = gamma.length;
        emit(
          l,
          'BatchNormalization',
          [
            input[0],
            weight(`${l.name}.scale`, [n], gamma),
            weight(`${l.name}.bias`, [n], beta),
            weight(`${l.name}.mean`, [n], mean),
            weight(`${l.name}.var`, [n], variance),
          ],
          [{ name: 'epsilon', type: ATTR_FLOAT, f: cfg.epsilon as number }],
        );
        break;
      }
      case 'ReLU':
        if (cfg.maxValue != null)
          throw new Error(`Layer ${l.name}: ReLU with a maximum value is not supported.`);
        emit(l, 'Relu', input);
        break;
      case 'Activation':
        if (cfg.activation !== 'relu')
          throw new Error(
            `Layer ${l.name}: activation '${cfg.activation}' is not supported (relu is).`,
          );
        emit(l, 'Relu', input);
        break;
      case 'MaxPooling2D':
        if (cfg.padding !== 'valid')
          throw new Error(`Layer ${l.name}: only 'valid' max-pooling is supported.`);
        emit(l, 'MaxPool', input, [
          ints('kernel_shape', pairOf(cfg.poolSize, 'pool size', l.name)),
          ints('strides', pairOf(cfg.strides, 'strides', l.name)),
          ints('pads', [0, 0, 0, 0]),
        ]);
        break;
      case 'Add':
        if (input.length !== 2)
          throw new Error(`Layer ${l.name}: Add of ${input.length} inputs; only 2 are supported.`);
        emit(l, 'Add', input);
        break;
      case 'GlobalAveragePooling2D': {
        // N×C×H×W → N×C×1×1 → N×C.
        const pooled = `${l.name}.pooled`;
        nodes.push({
          opType: 'GlobalAveragePool',
          name: `${l.name}.pool`,
          input,
          output: [pooled],
        });
        emit(l, 'Flatten', [pooled], [{ name: 'axis', type: ATTR_INT, i: 1 }]);
        break;
      }
      default:
        throw new Error(
          `Layer ${l.name} (${cls}) has no ONNX translation; the exporter covers the layers of exported MaskCon backbones.`,
        );
    }
  }
  const last = layers[layers.length - 1];
  const finalName = out.get(last.name);
  if (!finalName) throw new Error('The model has no output layer.');
  // Rename the last node's output to the public output name.
  for (const n of nodes) n.output = n.output.map((o) => (o === finalName ? ONNX_OUTPUT_NAME : o));
  const dim = (model.outputs[0].shape as (number | null)[])[1];
  if (typeof dim !== 'number') throw new Error('The model output has no fixed feature size.');

  return encodeOnnxModel({
    irVersion: ONNX_IR_VERSION,
    opset: ONNX_OPSET,
    producerName: '@maskcon/model',
    producerVersion: '1',
    docString: `MaskCon backbone (${meta.arch}): input '${ONNX_INPUT_NAME}' N×${c}×${h}×${w} float32 RGB, normalised per channel as (x/255 − mean)/std with mean ${JSON.stringify(meta.mean)} and std ${JSON.stringify(meta.std)}; output '${ONNX_OUTPUT_NAME}' N×${dim}, the pooled backbone feature (L2-normalise it for cosine retrieval).`,
    graphName: 'maskcon_backbone',
    nodes,
    initializers,
    inputs: [{ name: ONNX_INPUT_NAME, dims: ['batch', c, h, w] }],
    outputs: [{ name: ONNX_OUTPUT_NAME, dims: ['batch', dim] }],
    metadata: {
      maskcon: JSON.stringify(meta),
      input_layout: 'NCHW',
      input_size: `${h}x${w}`,
      normalisation: '(x/255 - mean) / std per channel, x in [0, 255], channels in RGB order',
      mean: JSON.stringify(meta.mean),
      std: JSON.stringify(meta.std),
      feature_dim: String(dim),
    },
  });
}

/** Writes `file` atomically (temporary sibling + rename). */
export function writeOnnxModel(file: string, bytes: Uint8Array): void {
  mkdirSync(dirname(file), { recursive: true });
  const tmp = join(dirname(file), `.${basename(file)}.tmp-${process.pid}`);
  try {
    writeFileSync(tmp, bytes);
    renameSync(tmp, file);
  } catch (err) {
    rmSync(tmp, { force: true });
    throw err;
  }
}

/** The MaskCon metadata written into an ONNX export, checked for the fields inference needs. */
export function readOnnxMetadata(file: string): ExportMetadata {
  if (!existsSync(file)) throw new Error(`No ONNX model at ${file}.`);
  const decoded = decodeOnnxModel(readFileSync(file), file);
  const raw = decoded.metadata.maskcon;
  if (!raw)
    throw new Error(
      `${file} has no 'maskcon' metadata_props entry; was it exported by \`pnpm export\`?`,
    );
  let meta: ExportMetadata;
  try {
    meta = JSON.parse(raw) as ExportMetadata;
  } catch {
    throw new Error(`${file}: its 'maskcon' metadata is not JSON; re-export the model.`);
  }
  const okShape =
    Array.isArray(meta.inputShape) &&
    meta.inputShape.length === 3 &&
    meta.inputShape.every((v) => Number.isInteger(v) && v > 0 && v <= 4096);
  const c = okShape ? meta.inputShape[2] : 0;
  const okNorm = (a: unknown) =>
    Array.isArray(a) && (a.length === c || a.length === 1) && a.every((v) => Number.isFinite(v));
  if (!okShape || !okNorm(meta.mean) || !okNorm(meta.std) || typeof meta.arch !== 'string')
    throw new Error(`${file}: its 'maskcon' metadata lacks a valid arch, inputShape, mean or std.`);
  return meta;
}
