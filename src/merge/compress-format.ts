/**
 * The ComPEFT container file (`compeft.bin`; specified in docs/formats.md, "ComPEFT"):
 *
 *   bytes 0..7    magic "ATCOMPFT"
 *   bytes 8..15   header length H, unsigned 64-bit little-endian (H is a multiple of 8)
 *   next H bytes  UTF-8 JSON header, padded with spaces
 *   gap stream    header.gap_bytes bytes: Golomb-Rice coded gaps between kept positions
 *   sign stream   header.sign_bytes bytes: one bit per kept position, 1 = negative
 *
 * and nothing after. Writing is atomic (temp file, fsync, rename).
 */
import { closeSync, fstatSync, openSync, readSync } from 'node:fs';
import { FormatError } from '../errors.ts';
import { isJsonObject, type JsonObject, parseJson, writeAll, writeFileAtomic } from '../io/index.ts';

/** The container's file name inside a compressed directory. */
export const COMPEFT_FILE = 'compeft.bin';
/** The 8 magic bytes that start the file. */
export const COMPEFT_MAGIC = 'ATCOMPFT';
/** The format identifier in the header. */
export const COMPEFT_FORMAT = 'attune-compeft';
/** The format version this code writes and reads. */
export const COMPEFT_VERSION = 1;

/** What was compressed. */
export type CompeftKind = 'lora-adapter' | 'model-delta';

/** One tensor of the compressed vector, in the order of the global position index. */
export interface CompeftTensorEntry {
  name: string;
  shape: number[];
  /** The safetensors dtype of the input tensor (informational; decompression writes F32). */
  dtype: string;
}

/** The JSON header (snake_case as stored). */
export interface CompeftHeader {
  format: typeof COMPEFT_FORMAT;
  version: number;
  kind: CompeftKind;
  tensors: CompeftTensorEntry[];
  /** Entries of tau (sum of the tensor sizes). */
  total: number;
  /** Entries kept (= positions coded). */
  kept: number;
  /** Requested density (fraction kept) and alpha. */
  density: number;
  alpha: number;
  /** Population standard deviation and mean of tau. */
  sigma: number;
  mean: number;
  /** alpha * sigma: every kept entry decompresses to +scale or -scale. */
  scale: number;
  /** Rice parameter b of the gap code. */
  rice_parameter: number;
  gap_bits: number;
  gap_bytes: number;
  sign_bytes: number;
  /** ||tau^ - tau|| / ||tau|| (0 when tau is zero). */
  reconstruction_error: number;
  /** Size of the input safetensors file(s). */
  bytes_in: number;
  /** Where the input came from (informational). */
  source: { adapter?: string; model?: string; base?: string };
  /** lora-adapter: the adapter_config.json object, written back verbatim by decompression. */
  adapter_config: JsonObject | null;
  /** model-delta: the tuned model's config.json and generation_config.json objects. */
  model_config: JsonObject | null;
  generation_config: JsonObject | null;
  /** model-delta: fingerprint of the base tensors the delta is relative to. */
  base_fingerprint: string | null;
}

/** Write the container to `path` atomically; returns its size in bytes. */
export function writeCompeftFile(
  path: string,
  header: CompeftHeader,
  gaps: Uint8Array,
  signs: Uint8Array,
): number {
  const json = Buffer.from(JSON.stringify(header), 'utf8');
  const padded = Math.ceil(json.length / 8) * 8;
  const head = new Uint8Array(16 + padded).fill(0x20);
  head.set(Buffer.from(COMPEFT_MAGIC, 'ascii'), 0);
  new DataView(head.buffer).setBigUint64(8, BigInt(padded), true);
  head.set(json, 16);
  writeFileAtomic(path, (fd) => {
    writeAll(fd, head);
    writeAll(fd, gaps);
    writeAll(fd, signs);
  });
  return head.length + gaps.length + signs.length;
}

function readExactly(fd: number, length: number, position: number, file: string, what: string): Uint8Array {
  const out = new Uint8Array(length);
  let done = 0;
  while (done < length) {
    const n = readSync(fd, out, done, Math.min(length - done, 2 ** 30), position + done);
    if (n === 0) throw new FormatError(file, `the file ended while reading the ${what}`);
    done += n;
  }
  return out;
}

function nonNegInt(header: JsonObject, key: string, file: string): number {
  const v = header[key];
  if (typeof v !== 'number' || !Number.isSafeInteger(v) || v < 0) {
    throw new FormatError(
      file,
      `header field '${key}' must be a non-negative integer, found ${JSON.stringify(v)}`,
    );
  }
  return v;
}

function finite(header: JsonObject, key: string, file: string): number {
  const v = header[key];
  if (typeof v !== 'number' || !Number.isFinite(v)) {
    throw new FormatError(file, `header field '${key}' must be a finite number, found ${JSON.stringify(v)}`);
  }
  return v;
}

