import protobuf from 'protobufjs';

/**
 * The part of ONNX's protobuf schema (onnx/onnx.proto3) that a feed-forward graph needs: a
 * model, its graph, nodes with attributes, tensors, typed inputs/outputs and string metadata.
 * Field numbers and enum values are the specification's; the schema is given to protobufjs as
 * reflection JSON so no code generator or .proto file is involved. The one home of this schema:
 * `@maskcon/model`'s exporter and `@maskcon/eval`'s similarity + top-k graph both encode here.
 */
const ONNX_SCHEMA = {
  nested: {
    onnx: {
      nested: {
        ModelProto: {
          fields: {
            irVersion: { type: 'int64', id: 1 },
            opsetImport: { rule: 'repeated', type: 'OperatorSetIdProto', id: 8 },
            producerName: { type: 'string', id: 2 },
            producerVersion: { type: 'string', id: 3 },
            domain: { type: 'string', id: 4 },
            modelVersion: { type: 'int64', id: 5 },
            docString: { type: 'string', id: 6 },
            graph: { type: 'GraphProto', id: 7 },
            metadataProps: { rule: 'repeated', type: 'StringStringEntryProto', id: 14 },
          },
        },
        OperatorSetIdProto: {
          fields: {
            domain: { type: 'string', id: 1 },
            version: { type: 'int64', id: 2 },
          },
        },
        StringStringEntryProto: {
          fields: {
            key: { type: 'string', id: 1 },
            value: { type: 'string', id: 2 },
          },
        },
        GraphProto: {
          fields: {
            node: { rule: 'repeated', type: 'NodeProto', id: 1 },
            name: { type: 'string', id: 2 },
            initializer: { rule: 'repeated', type: 'TensorProto', id: 5 },
            docString: { type: 'string', id: 10 },
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
            domain: { type: 'string', id: 7 },
          },
        },
        AttributeProto: {
          fields: {
            name: { type: 'string', id: 1 },
            f: { type: 'float', id: 2 },
            i: { type: 'int64', id: 3 },
            s: { type: 'bytes', id: 4 },
            floats: { rule: 'repeated', type: 'float', id: 7 },
            ints: { rule: 'repeated', type: 'int64', id: 8 },
            type: { type: 'int32', id: 20 },
          },
        },
        TensorProto: {
          fields: {
            dims: { rule: 'repeated', type: 'int64', id: 1 },
            dataType: { type: 'int32', id: 2 },
            name: { type: 'string', id: 8 },
            rawData: { type: 'bytes', id: 9 },
          },
        },
        ValueInfoProto: {
          fields: {
            name: { type: 'string', id: 1 },
            type: { type: 'TypeProto', id: 2 },
            docString: { type: 'string', id: 3 },
          },
        },
        TypeProto: {
          fields: { tensorType: { type: 'TypeProtoTensor', id: 1 } },
        },
        TypeProtoTensor: {
          fields: {
            elemType: { type: 'int32', id: 1 },
            shape: { type: 'TensorShapeProto', id: 2 },
          },
        },
        TensorShapeProto: {
          fields: { dim: { rule: 'repeated', type: 'Dimension', id: 1 } },
        },
        Dimension: {
          oneofs: { value: { oneof: ['dimValue', 'dimParam'] } },
          fields: {
            dimValue: { type: 'int64', id: 1 },
            dimParam: { type: 'string', id: 2 },
          },
        },
      },
    },
  },
};

/** onnx.TensorProto.DataType */
export const ONNX_FLOAT = 1;
export const ONNX_INT64 = 7;
/** onnx.AttributeProto.AttributeType */
export const ATTR_FLOAT = 1;
export const ATTR_INT = 2;
export const ATTR_INTS = 7;

export interface OnnxAttribute {
  name: string;
  type: number;
  f?: number;
  i?: number;
  ints?: number[];
}
export interface OnnxNode {
  opType: string;
  name: string;
  input: string[];
  output: string[];
  attribute?: OnnxAttribute[];
}
export interface OnnxTensor {
  name: string;
  dataType: number;
  dims: number[];
  /** Little-endian element bytes. */
  rawData: Uint8Array;
}
export interface OnnxValueInfo {
  name: string;
  /** A number is a fixed size, a string a symbolic one (e.g. 'batch'). */
  dims: (number | string)[];
  /** onnx.TensorProto.DataType of the elements; ONNX_FLOAT when absent. */
  elemType?: number;
  docString?: string;
}
export interface OnnxModel {
  irVersion: number;
  opset: number;
  producerName: string;
  producerVersion: string;
  docString: string;
  graphName: string;
  nodes: OnnxNode[];
  initializers: OnnxTensor[];
  inputs: OnnxValueInfo[];
  outputs: OnnxValueInfo[];
  metadata: Record<string, string>;
}

