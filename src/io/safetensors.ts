/**
 * safetensors files (https://github.com/huggingface/safetensors): an 8-byte little-endian header
 * length N, N bytes of JSON header `{name: {dtype, shape, data_offsets: [begin, end]}, __metadata__?}`,
 * then the data section (little-endian, row-major). The reader parses and validates the header once
 * and reads each tensor lazily by offset into a fresh buffer (the file is never loaded whole), or,
 * with `readMapped`, hands out zero-copy views into a memory mapping of the file (native backend);
 * the writer is atomic (temp file, fsync, rename), so a file mapped by a reader is never modified.
 */
import { closeSync, fstatSync, openSync, readSync, statSync } from 'node:fs';
import { endianness } from 'node:os';
import { mapFileForReading } from '../backend/index.ts';
import { AttuneError, FormatError, TensorMismatchError } from '../errors.ts';
import { BYTES_PER_ELEMENT, type DType } from '../tensor/dtype.ts';
import { formatShape, shapeSize, Tensor } from '../tensor/tensor.ts';
import { writeAll, writeFileAtomic } from './atomic.ts';
import { bf16ToF32, f16ToF32, i64ToI32, toBf16 } from './convert.ts';
import { briefJson, describeJsonValue, isJsonObject, parseJson } from './json.ts';

/** Every dtype name of the safetensors format, with its size in bits. */
const DTYPE_BITS = {
  BOOL: 8,
  U8: 8,
  I8: 8,
  F8_E5M2: 8,
  F8_E4M3: 8,
  F8_E8M0: 8,
  I16: 16,
  U16: 16,
  F16: 16,
  BF16: 16,
  I32: 32,
  U32: 32,
  F32: 32,
  F64: 64,
  I64: 64,
  U64: 64,
  C64: 64,
  F4: 4,
  F6_E2M3: 6,
  F6_E3M2: 6,
} as const;

/** A dtype name as written in a safetensors header. */
export type SafetensorsDType = keyof typeof DTYPE_BITS;

/** The safetensors dtypes that `read` can turn into a tensor. */
export const READABLE_DTYPES: readonly SafetensorsDType[] = ['F32', 'BF16', 'F16', 'F64', 'I32', 'I64'];

/** The safetensors dtype written for each tensor dtype. */
const WRITE_DTYPE: Readonly<Record<DType, SafetensorsDType>> = {
  f32: 'F32',
  bf16: 'BF16',
  i32: 'I32',
  f64: 'F64',
};

/** Largest header accepted, as in the reference implementation (guards against garbage lengths). */
const MAX_HEADER_BYTES = 100_000_000;

/** What a file says about one tensor, without reading its data. */
export interface TensorInfo {
  /** The dtype stored in the file (`read` converts: see `ReadOptions`). */
  dtype: SafetensorsDType;
  shape: number[];
  /** Bytes of data in the file. */
  byteLength: number;
  /** The file that holds the tensor. */
  file: string;
}

/** Options of `TensorReader.read`. */
export interface ReadOptions {
  /**
   * The tensor dtype wanted for a floating-point tensor. Default: F32 -> f32, BF16 -> bf16,
   * F16 -> f32 (widened), F64 -> f64. 'f32' widens BF16/F16 exactly and narrows F64 (rounding);
   * 'bf16' rounds F32/F16/F64 to nearest even. Integer tensors (I32; I64, narrowed to i32 with a
   * range check) accept no dtype.
   */
  dtype?: 'f32' | 'bf16';
}

/** Read access to named tensors, from one safetensors file or a sharded checkpoint. */
export interface TensorReader {
  /** The file or folder read. */
  readonly path: string;
  /** Tensor names, sorted. */
  names(): string[];
  /** Whether a tensor of this name exists. */
  has(name: string): boolean;
  /** dtype, shape and size of a tensor (throws TensorMismatchError for an unknown name). */
  info(name: string): TensorInfo;
  /** The tensor's data, read from disk now; untracked (no scope frees it), owned by the caller. */
  read(name: string, options?: ReadOptions): Tensor;
  /**
   * Zero-copy: the tensor as an untracked view into a memory mapping of its file, or null where
   * that is not possible (then `read`): the js backend or no addon, a stored dtype that `options`
   * would convert, data not aligned for its element type, an integer or F16/F64 tensor. The mapping
   * is private copy-on-write: writing through the view never changes the file, but every view of
   * the same tensor from this reader sees the write, so a caller that writes must own the only view
   * (loading a model hands each tensor to one parameter).
   */
  readMapped(name: string, options?: ReadOptions): Tensor | null;
  /**
   * The header's `__metadata__` string map (for a sharded checkpoint, the shards' maps merged).
   * transformers records tied weights stored under one name here, e.g.
   * `{"model.embed_tokens.weight": "lm_head.weight"}`.
   */
  metadata(): Record<string, string>;
  /** Release the file handle(s); reads after close throw. */
  close(): void;
}