/** Validate a parsed header object. */
function checkHeader(raw: unknown, file: string): CompeftHeader {
  if (!isJsonObject(raw)) throw new FormatError(file, 'the header is not a JSON object');
  if (raw.format !== COMPEFT_FORMAT) {
    throw new FormatError(
      file,
      `header format is ${JSON.stringify(raw.format)}, expected "${COMPEFT_FORMAT}"`,
    );
  }
  if (raw.version !== COMPEFT_VERSION) {
    throw new FormatError(
      file,
      `format version ${JSON.stringify(raw.version)} is not supported (this Attune reads ${COMPEFT_VERSION})`,
    );
  }
  if (raw.kind !== 'lora-adapter' && raw.kind !== 'model-delta') {
    throw new FormatError(
      file,
      `header kind ${JSON.stringify(raw.kind)} is not "lora-adapter" or "model-delta"`,
    );
  }
  if (!Array.isArray(raw.tensors)) throw new FormatError(file, "header field 'tensors' must be a list");
  let total = 0;
  for (const t of raw.tensors as unknown[]) {
    const ok =
      isJsonObject(t) &&
      typeof t.name === 'string' &&
      typeof t.dtype === 'string' &&
      Array.isArray(t.shape) &&
      (t.shape as unknown[]).every((d) => typeof d === 'number' && Number.isSafeInteger(d) && d >= 0);
    if (!ok)
      throw new FormatError(file, `bad tensor entry ${JSON.stringify(t)} (expected {name, shape, dtype})`);
    total += (t.shape as number[]).reduce((p, d) => p * d, 1);
  }
  const declared = nonNegInt(raw, 'total', file);
  if (declared !== total)
    throw new FormatError(file, `header total ${declared} differs from the tensors' ${total} entries`);
  const kept = nonNegInt(raw, 'kept', file);
  if (kept > total) throw new FormatError(file, `header kept ${kept} exceeds total ${total}`);
  for (const key of ['density', 'alpha', 'sigma', 'mean', 'scale', 'reconstruction_error'])
    finite(raw, key, file);
  const b = nonNegInt(raw, 'rice_parameter', file);
  if (b > 30) throw new FormatError(file, `rice_parameter ${b} exceeds 30`);
  const gapBits = nonNegInt(raw, 'gap_bits', file);
  if (nonNegInt(raw, 'gap_bytes', file) !== Math.ceil(gapBits / 8)) {
    throw new FormatError(file, `gap_bytes ${raw.gap_bytes} does not hold gap_bits ${gapBits}`);
  }
  if (nonNegInt(raw, 'sign_bytes', file) !== Math.ceil(kept / 8)) {
    throw new FormatError(file, `sign_bytes ${raw.sign_bytes} does not hold ${kept} sign bits`);
  }
  nonNegInt(raw, 'bytes_in', file);
  return raw as unknown as CompeftHeader;
}

/** A container read back: header and the two bit streams. */
export interface CompeftFile {
  path: string;
  header: CompeftHeader;
  gaps: Uint8Array;
  signs: Uint8Array;
  /** Size of the file in bytes. */
  bytes: number;
}

/** Read and validate the container at `path` (FormatErrors name the file and the problem). */
export function readCompeftFile(path: string): CompeftFile {
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
  try {
    const size = fstatSync(fd).size;
    if (size < 16) throw new FormatError(path, `file is ${size} bytes: not a ComPEFT file`);
    const prefix = readExactly(fd, 16, 0, path, 'prefix');
    if (Buffer.from(prefix.subarray(0, 8)).toString('latin1') !== COMPEFT_MAGIC) {
      throw new FormatError(path, `does not start with "${COMPEFT_MAGIC}": not a ComPEFT file`);
    }
    const headerLength = new DataView(prefix.buffer).getBigUint64(8, true);
    if (headerLength > BigInt(size - 16))
      throw new FormatError(path, `header length ${headerLength} runs past the end of the file`);
    const h = Number(headerLength);
    const text = Buffer.from(readExactly(fd, h, 16, path, 'header')).toString('utf8');
    const header = checkHeader(parseJson(text, path), path);
    const expected = 16 + h + header.gap_bytes + header.sign_bytes;
    if (size !== expected) {
      throw new FormatError(
        path,
        `file is ${size} bytes but its header describes ${expected} (truncated or corrupt)`,
      );
    }
    const gaps = readExactly(fd, header.gap_bytes, 16 + h, path, 'gap stream');
    const signs = readExactly(fd, header.sign_bytes, 16 + h + header.gap_bytes, path, 'sign stream');
    return { path, header, gaps, signs, bytes: size };
  } finally {
    closeSync(fd);
  }
}