let root: protobuf.Root | undefined;
function modelType(): protobuf.Type {
  root ??= protobuf.Root.fromJSON(ONNX_SCHEMA);
  return root.lookupType('onnx.ModelProto');
}

const valueInfo = (v: OnnxValueInfo) => ({
  name: v.name,
  docString: v.docString ?? '',
  type: {
    tensorType: {
      elemType: v.elemType ?? ONNX_FLOAT,
      shape: {
        dim: v.dims.map((d) => (typeof d === 'number' ? { dimValue: d } : { dimParam: d })),
      },
    },
  },
});

/** Serialises a model to ONNX protobuf bytes. */
export function encodeOnnxModel(m: OnnxModel): Uint8Array {
  const type = modelType();
  const message = type.fromObject({
    irVersion: m.irVersion,
    opsetImport: [{ domain: '', version: m.opset }],
    producerName: m.producerName,
    producerVersion: m.producerVersion,
    docString: m.docString,
    graph: {
      name: m.graphName,
      node: m.nodes,
      initializer: m.initializers,
      input: m.inputs.map(valueInfo),
      output: m.outputs.map(valueInfo),
    },
    metadataProps: Object.entries(m.metadata).map(([key, value]) => ({ key, value })),
  });
  return type.encode(message).finish();
}

/** What `decodeOnnxModel` gives back: enough to check an exported file and read its metadata. */
export interface DecodedOnnxModel {
  irVersion: number;
  opset: number;
  producerName: string;
  opTypes: string[];
  inputs: { name: string; dims: (number | string)[] }[];
  outputs: { name: string; dims: (number | string)[] }[];
  initializers: { name: string; dims: number[]; bytes: number }[];
  metadata: Record<string, string>;
}

/** Largest ONNX file decodeOnnxModel accepts (protobuf itself caps a message at 2 GiB). */
export const ONNX_MAX_BYTES = 2 ** 31 - 1;

/**
 * Decodes ONNX bytes (any producer) into a summary. Protobuf decoding allocates only what the
 * bytes contain and executes nothing; the size is checked first.
 */
export function decodeOnnxModel(bytes: Uint8Array, source = 'ONNX model'): DecodedOnnxModel {
  if (bytes.byteLength > ONNX_MAX_BYTES)
    throw new Error(`${source} is ${bytes.byteLength} bytes, more than protobuf's 2 GiB limit.`);
  let obj: {
    irVersion?: number;
    opsetImport?: { domain?: string; version?: number }[];
    producerName?: string;
    graph?: {
      node?: { opType?: string }[];
      input?: { name?: string; type?: { tensorType?: { shape?: { dim?: object[] } } } }[];
      output?: { name?: string; type?: { tensorType?: { shape?: { dim?: object[] } } } }[];
      initializer?: { name?: string; dims?: number[]; rawData?: Uint8Array }[];
    };
    metadataProps?: { key?: string; value?: string }[];
  };
  try {
    const type = modelType();
    obj = type.toObject(type.decode(bytes), { longs: Number, defaults: false }) as typeof obj;
  } catch (err) {
    throw new Error(
      `${source} is not a valid ONNX protobuf (${err instanceof Error ? err.message : String(err)}); re-export it with \`pnpm export RUN --format onnx\`.`,
    );
  }
  const dims = (v: { type?: { tensorType?: { shape?: { dim?: object[] } } } }) =>
    (v.type?.tensorType?.shape?.dim ?? []).map((d) => {
      const dd = d as { dimValue?: number; dimParam?: string };
      return dd.dimParam ?? dd.dimValue ?? '?';
    });
  const g = obj.graph ?? {};
  return {
    irVersion: obj.irVersion ?? 0,
    opset: obj.opsetImport?.find((o) => !o.domain)?.version ?? 0,
    producerName: obj.producerName ?? '',
    opTypes: (g.node ?? []).map((n) => n.opType ?? ''),
    inputs: (g.input ?? []).map((v) => ({ name: v.name ?? '', dims: dims(v) })),
    outputs: (g.output ?? []).map((v) => ({ name: v.name ?? '', dims: dims(v) })),
    initializers: (g.initializer ?? []).map((t) => ({
      name: t.name ?? '',
      dims: t.dims ?? [],
      bytes: t.rawData?.byteLength ?? 0,
    })),
    metadata: Object.fromEntries(
      (obj.metadataProps ?? []).map((e) => [e.key ?? '', e.value ?? '']),
    ),
  };
}
