/**
 * The part of ONNX's protobuf schema (onnx/onnx.proto, IR version 8) that Attune writes: a model
 * with one graph of nodes, initializers, typed inputs and outputs, and metadata. Encoded with
 * protobufjs from a schema given as JSON; the field numbers are ONNX's.
 */
import protobuf from 'protobufjs';

const fields = (spec: Record<string, [number, string, 'repeated'?]>) =>
  Object.fromEntries(
    Object.entries(spec).map(([name, [id, type, rule]]) => [name, rule ? { id, type, rule } : { id, type }]),
  );

const schema = {
  nested: {
    onnx: {
      nested: {
        AttributeProto: {
          fields: fields({
            name: [1, 'string'],
            f: [2, 'float'],
            i: [3, 'int64'],
            s: [4, 'bytes'],
            t: [5, 'TensorProto'],
            floats: [7, 'float', 'repeated'],
            ints: [8, 'int64', 'repeated'],
            type: [20, 'int32'],
          }),
        },
        ValueInfoProto: { fields: fields({ name: [1, 'string'], type: [2, 'TypeProto'] }) },
        NodeProto: {
          fields: fields({
            input: [1, 'string', 'repeated'],
            output: [2, 'string', 'repeated'],
            name: [3, 'string'],
            opType: [4, 'string'],
            attribute: [5, 'AttributeProto', 'repeated'],
            domain: [7, 'string'],
          }),
        },
        StringStringEntryProto: { fields: fields({ key: [1, 'string'], value: [2, 'string'] }) },
        OperatorSetIdProto: { fields: fields({ domain: [1, 'string'], version: [2, 'int64'] }) },
        ModelProto: {
          fields: fields({
            irVersion: [1, 'int64'],
            producerName: [2, 'string'],
            producerVersion: [3, 'string'],
            docString: [6, 'string'],
            graph: [7, 'GraphProto'],
            opsetImport: [8, 'OperatorSetIdProto', 'repeated'],
            metadataProps: [14, 'StringStringEntryProto', 'repeated'],
          }),
        },
        GraphProto: {
          fields: fields({
            node: [1, 'NodeProto', 'repeated'],
            name: [2, 'string'],
            initializer: [5, 'TensorProto', 'repeated'],
            input: [11, 'ValueInfoProto', 'repeated'],
            output: [12, 'ValueInfoProto', 'repeated'],
          }),
        },
        TensorProto: {
          fields: fields({
            dims: [1, 'int64', 'repeated'],
            dataType: [2, 'int32'],
            name: [8, 'string'],
            rawData: [9, 'bytes'],
            externalData: [13, 'StringStringEntryProto', 'repeated'],
            dataLocation: [14, 'int32'],
          }),
        },
        TensorShapeProto: {
          fields: fields({ dim: [1, 'Dimension', 'repeated'] }),
          nested: {
            Dimension: { fields: fields({ dimValue: [1, 'int64'], dimParam: [2, 'string'] }) },
          },
        },
        TypeProto: {
          fields: fields({ tensorType: [1, 'Tensor'] }),
          nested: {
            Tensor: { fields: fields({ elemType: [1, 'int32'], shape: [2, 'TensorShapeProto'] }) },
          },
        },
      },
    },
  },
};

const root = protobuf.Root.fromJSON(schema);

/** ONNX TensorProto.DataType codes Attune uses. */
export const OnnxDataType = { FLOAT: 1, INT32: 6, INT64: 7, BOOL: 9 } as const;
export type OnnxDataTypeCode = (typeof OnnxDataType)[keyof typeof OnnxDataType];

/** ONNX AttributeProto.AttributeType codes. */
export const OnnxAttributeType = { FLOAT: 1, INT: 2, STRING: 3, TENSOR: 4, FLOATS: 6, INTS: 7 } as const;

/** Serialise an ONNX ModelProto given as a plain object (field names in camelCase). */
export function encodeOnnxModel(model: Record<string, unknown>): Uint8Array {
  const type = root.lookupType('onnx.ModelProto');
  const problem = type.verify(model);
  if (problem) throw new Error(`ONNX model does not fit the schema: ${problem}`);
  return type.encode(type.fromObject(model)).finish();
}

/** Parse ONNX bytes back into a plain object (tests and `inspect`). */
export function decodeOnnxModel(bytes: Uint8Array): Record<string, unknown> {
  const type = root.lookupType('onnx.ModelProto');
  return type.toObject(type.decode(bytes), { longs: Number, bytes: Buffer }) as Record<string, unknown>;
}