interface Entry {
  dtype: SafetensorsDType;
  shape: number[];
  /** Offsets within the data section. */
  begin: number;
  end: number;
}

function assertLittleEndianHost(): void {
  if (endianness() !== 'LE') {
    throw new AttuneError('safetensors data is little-endian; big-endian hosts are not supported');
  }
}

/** Read exactly `target.length` bytes of `fd` at `position`; false when the file ended first. */
function readExactly(fd: number, target: Uint8Array, position: number): boolean {
  let done = 0;
  while (done < target.length) {
    const length = Math.min(target.length - done, 2 ** 30);
    const n = readSync(fd, target, done, length, position + done);
    if (n === 0) return false;
    done += n;
  }
  return true;
}

function isNonNegativeInteger(value: unknown): value is number {
  return typeof value === 'number' && Number.isSafeInteger(value) && value >= 0;
}

/** Validate one header entry (the tensor `name` of `file`). */
function parseEntry(file: string, name: string, raw: unknown, dataBytes: number): Entry {
  const where = `tensor '${name}'`;
  if (!isJsonObject(raw))
    throw new FormatError(file, `${where}: header entry is ${describeJsonValue(raw)}, expected an object`);
  const { dtype, shape, data_offsets: offsets } = raw;
  if (typeof dtype !== 'string' || !Object.hasOwn(DTYPE_BITS, dtype)) {
    throw new FormatError(
      file,
      `${where}: unknown dtype ${briefJson(dtype)} (expected one of ${Object.keys(DTYPE_BITS).join(', ')})`,
    );
  }
  if (!Array.isArray(shape) || !shape.every(isNonNegativeInteger)) {
    throw new FormatError(file, `${where}: shape ${briefJson(shape)} is not a list of non-negative integers`);
  }
  if (
    !Array.isArray(offsets) ||
    offsets.length !== 2 ||
    !offsets.every(isNonNegativeInteger) ||
    offsets[0] > offsets[1]
  ) {
    throw new FormatError(
      file,
      `${where}: data_offsets ${briefJson(offsets)} must be [begin, end], non-negative integers with begin <= end`,
    );
  }
  const [begin, end] = offsets as [number, number];
  if (end > dataBytes) {
    throw new FormatError(
      file,
      `${where}: data_offsets [${begin},${end}] are out of range of the data section (${dataBytes} bytes); the file may be truncated`,
    );
  }
  const bits = DTYPE_BITS[dtype as SafetensorsDType] * shapeSize(shape);
  if (bits % 8 !== 0 || bits / 8 !== end - begin) {
    throw new FormatError(
      file,
      `${where}: data_offsets [${begin},${end}] hold ${end - begin} bytes but ${dtype} ${formatShape(shape)} needs ${bits / 8}`,
    );
  }
  return { dtype: dtype as SafetensorsDType, shape: [...shape], begin, end };
}

/** A safetensors file opened for lazy reading. */
export class SafetensorsReader implements TensorReader {
  private fd: number | null;
  private readonly entries: Map<string, Entry>;
  private readonly meta: Record<string, string>;
  private readonly dataStart: number;
  private sortedNames: string[] | null = null;
  /** The file's identity at open, to refuse mapping a file replaced since. */
  private readonly identity: { ino: number; size: number; mtimeMs: number };
  /** The memory mapping of the whole file (made on the first readMapped); false when unavailable. */
  private mapping: ArrayBuffer | false | null = null;

