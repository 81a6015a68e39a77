/**
 * A safetensors file written one tensor at a time. Every name, dtype and shape is known before the
 * first tensor is computed, so the header (offsets in sorted name order) is written first and each
 * tensor's bytes are appended as they arrive — the file is never held in memory. Atomic through
 * io/'s AtomicFile: a temporary file in the same folder, fsync, rename; `abort()` removes it.
 */
import { endianness } from 'node:os';
import { AttuneError } from '../errors.ts';
import { AtomicFile, writeAll } from '../io/index.ts';
import { formatShape, shapeSize, toBf16Bits } from '../tensor/index.ts';

/** The dtypes a merge writes. */
export type OutputDType = 'F32' | 'BF16' | 'F16';

/** One tensor of the file to write. */
export interface TensorEntry {
  name: string;
  dtype: OutputDType;
  shape: readonly number[];
}

const BYTES: Record<OutputDType, number> = { F32: 4, BF16: 2, F16: 2 };

/** Bytes of one entry's data. */
export function entryBytes(entry: TensorEntry): number {
  return shapeSize(entry.shape) * BYTES[entry.dtype];
}

const f32 = new Float32Array(1);
const u32 = new Uint32Array(f32.buffer);

/** IEEE half-precision bits of `value` (f32-rounded first), round to nearest even; overflow gives inf. */
export function toF16Bits(value: number): number {
  f32[0] = value;
  const x = u32[0]!;
  const sign = (x >>> 16) & 0x8000;
  const exp = (x >>> 23) & 0xff;
  let mant = x & 0x7fffff;
  if (exp === 0xff) return sign | 0x7c00 | (mant !== 0 ? 0x200 : 0); // inf / NaN
  const e = exp - 127 + 15;
  if (e >= 0x1f) return sign | 0x7c00; // overflow
  if (e <= 0) {
    if (e < -10) return sign; // underflow to zero
    mant |= 0x800000;
    const shift = 14 - e;
    const half = 1 << (shift - 1);
    const rest = mant & ((1 << shift) - 1);
    let h = mant >>> shift;
    if (rest > half || (rest === half && (h & 1) === 1)) h++;
    return sign | h;
  }
  let h = (e << 10) | (mant >>> 13);
  const rest = mant & 0x1fff;
  if (rest > 0x1000 || (rest === 0x1000 && (h & 1) === 1)) h++; // may carry into the exponent: still correct
  return sign | h;
}

/** f32 values as the bytes of `dtype` (F32: a view, no copy). */
export function encodeValues(values: Float32Array, dtype: OutputDType): Uint8Array {
  if (dtype === 'F32') return new Uint8Array(values.buffer, values.byteOffset, values.byteLength);
  const out = new Uint16Array(values.length);
  if (dtype === 'BF16') for (let i = 0; i < values.length; i++) out[i] = toBf16Bits(values[i]!);
  else for (let i = 0; i < values.length; i++) out[i] = toF16Bits(values[i]!);
  return new Uint8Array(out.buffer);
}

/** The header bytes for `entries` (already in file order), padded with spaces to a multiple of 8. */
function encodeHeader(entries: readonly TensorEntry[], metadata: Record<string, string>): Uint8Array {
  const header: Record<string, unknown> = {};
  if (Object.keys(metadata).length > 0) header.__metadata__ = metadata;
  let offset = 0;
  for (const entry of entries) {
    const bytes = entryBytes(entry);
    header[entry.name] = {
      dtype: entry.dtype,
      shape: [...entry.shape],
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

/** Writes one safetensors file tensor by tensor (see the file comment). */
export class StreamingSafetensorsWriter {
  private readonly entries: TensorEntry[];
  private file: AtomicFile | null;
  private next = 0;

  /**
   * Start writing `path`: the entries are sorted by name (the order `write` must follow) and the
   * header is written now.
   */
  constructor(
    readonly path: string,
    entries: readonly TensorEntry[],
    metadata: Record<string, string> = { format: 'pt' },
  ) {
    if (endianness() !== 'LE')
      throw new AttuneError('safetensors data is little-endian; big-endian hosts are not supported');
    this.entries = [...entries].sort((a, b) => (a.name < b.name ? -1 : a.name > b.name ? 1 : 0));
    const names = new Set<string>();
    for (const e of this.entries) {
      if (e.name === '' || e.name === '__metadata__' || names.has(e.name))
        throw new TypeError(`invalid or repeated tensor name '${e.name}'`);
      names.add(e.name);
    }
    this.file = new AtomicFile(path);
    try {
      writeAll(this.file.fd, encodeHeader(this.entries, metadata));
    } catch (error) {
      this.abort();
      throw error;
    }
  }

  /** Names in the order `write` takes them. */
  get order(): string[] {
    return this.entries.map((e) => e.name);
  }

  /** Append the next tensor (`name` must be the next in sorted order), converting f32 to its dtype. */
  write(name: string, values: Float32Array): void {
    if (this.file === null) throw new AttuneError(`${this.path}: write('${name}') after finish() or abort()`);
    const entry = this.entries[this.next];
    if (!entry || entry.name !== name) {
      throw new AttuneError(`${this.path}: expected tensor '${entry?.name ?? '(none)'}' next, got '${name}'`);
    }
    if (values.length !== shapeSize(entry.shape)) {
      throw new AttuneError(
        `${this.path}: '${name}' has ${values.length} values, expected ${formatShape(entry.shape)}`,
      );
    }
    writeAll(this.file.fd, encodeValues(values, entry.dtype));
    this.next++;
  }

  /** After the last tensor: fsync, close and rename over `path`. */
  finish(): void {
    if (this.file === null) throw new AttuneError(`${this.path}: finish() after finish() or abort()`);
    if (this.next !== this.entries.length) {
      this.abort();
      throw new AttuneError(`${this.path}: finish() after ${this.next} of ${this.entries.length} tensors`);
    }
    const file = this.file;
    this.file = null;
    file.commit();
  }

  /** Stop and remove the temporary file (idempotent). */
  abort(): void {
    this.file?.abort();
    this.file = null;
  }
}
