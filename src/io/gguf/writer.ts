/**
 * The GGUF v3 file writer (https://github.com/ggml-org/ggml/blob/master/docs/gguf.md): header,
 * typed metadata, tensor infos (dims innermost first, i.e. reversed against the row-major shape;
 * offsets relative to the data section, each aligned to 32 bytes), then the tensor data. Tensors
 * are encoded one at a time while the file streams to a temporary that is renamed over the
 * destination only when complete (io/atomic.ts), so a failed export leaves an existing file as it was.
 * (@huggingface/gguf 0.4.6 only serializes a metadata header for editing an existing file — no tensor
 * infos or data — so Attune has its own writer; that package is the independent reader the tests use.)
 */
import { AtomicFile, writeAll } from '../atomic.ts';
import {
  GGUF_ALIGNMENT,
  GGUF_MAGIC,
  GGUF_VERSION,
  type GgmlTypeId,
  GgufValueType,
  ggmlByteLength,
} from './types.ts';

type ValueType = (typeof GgufValueType)[keyof typeof GgufValueType];

/** One metadata entry: key, GGUF value type and value (arrays carry their element type). */
export type GgufKv =
  | { key: string; type: typeof GgufValueType.STRING; value: string }
  | { key: string; type: typeof GgufValueType.BOOL; value: boolean }
  | {
      key: string;
      type:
        | typeof GgufValueType.UINT32
        | typeof GgufValueType.INT32
        | typeof GgufValueType.FLOAT32
        | typeof GgufValueType.UINT64;
      value: number;
    }
  | {
      key: string;
      type: typeof GgufValueType.ARRAY;
      itemType: typeof GgufValueType.STRING | typeof GgufValueType.INT32 | typeof GgufValueType.FLOAT32;
      value: readonly (string | number)[];
    };

/** Metadata entry constructors. */
export const ggufKv = {
  string: (key: string, value: string): GgufKv => ({ key, type: GgufValueType.STRING, value }),
  bool: (key: string, value: boolean): GgufKv => ({ key, type: GgufValueType.BOOL, value }),
  u32: (key: string, value: number): GgufKv => ({ key, type: GgufValueType.UINT32, value }),
  f32: (key: string, value: number): GgufKv => ({ key, type: GgufValueType.FLOAT32, value }),
  strings: (key: string, value: readonly string[]): GgufKv => ({
    key,
    type: GgufValueType.ARRAY,
    itemType: GgufValueType.STRING,
    value,
  }),
  i32s: (key: string, value: readonly number[]): GgufKv => ({
    key,
    type: GgufValueType.ARRAY,
    itemType: GgufValueType.INT32,
    value,
  }),
  f32s: (key: string, value: readonly number[]): GgufKv => ({
    key,
    type: GgufValueType.ARRAY,
    itemType: GgufValueType.FLOAT32,
    value,
  }),
};

/** One tensor to write: its GGUF name, row-major shape, ggml type, and its bytes (produced on demand). */
export interface GgufTensorSpec {
  name: string;
  /** Row-major (numpy) shape; the file stores it reversed. */
  shape: readonly number[];
  type: GgmlTypeId;
  /** The encoded bytes (exactly ggmlByteLength(type, elements) of them), called once while writing. */
  data(): Uint8Array;
}

/** A growable little-endian byte buffer for the header. */
class ByteSink {
  private buffer = Buffer.alloc(1 << 16);
  length = 0;

  private reserve(bytes: number): void {
    if (this.length + bytes <= this.buffer.length) return;
    const grown = Buffer.alloc(Math.max(this.buffer.length * 2, this.length + bytes));
    this.buffer.copy(grown, 0, 0, this.length);
    this.buffer = grown;
  }
  u8(value: number): void {
    this.reserve(1);
    this.buffer.writeUInt8(value, this.length);
    this.length += 1;
  }
  u32(value: number): void {
    this.reserve(4);
    this.buffer.writeUInt32LE(value, this.length);
    this.length += 4;
  }
  i32(value: number): void {
    this.reserve(4);
    this.buffer.writeInt32LE(value, this.length);
    this.length += 4;
  }
  f32(value: number): void {
    this.reserve(4);
    this.buffer.writeFloatLE(value, this.length);
    this.length += 4;
  }
  u64(value: number): void {
    this.reserve(8);
    this.buffer.writeBigUInt64LE(BigInt(value), this.length);
    this.length += 8;
  }
  string(value: string): void {
    const bytes = Buffer.from(value, 'utf8');
    this.u64(bytes.length);
    this.reserve(bytes.length);
    bytes.copy(this.buffer, this.length);
    this.length += bytes.length;
  }
  pad(alignment: number): void {
    while (this.length % alignment !== 0) this.u8(0);
  }
  bytes(): Uint8Array {
    return this.buffer.subarray(0, this.length);
  }
}