  /** Open `path` and parse its header (use `openSafetensors`). */
  constructor(readonly path: string) {
    let fd: number;
    try {
      fd = openSync(path, 'r');
    } catch (error) {
      const code = (error as NodeJS.ErrnoException).code;
      throw new FormatError(
        path,
        code === 'ENOENT' ? 'file not found' : `cannot open: ${(error as Error).message}`,
      );
    }
    this.fd = fd;
    try {
      const { ino, size, mtimeMs } = fstatSync(fd);
      this.identity = { ino, size, mtimeMs };
      const parsed = SafetensorsReader.parseHeader(path, fd);
      this.entries = parsed.entries;
      this.meta = parsed.metadata;
      this.dataStart = parsed.dataStart;
    } catch (error) {
      closeSync(fd);
      this.fd = null;
      throw error;
    }
  }

  private static parseHeader(
    file: string,
    fd: number,
  ): { entries: Map<string, Entry>; metadata: Record<string, string>; dataStart: number } {
    const fileSize = fstatSync(fd).size;
    if (fileSize < 8) {
      throw new FormatError(
        file,
        `file is ${fileSize} bytes, shorter than the 8-byte header length: not a safetensors file`,
      );
    }
    const lengthBytes = new Uint8Array(8);
    readExactly(fd, lengthBytes, 0);
    const headerLength = new DataView(lengthBytes.buffer).getBigUint64(0, true);
    if (headerLength > BigInt(fileSize - 8)) {
      throw new FormatError(
        file,
        `header length ${headerLength} is beyond the end of the file (${fileSize} bytes): not a safetensors file, or truncated`,
      );
    }
    if (headerLength > BigInt(MAX_HEADER_BYTES)) {
      throw new FormatError(file, `header length ${headerLength} exceeds the ${MAX_HEADER_BYTES}-byte limit`);
    }
    const headerBytes = new Uint8Array(Number(headerLength));
    readExactly(fd, headerBytes, 8);
    let text: string;
    try {
      text = new TextDecoder('utf-8', { fatal: true }).decode(headerBytes);
    } catch {
      throw new FormatError(file, 'header is not valid UTF-8: not a safetensors file');
    }
    let header: unknown;
    try {
      header = parseJson(text, file);
    } catch (error) {
      throw new FormatError(
        file,
        `header is not valid JSON: ${(error as Error).message.slice(file.length + 2)}`,
      );
    }
    if (!isJsonObject(header)) {
      throw new FormatError(file, `header is ${describeJsonValue(header)}, expected a JSON object`);
    }
    const dataStart = 8 + Number(headerLength);
    const dataBytes = fileSize - dataStart;
    const entries = new Map<string, Entry>();
    let metadata: Record<string, string> = {};
    for (const [name, raw] of Object.entries(header)) {
      if (name === '__metadata__') {
        metadata = SafetensorsReader.parseMetadata(file, raw);
        continue;
      }
      entries.set(name, parseEntry(file, name, raw, dataBytes));
    }
    // Empty tensors occupy no bytes and cannot overlap anything.
    const byOffset = [...entries].filter(([, e]) => e.end > e.begin).sort((a, b) => a[1].begin - b[1].begin);
    for (let i = 1; i < byOffset.length; i++) {
      const [prevName, prev] = byOffset[i - 1]!;
      const [name, entry] = byOffset[i]!;
      if (entry.begin < prev.end) {
        throw new FormatError(
          file,
          `tensors '${prevName}' [${prev.begin},${prev.end}] and '${name}' [${entry.begin},${entry.end}] overlap in the data section`,
        );
      }
    }
    return { entries, metadata, dataStart };
  }

  private static parseMetadata(file: string, raw: unknown): Record<string, string> {
    if (!isJsonObject(raw))
      throw new FormatError(file, `__metadata__ is ${describeJsonValue(raw)}, expected an object`);
    for (const [key, value] of Object.entries(raw)) {
      if (typeof value !== 'string') {
        throw new FormatError(
          file,
          `__metadata__ '${key}' is ${describeJsonValue(value)}; metadata values must be strings`,
        );
      }
    }
    return { ...(raw as Record<string, string>) };
  }

  names(): string[] {
    this.sortedNames ??= [...this.entries.keys()].sort();
    return [...this.sortedNames];
  }

