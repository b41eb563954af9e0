/**
 * The one ONNX graph this package runs: cosine similarities of a query chunk against the
 * gallery, reduced to each query's best `k` at once, so the m×N similarity block never leaves
 * ONNX Runtime.
 *
 *   q: m×d float32, g: N×d float32, k: int64[1]
 *   s = Gemm(q, g, transB=1)            // m×N
 *   values, indices = TopK(s, k, axis=1, largest=1, sorted=1)   // m×k each
 *
 * Every dimension is symbolic, so one encoded model serves every N, d and k.
 *
 * The bytes are encoded with protobufjs from a reflection subset of onnx.proto (field numbers
 * from the ONNX specification, `onnx/onnx.proto3`), holding only the messages and fields this
 * graph uses. The `embed` helper's ONNX exporter (packages/model/src/onnx/) encodes whole
 * networks the same way; eval does not import @maskcon/model (tfjs) for one small graph, so the
 * two subsets can merge once the exporter's encoder moves into a leaf package.
 */
import protobuf from 'protobufjs';

/** onnx.proto field numbers (ONNX IR version 8). */
const ONNX_SUBSET = {
  nested: {
    onnx: {
      nested: {
        ModelProto: {
          fields: {
            irVersion: { type: 'int64', id: 1 },
            producerName: { type: 'string', id: 2 },
            graph: { type: 'GraphProto', id: 7 },
            opsetImport: { rule: 'repeated', type: 'OperatorSetIdProto', id: 8 },
          },
        },
        OperatorSetIdProto: {
          fields: { domain: { type: 'string', id: 1 }, version: { type: 'int64', id: 2 } },
        },
        GraphProto: {
          fields: {
            node: { rule: 'repeated', type: 'NodeProto', id: 1 },
            name: { type: 'string', id: 2 },
            input: { rule: 'repeated', type: 'ValueInfoProto', id: 11 },
            output: { rule: 'repeated', type: 'ValueInfoProto', id: 12 },
          },
        },
        NodeProto: {
          fields: {
            input: { rule: 'repeated', type: 'string', id: 1 },
            output: { rule: 'repeated', type: 'string', id: 2 },
            name: { type: 'string', id: 3 },
            opType: { type: 'string', id: 4 },
            attribute: { rule: 'repeated', type: 'AttributeProto', id: 5 },
          },
        },
        AttributeProto: {
          fields: {
            name: { type: 'string', id: 1 },
            i: { type: 'int64', id: 3 },
            type: { type: 'int32', id: 20 },
          },
        },
        ValueInfoProto: {
          fields: { name: { type: 'string', id: 1 }, type: { type: 'TypeProto', id: 2 } },
        },
        TypeProto: { fields: { tensorType: { type: 'TensorTypeProto', id: 1 } } },
        TensorTypeProto: {
          fields: {
            elemType: { type: 'int32', id: 1 },
            shape: { type: 'TensorShapeProto', id: 2 },
          },
        },
        TensorShapeProto: { fields: { dim: { rule: 'repeated', type: 'Dimension', id: 1 } } },
        Dimension: { fields: { dimParam: { type: 'string', id: 2 } } },
      },
    },
  },
};

/** TensorProto.DataType values. */
const FLOAT = 1;
const INT64 = 7;
/** AttributeProto.AttributeType.INT */
const ATTR_INT = 2;

function valueInfo(name: string, elemType: number, dims: string[]) {
  return {
    name,
    type: { tensorType: { elemType, shape: { dim: dims.map((dimParam) => ({ dimParam })) } } },
  };
}

function intAttr(name: string, i: number) {
  return { name, i, type: ATTR_INT };
}

let encoded: Uint8Array | undefined;

/** The similarity + top-k graph as ONNX model bytes (opset 17), encoded once per process. */
export function similarityTopKModel(): Uint8Array {
  if (encoded) return encoded;
  const Model = protobuf.Root.fromJSON(ONNX_SUBSET).lookupType('onnx.ModelProto');
  const model = {
    irVersion: 8,
    producerName: '@maskcon/eval',
    opsetImport: [{ domain: '', version: 17 }],
    graph: {
      name: 'similarity_top_k',
      node: [
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
      input: [
        valueInfo('q', FLOAT, ['m', 'd']),
        valueInfo('g', FLOAT, ['n', 'd']),
        valueInfo('k', INT64, ['one']),
      ],
      output: [valueInfo('values', FLOAT, ['m', 'kk']), valueInfo('indices', INT64, ['m', 'kk'])],
    },
  };
  const invalid = Model.verify(model);
  if (invalid) throw new Error(`similarityTopKModel: bad ONNX message (${invalid}).`);
  encoded = Model.encode(Model.fromObject(model)).finish();
  return encoded;
}