function writeScalar(sink: ByteSink, type: ValueType, value: string | number | boolean): void {
  switch (type) {
    case GgufValueType.STRING:
      sink.string(value as string);
      return;
    case GgufValueType.BOOL:
      sink.u8(value ? 1 : 0);
      return;
    case GgufValueType.UINT32:
      sink.u32(value as number);
      return;
    case GgufValueType.INT32:
      sink.i32(value as number);
      return;
    case GgufValueType.FLOAT32:
      sink.f32(value as number);
      return;
    case GgufValueType.UINT64:
      sink.u64(value as number);
      return;
    default:
      throw new Error(`GGUF value type ${type} is not written by Attune`);
  }
}

function elementCount(shape: readonly number[]): number {
  return shape.reduce((a, b) => a * b, 1);
}

/** The header bytes (through the padding before the data section) and each tensor's data offset. */
export function ggufHeader(
  metadata: readonly GgufKv[],
  tensors: readonly GgufTensorSpec[],
): { header: Uint8Array; offsets: number[] } {
  const sink = new ByteSink();
  sink.u32(GGUF_MAGIC);
  sink.u32(GGUF_VERSION);
  sink.u64(tensors.length);
  sink.u64(metadata.length);
  const keys = new Set<string>();
  for (const entry of metadata) {
    if (keys.has(entry.key)) throw new Error(`GGUF metadata key '${entry.key}' written twice`);
    keys.add(entry.key);
    sink.string(entry.key);
    sink.u32(entry.type);
    if (entry.type === GgufValueType.ARRAY) {
      sink.u32(entry.itemType);
      sink.u64(entry.value.length);
      for (const item of entry.value) writeScalar(sink, entry.itemType, item);
    } else writeScalar(sink, entry.type, entry.value);
  }
  const offsets: number[] = [];
  let offset = 0;
  const names = new Set<string>();
  for (const tensor of tensors) {
    if (names.has(tensor.name)) throw new Error(`GGUF tensor '${tensor.name}' written twice`);
    names.add(tensor.name);
    sink.string(tensor.name);
    sink.u32(tensor.shape.length);
    for (let d = tensor.shape.length - 1; d >= 0; d--) sink.u64(tensor.shape[d]!);
    sink.u32(tensor.type);
    sink.u64(offset);
    offsets.push(offset);
    const bytes = ggmlByteLength(tensor.type, elementCount(tensor.shape));
    offset += Math.ceil(bytes / GGUF_ALIGNMENT) * GGUF_ALIGNMENT;
  }
  sink.pad(GGUF_ALIGNMENT);
  return { header: sink.bytes(), offsets };
}

/** Write a GGUF file at `path` atomically (the metadata should hold `general.alignment` = 32). */
export function writeGguf(
  path: string,
  metadata: readonly GgufKv[],
  tensors: readonly GgufTensorSpec[],
): void {
  const { header } = ggufHeader(metadata, tensors);
  const file = new AtomicFile(path);
  try {
    writeAll(file.fd, header);
    const zeros = new Uint8Array(GGUF_ALIGNMENT);
    for (const tensor of tensors) {
      const bytes = tensor.data();
      const expected = ggmlByteLength(tensor.type, elementCount(tensor.shape));
      if (bytes.length !== expected)
        throw new Error(`GGUF tensor '${tensor.name}': ${bytes.length} bytes of data, expected ${expected}`);
      writeAll(file.fd, bytes);
      const pad = (GGUF_ALIGNMENT - (bytes.length % GGUF_ALIGNMENT)) % GGUF_ALIGNMENT;
      if (pad) writeAll(file.fd, zeros.subarray(0, pad));
    }
  } catch (error) {
    file.abort();
    throw error;
  }
  file.commit();
}
