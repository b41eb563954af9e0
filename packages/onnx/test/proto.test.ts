import * as ort from 'onnxruntime-node';
import { describe, expect, it } from 'vitest';
import {
  ATTR_INT,
  ONNX_FLOAT,
  ONNX_INT64,
  decodeOnnxModel,
  encodeOnnxModel,
  type OnnxModel,
} from '../src/index.js';

/** y = x·W + b (x: batch×3, W: 3×4, b: 4), then each row's best k of y: a Gemm with weights
 * stored as initializers, an int64 input and two outputs of different element types. */
const W = Float32Array.from([0.5, -1, 2, 0.25, 1.5, 0, -0.5, 1, -2, 0.75, 1, -1.25]);
const B = Float32Array.from([0.1, -0.2, 0.3, 0]);
const bytes = (a: Float32Array) => new Uint8Array(a.buffer, a.byteOffset, a.byteLength);

function gemmTopK(): OnnxModel {
  return {
    irVersion: 8,
    opset: 17,
    producerName: 'proto.test',
    producerVersion: '1',
    docString: 'Gemm + TopK',
    graphName: 'gemm_top_k',
    nodes: [
      { name: 'gemm', opType: 'Gemm', input: ['x', 'W', 'b'], output: ['y'] },
      {
        name: 'top_k',
        opType: 'TopK',
        input: ['y', 'k'],
        output: ['values', 'indices'],
        attribute: [{ name: 'axis', type: ATTR_INT, i: 1 }],
      },
    ],
    initializers: [
      { name: 'W', dataType: ONNX_FLOAT, dims: [3, 4], rawData: bytes(W) },
      { name: 'b', dataType: ONNX_FLOAT, dims: [4], rawData: bytes(B) },
    ],
    inputs: [
      { name: 'x', dims: ['batch', 3] },
      { name: 'k', dims: [1], elemType: ONNX_INT64 },
    ],
    outputs: [
      { name: 'values', dims: ['batch', 'k'] },
      { name: 'indices', dims: ['batch', 'k'], elemType: ONNX_INT64 },
    ],
    metadata: { purpose: 'test' },
  };
}

describe('ONNX protobuf messages', () => {
  it('ONNX Runtime runs an encoded graph (initializers, int64 input and output) as a naive loop computes it', async () => {
    const session = await ort.InferenceSession.create(encodeOnnxModel(gemmTopK()));
    const x = Float32Array.from([1, 2, 3, -1, 0.5, 0]);
    const out = await session.run({
      x: new ort.Tensor('float32', x, [2, 3]),
      k: new ort.Tensor('int64', BigInt64Array.of(2n), [1]),
    });
    const expected = { values: [] as number[], indices: [] as number[] };
    for (let r = 0; r < 2; r++) {
      const y = [0, 1, 2, 3].map((j) => {
        let s = B[j] ?? 0;
        for (let c = 0; c < 3; c++) s += (x[r * 3 + c] ?? 0) * (W[c * 4 + j] ?? 0);
        return s;
      });
      const order = [0, 1, 2, 3].sort((a, b) => (y[b] ?? 0) - (y[a] ?? 0));
      for (const j of order.slice(0, 2)) {
        expected.values.push(y[j] ?? 0);
        expected.indices.push(j);
      }
    }
    expect(Array.from(out.indices?.data as BigInt64Array, Number)).toEqual(expected.indices);
    const values = Array.from(out.values?.data as Float32Array);
    expect(values.length).toBe(4);
    values.forEach((v, i) => expect(v).toBeCloseTo(expected.values[i] ?? Number.NaN, 5));
    expect(out.indices?.type).toBe('int64');
    expect(out.values?.type).toBe('float32');
  });

  it('decodes what it encodes into a summary', () => {
    const decoded = decodeOnnxModel(encodeOnnxModel(gemmTopK()));
    expect(decoded).toEqual({
      irVersion: 8,
      opset: 17,
      producerName: 'proto.test',
      opTypes: ['Gemm', 'TopK'],
      inputs: [
        { name: 'x', dims: ['batch', 3] },
        { name: 'k', dims: [1] },
      ],
      outputs: [
        { name: 'values', dims: ['batch', 'k'] },
        { name: 'indices', dims: ['batch', 'k'] },
      ],
      initializers: [
        { name: 'W', dims: [3, 4], bytes: 48 },
        { name: 'b', dims: [4], bytes: 16 },
      ],
      metadata: { purpose: 'test' },
    });
  });

  it('refuses bytes that are not an ONNX protobuf, naming the source', () => {
    expect(() => decodeOnnxModel(Uint8Array.from([0x0a, 0xff, 0xff]), 'x.onnx')).toThrow(
      /^x\.onnx is not a valid ONNX protobuf/,
    );
  });
});
