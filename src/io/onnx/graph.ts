/**
 * A small ONNX graph builder: typed inputs and outputs, initializers (raw little-endian bytes),
 * nodes with attributes, unique value names, and the ModelProto object `encodeOnnxModel` writes.
 */
import { OnnxAttributeType, OnnxDataType, type OnnxDataTypeCode } from './proto.ts';

/** An attribute value: an int, ints, a float or a tensor (ConstantOfShape's value). */
export type OnnxAttribute =
  | { int: number }
  | { ints: readonly number[] }
  | { float: number }
  | { tensor: { data: Float32Array | BigInt64Array; dims: readonly number[] } };

type Dim = number | string;

function dimsOf(dims: readonly Dim[]) {
  return { dim: dims.map((d) => (typeof d === 'number' ? { dimValue: d } : { dimParam: d })) };
}

function tensorProto(
  name: string,
  data: ArrayBufferView,
  dims: readonly number[],
  dataType: OnnxDataTypeCode,
) {
  return {
    name,
    dims: [...dims],
    dataType,
    rawData: Buffer.from(data.buffer, data.byteOffset, data.byteLength),
  };
}

function attributeProto(name: string, a: OnnxAttribute) {
  if ('int' in a) return { name, type: OnnxAttributeType.INT, i: a.int };
  if ('ints' in a) return { name, type: OnnxAttributeType.INTS, ints: [...a.ints] };
  if ('float' in a) return { name, type: OnnxAttributeType.FLOAT, f: a.float };
  const dataType = a.tensor.data instanceof Float32Array ? OnnxDataType.FLOAT : OnnxDataType.INT64;
  return {
    name,
    type: OnnxAttributeType.TENSOR,
    t: tensorProto(`${name}_value`, a.tensor.data, a.tensor.dims, dataType),
  };
}

/** Builds one ONNX graph; every `op` returns the names of its outputs. */
export class OnnxGraph {
  private readonly nodes: Record<string, unknown>[] = [];
  private readonly initializers: Record<string, unknown>[] = [];
  private readonly inputs: Record<string, unknown>[] = [];
  private readonly outputs: Record<string, unknown>[] = [];
  private readonly names = new Set<string>();
  private readonly int64Constants = new Map<string, string>();
  private counter = 0;

  /** A fresh value name starting with `hint`. */
  fresh(hint: string): string {
    let name = hint;
    while (this.names.has(name)) name = `${hint}_${++this.counter}`;
    this.names.add(name);
    return name;
  }

  /** A graph input of element type `type` and shape `dims` (strings are symbolic dimensions). */
  input(name: string, type: OnnxDataTypeCode, dims: readonly Dim[]): string {
    if (this.names.has(name)) throw new Error(`ONNX graph: value '${name}' defined twice`);
    this.names.add(name);
    this.inputs.push({ name, type: { tensorType: { elemType: type, shape: dimsOf(dims) } } });
    return name;
  }

  /** Declare `name` (already produced by a node) a graph output. */
  output(name: string, type: OnnxDataTypeCode, dims: readonly Dim[]): void {
    if (!this.names.has(name)) throw new Error(`ONNX graph: output '${name}' is produced by no node`);
    this.outputs.push({ name, type: { tensorType: { elemType: type, shape: dimsOf(dims) } } });
  }

  /** An initializer (weights or constants); returns its name. */
  initializer(
    hint: string,
    data: Float32Array | BigInt64Array | Int32Array,
    dims: readonly number[],
  ): string {
    const size = dims.reduce((a, b) => a * b, 1);
    if (size !== data.length)
      throw new Error(
        `ONNX graph: initializer '${hint}' has ${data.length} values for dims [${dims.join(', ')}]`,
      );
    const type =
      data instanceof Float32Array
        ? OnnxDataType.FLOAT
        : data instanceof Int32Array
          ? OnnxDataType.INT32
          : OnnxDataType.INT64;
    const name = this.fresh(hint);
    this.initializers.push(tensorProto(name, data, dims, type));
    return name;
  }

  /** A 1-D int64 constant (shared between uses of the same values). */
  int64s(values: readonly number[]): string {
    const key = values.join(',');
    const found = this.int64Constants.get(key);
    if (found) return found;
    const name = this.initializer('const_i64', BigInt64Array.from(values.map((v) => BigInt(v))), [
      values.length,
    ]);
    this.int64Constants.set(key, name);
    return name;
  }

  /** A scalar f32 constant. */
  float(value: number, hint = 'const_f32'): string {
    return this.initializer(hint, Float32Array.of(value), []);
  }

  /** Add a node; returns its output names (`outputs` of them, named from `hint`). */
  node(
    opType: string,
    inputs: readonly string[],
    attributes: Record<string, OnnxAttribute> = {},
    outputs: number | readonly string[] = 1,
    hint = opType.toLowerCase(),
  ): string[] {
    for (const i of inputs)
      if (i !== '' && !this.names.has(i))
        throw new Error(`ONNX graph: ${opType} input '${i}' is not defined`);
    const outs =
      typeof outputs === 'number'
        ? Array.from({ length: outputs }, () => this.fresh(hint))
        : outputs.map((o) => {
            if (this.names.has(o)) throw new Error(`ONNX graph: value '${o}' defined twice`);
            this.names.add(o);
            return o;
          });
    this.nodes.push({
      opType,
      name: this.fresh(`${hint}_node`),
      input: [...inputs],
      output: outs,
      attribute: Object.entries(attributes).map(([k, v]) => attributeProto(k, v)),
    });
    return outs;
  }

  /** A node with one output; returns its name. */
  op(
    opType: string,
    inputs: readonly string[],
    attributes: Record<string, OnnxAttribute> = {},
    hint?: string,
  ): string {
    return this.node(opType, inputs, attributes, 1, hint)[0]!;
  }

  /** The ModelProto object of this graph (see `encodeOnnxModel`). */
  model(o: { name: string; opset: number; producerVersion: string; metadata?: Record<string, string> }) {
    return {
      irVersion: 8,
      producerName: 'attune',
      producerVersion: o.producerVersion,
      opsetImport: [{ domain: '', version: o.opset }],
      metadataProps: Object.entries(o.metadata ?? {}).map(([key, value]) => ({ key, value })),
      graph: {
        name: o.name,
        node: this.nodes,
        initializer: this.initializers,
        input: this.inputs,
        output: this.outputs,
      },
    };
  }
}
