/**
 * Internal helpers shared by ComPEFT compression and decompression (not part of the public API):
 * reading float tensors as f64, the base fingerprint of model deltas, and error lists.
 */
import { statSync } from 'node:fs';
import type { TensorReader } from '../io/index.ts';
import { formatShape } from '../tensor/index.ts';

/** The safetensors dtypes tau can be read from. */
export const FLOAT_DTYPES = ['F32', 'BF16', 'F16', 'F64'];

/** A float tensor as f64 (exact widening of F32, BF16 and F16). */
export function readFloat64(reader: TensorReader, name: string): Float64Array {
  const info = reader.info(name);
  const t = reader.read(name, info.dtype === 'F64' ? {} : { dtype: 'f32' });
  try {
    return Float64Array.from(t.data as Float32Array | Float64Array);
  } finally {
    t.release();
  }
}

/** Total size of the files holding `reader`'s tensors. */
export function checkpointBytes(reader: TensorReader): number {
  const files = new Set(reader.names().map((n) => reader.info(n).file));
  let bytes = 0;
  for (const f of files) bytes += statSync(f).size;
  return bytes;
}

/** "N problem(s): a; b; c". */
export function listProblems(problems: string[]): string {
  return `${problems.length} problem${problems.length === 1 ? '' : 's'}: ${problems.join('; ')}`;
}

/** FNV-1a over 32-bit words, continued from `hash`. */
function fnvWords(hash: number, words: Uint32Array): number {
  let h = hash;
  for (let i = 0; i < words.length; i++) h = Math.imul(h ^ words[i]!, 16777619) >>> 0;
  return h;
}

/** Fingerprint of base tensors (names, shapes and f64 values), updated tensor by tensor. */
export class Fingerprint {
  private hash = 2166136261;

  /** Mix in one tensor. */
  add(name: string, shape: readonly number[], values: Float64Array): void {
    const label = new TextEncoder().encode(`${name}:${formatShape(shape)};`);
    const padded = new Uint8Array(Math.ceil(label.length / 4) * 4);
    padded.set(label);
    this.hash = fnvWords(this.hash, new Uint32Array(padded.buffer));
    this.hash = fnvWords(this.hash, new Uint32Array(values.buffer, values.byteOffset, values.length * 2));
  }

  /** The fingerprint as text: `fnv1a32:<hex>`. */
  value(): string {
    return `fnv1a32:${this.hash.toString(16).padStart(8, '0')}`;
  }
}
