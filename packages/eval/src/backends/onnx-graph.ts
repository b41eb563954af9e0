/**
 * The one ONNX graph this package runs: cosine similarities of a query chunk against the
 * gallery, reduced to each query's best `k` at once, so the m×N similarity block never leaves
 * ONNX Runtime.
 *
 *   q: m×d float32, g: N×d float32, k: int64[1]
 *   s = Gemm(q, g, transB=1)            // m×N
 *   values, indices = TopK(s, k, axis=1, largest=1, sorted=1)   // m×k each
 *
 * Every dimension is symbolic, so one encoded model serves every N, d and k. The bytes are
 * encoded by `@maskcon/onnx`, the project's one copy of the ONNX protobuf schema (model's
 * exporter writes whole networks with it), which depends on protobufjs only — not on tfjs.
 */
import {
  ATTR_INT,
  ONNX_FLOAT,
  ONNX_INT64,
  encodeOnnxModel,
  type OnnxAttribute,
} from '@maskcon/onnx';

const intAttr = (name: string, i: number): OnnxAttribute => ({ name, type: ATTR_INT, i });

let encoded: Uint8Array | undefined;

/** The similarity + top-k graph as ONNX model bytes (opset 17), encoded once per process. */
export function similarityTopKModel(): Uint8Array {
  encoded ??= encodeOnnxModel({
    irVersion: 8,
    opset: 17,
    producerName: '@maskcon/eval',
    producerVersion: '',
    docString: '',
    graphName: 'similarity_top_k',
    nodes: [
      {
        name: 'similarity',
        opType: 'Gemm',
        input: ['q', 'g'],
        output: ['s'],
        attribute: [intAttr('transB', 1)],
      },
      {
        name: 'top_k',
        opType: 'TopK',
        input: ['s', 'k'],
        output: ['values', 'indices'],
        attribute: [intAttr('axis', 1), intAttr('largest', 1), intAttr('sorted', 1)],
      },
    ],
    initializers: [],
    inputs: [
      { name: 'q', dims: ['m', 'd'], elemType: ONNX_FLOAT },
      { name: 'g', dims: ['n', 'd'], elemType: ONNX_FLOAT },
      { name: 'k', dims: ['one'], elemType: ONNX_INT64 },
    ],
    outputs: [
      { name: 'values', dims: ['m', 'kk'], elemType: ONNX_FLOAT },
      { name: 'indices', dims: ['m', 'kk'], elemType: ONNX_INT64 },
    ],
    metadata: {},
  });
  return encoded;
}