  has(name: string): boolean {
    return this.entries.has(name);
  }

  info(name: string): TensorInfo {
    const entry = this.entry(name);
    return {
      dtype: entry.dtype,
      shape: [...entry.shape],
      byteLength: entry.end - entry.begin,
      file: this.path,
    };
  }

  metadata(): Record<string, string> {
    return { ...this.meta };
  }

  read(name: string, options: ReadOptions = {}): Tensor {
    const entry = this.entry(name);
    if (this.fd === null) throw new AttuneError(`${this.path}: read('${name}') after close()`);
    if (!READABLE_DTYPES.includes(entry.dtype)) {
      throw new TensorMismatchError(
        `${this.path}: tensor '${name}' has dtype ${entry.dtype}, which Attune cannot read (supported: ${READABLE_DTYPES.join(', ')})`,
      );
    }
    const wanted = options.dtype;
    if (wanted !== undefined && (entry.dtype === 'I32' || entry.dtype === 'I64')) {
      throw new TensorMismatchError(
        `${this.path}: tensor '${name}' is ${entry.dtype} (integer); it cannot be read as ${wanted}`,
      );
    }
    assertLittleEndianHost();
    const buffer = new ArrayBuffer(entry.end - entry.begin);
    if (!readExactly(this.fd, new Uint8Array(buffer), this.dataStart + entry.begin)) {
      throw new FormatError(
        this.path,
        `tensor '${name}': the file ended while reading its data (was it truncated after opening?)`,
      );
    }
    const data = this.convert(name, entry, buffer, wanted);
    return Tensor.wrap(data, entry.shape, { track: false });
  }

  readMapped(name: string, options: ReadOptions = {}): Tensor | null {
    const entry = this.entry(name);
    if (this.fd === null) throw new AttuneError(`${this.path}: readMapped('${name}') after close()`);
    const kind =
      entry.dtype === 'F32' && options.dtype !== 'bf16'
        ? 'f32'
        : entry.dtype === 'BF16' && options.dtype !== 'f32'
          ? 'bf16'
          : null;
    if (kind === null) return null;
    const begin = this.dataStart + entry.begin;
    const bytes = kind === 'f32' ? 4 : 2;
    // a typed array view needs an offset that is a multiple of its element size
    if (begin % bytes !== 0) return null;
    const mapping = this.map();
    if (!mapping) return null;
    const length = (entry.end - entry.begin) / bytes;
    const data =
      kind === 'f32' ? new Float32Array(mapping, begin, length) : new Uint16Array(mapping, begin, length);
    return Tensor.wrap(data, entry.shape, { track: false });
  }

  /** The file's mapping, made once; null where unavailable or the file was replaced since open. */
  private map(): ArrayBuffer | null {
    if (this.mapping === null) {
      assertLittleEndianHost();
      const now = statSync(this.path, { throwIfNoEntry: false });
      const same =
        now !== undefined &&
        now.ino === this.identity.ino &&
        now.size === this.identity.size &&
        now.mtimeMs === this.identity.mtimeMs;
      const mapped = same ? mapFileForReading(this.path) : null;
      this.mapping = mapped !== null && mapped.byteLength === this.identity.size ? mapped : false;
    }
    return this.mapping === false ? null : this.mapping;
  }

  private convert(
    name: string,
    entry: Entry,
    buffer: ArrayBuffer,
    wanted: 'f32' | 'bf16' | undefined,
  ): Float32Array | Float64Array | Uint16Array | Int32Array {
    switch (entry.dtype) {
      case 'F32': {
        const values = new Float32Array(buffer);
        return wanted === 'bf16' ? toBf16(values) : values;
      }
      case 'BF16': {
        const bits = new Uint16Array(buffer);
        return wanted === 'f32' ? bf16ToF32(bits) : bits;
      }
      case 'F16': {
        const values = f16ToF32(new Uint16Array(buffer));
        return wanted === 'bf16' ? toBf16(values) : values;
      }
      case 'F64': {
        const values = new Float64Array(buffer);
        if (wanted === 'f32') return Float32Array.from(values);
        return wanted === 'bf16' ? toBf16(values) : values;
      }
      case 'I32':
        return new Int32Array(buffer);
      case 'I64': {
        const result = i64ToI32(new Int32Array(buffer));
        if ('badIndex' in result) {
          throw new FormatError(
            this.path,
            `tensor '${name}': I64 value ${result.badValue} at flat index ${result.badIndex} does not fit in i32 (Attune reads I64 as i32)`,
          );
        }
        return result.values;
      }
      default:
        throw new TensorMismatchError(`${this.path}: tensor '${name}' has unsupported dtype ${entry.dtype}`);
    }
  }

  close(): void {
    if (this.fd === null) return;
    closeSync(this.fd);
    this.fd = null;
    // views handed out keep the mapping alive; it is unmapped when the last one is collected
    this.mapping = false;
  }

  private entry(name: string): Entry {
    const entry = this.entries.get(name);
    if (!entry) {
      throw new TensorMismatchError(
        `${this.path}: no tensor named '${name}' (the file has ${this.entries.size} tensors)`,
      );
    }
    return entry;
  }
}

/** Open a safetensors file: its header is read and validated now, tensors are read on demand. */
export function openSafetensors(path: string): SafetensorsReader {
  return new SafetensorsReader(path);
}

/** Named tensors to write: a Map or a plain object. */
export type NamedTensors = ReadonlyMap<string, Tensor> | Readonly<Record<string, Tensor>>;

/** The (name, tensor) pairs of `tensors`, sorted by name, with names checked. */
export function sortedTensorEntries(tensors: NamedTensors): [string, Tensor][] {
  const entries: [string, Tensor][] =
    tensors instanceof Map ? [...tensors.entries()] : Object.entries(tensors as Record<string, Tensor>);
  for (const [name, tensor] of entries) {
    if (name === '' || name === '__metadata__') throw new TypeError(`invalid tensor name '${name}'`);
    if (!(tensor instanceof Tensor)) throw new TypeError(`'${name}' is not a Tensor`);
  }
  return entries.sort((a, b) => (a[0] < b[0] ? -1 : a[0] > b[0] ? 1 : 0));
}

/** Bytes a tensor occupies in a safetensors file. */
export function tensorByteLength(tensor: Tensor): number {
  return tensor.size * BYTES_PER_ELEMENT[tensor.dtype];
}

/** The header bytes (JSON padded with spaces to a multiple of 8) for sorted entries. */
function encodeHeader(entries: [string, Tensor][], metadata: Record<string, string>): Uint8Array {
  const header: Record<string, unknown> = {};
  if (Object.keys(metadata).length > 0) header.__metadata__ = metadata;
  let offset = 0;
  for (const [name, tensor] of entries) {
    const bytes = tensorByteLength(tensor);
    header[name] = {
      dtype: WRITE_DTYPE[tensor.dtype],
      shape: [...tensor.shape],
      data_offsets: [offset, offset + bytes],
    };
    offset += bytes;
  }
  const json = Buffer.from(JSON.stringify(header), 'utf8');
  const padded = Math.ceil(json.length / 8) * 8;
  const out = new Uint8Array(8 + padded).fill(0x20);
  new DataView(out.buffer).setBigUint64(0, BigInt(padded), true);
  out.set(json, 8);
  return out;
}

/**
 * Write `tensors` to the safetensors file `path` atomically (temp file in the same folder, fsync,
 * rename; on error the temp file is removed and an existing `path` is untouched). Tensors are laid
 * out in sorted name order; f32 -> F32, bf16 -> BF16, i32 -> I32, f64 -> F64. `metadata` becomes
 * the header's `__metadata__` (string values; omitted when empty).
 */
export function writeSafetensors(
  path: string,
  tensors: NamedTensors,
  metadata: Record<string, string> = { format: 'pt' },
): void {
  for (const [key, value] of Object.entries(metadata)) {
    if (typeof value !== 'string')
      throw new TypeError(`writeSafetensors(${path}): metadata '${key}' must be a string`);
  }
  assertLittleEndianHost();
  const entries = sortedTensorEntries(tensors);
  const header = encodeHeader(entries, metadata);
  writeFileAtomic(path, (fd) => {
    writeAll(fd, header);
    for (const [, tensor] of entries) {
      const data = tensor.data;
      writeAll(fd, new Uint8Array(data.buffer, data.byteOffset, data.byteLength));
    }
  });
}
