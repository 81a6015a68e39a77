/**
 * f32 values -> the bytes of a GGUF tensor in f32, f16, bf16 or q8_0, as ggml lays them out
 * (little-endian). f16 and bf16 round to nearest even; q8_0 follows ggml-quants.c
 * `quantize_row_q8_0_ref`: per block of 32, d = max|x| / 127 (stored as f16), q = round(x / d)
 * (half away from zero). `dequantizeQ8_0` is the inverse, for checks.
 */
import { FormatError } from '../../errors.ts';
import { f16ToF32, toBf16 } from '../convert.ts';
import { GgmlType, type GgmlTypeId, Q8_0_BLOCK, Q8_0_BLOCK_BYTES } from './types.ts';

const f32Scratch = new Float32Array(1);
const u32Scratch = new Uint32Array(f32Scratch.buffer);

/** One f32 value -> IEEE half bits, round to nearest even (overflow -> inf, NaN stays NaN). */
export function f32ToF16Bits(value: number): number {
  f32Scratch[0] = value;
  const x = u32Scratch[0]!;
  const sign = (x >>> 16) & 0x8000;
  const exponent = (x >>> 23) & 0xff;
  let mantissa = x & 0x7fffff;
  if (exponent === 0xff) return sign | 0x7c00 | (mantissa ? 0x200 | (mantissa >>> 13) : 0);
  const e = exponent - 127 + 15;
  if (e >= 0x1f) return sign | 0x7c00;
  if (e <= 0) {
    if (e < -10) return sign; // below half the smallest subnormal: rounds to zero
    mantissa |= 0x800000;
    const shift = 14 - e;
    let half = mantissa >>> shift;
    const rest = mantissa & ((1 << shift) - 1);
    const midpoint = 1 << (shift - 1);
    if (rest > midpoint || (rest === midpoint && (half & 1) === 1)) half++;
    return sign | half;
  }
  let half = (e << 10) | (mantissa >>> 13);
  const rest = mantissa & 0x1fff;
  if (rest > 0x1000 || (rest === 0x1000 && (half & 1) === 1)) half++; // may carry into the exponent (-> inf): correct
  return sign | half;
}

/** f32 values -> IEEE half bits. */
export function toF16(values: Float32Array): Uint16Array {
  const out = new Uint16Array(values.length);
  for (let i = 0; i < values.length; i++) out[i] = f32ToF16Bits(values[i]!);
  return out;
}

/** f32 values (a multiple of 32 of them) -> q8_0 blocks. */
export function quantizeQ8_0(values: Float32Array): Uint8Array {
  if (values.length % Q8_0_BLOCK !== 0)
    throw new RangeError(`q8_0 needs a multiple of ${Q8_0_BLOCK} values, got ${values.length}`);
  const blocks = values.length / Q8_0_BLOCK;
  const out = new Uint8Array(blocks * Q8_0_BLOCK_BYTES);
  const view = new DataView(out.buffer);
  for (let b = 0; b < blocks; b++) {
    const start = b * Q8_0_BLOCK;
    let amax = 0;
    for (let j = 0; j < Q8_0_BLOCK; j++) amax = Math.max(amax, Math.abs(values[start + j]!));
    f32Scratch[0] = amax / 127;
    const d = f32Scratch[0]!;
    f32Scratch[0] = d ? 1 / d : 0;
    const id = f32Scratch[0]!;
    const at = b * Q8_0_BLOCK_BYTES;
    view.setUint16(at, f32ToF16Bits(d), true);
    for (let j = 0; j < Q8_0_BLOCK; j++) {
      f32Scratch[0] = values[start + j]! * id;
      const x = f32Scratch[0]!;
      view.setInt8(at + 2 + j, Math.sign(x) * Math.round(Math.abs(x))); // roundf: half away from zero
    }
  }
  return out;
}

/** q8_0 blocks -> f32 values (d * q, d widened from f16). */
export function dequantizeQ8_0(bytes: Uint8Array): Float32Array {
  const blocks = bytes.length / Q8_0_BLOCK_BYTES;
  const out = new Float32Array(blocks * Q8_0_BLOCK);
  const view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  const scale = new Uint16Array(1);
  for (let b = 0; b < blocks; b++) {
    const at = b * Q8_0_BLOCK_BYTES;
    scale[0] = view.getUint16(at, true);
    const d = f16ToF32(scale)[0]!;
    for (let j = 0; j < Q8_0_BLOCK; j++) out[b * Q8_0_BLOCK + j] = d * view.getInt8(at + 2 + j);
  }
  return out;
}

/** Little-endian bytes of a typed array's contents (no copy on little-endian hosts). */
function bytesOf(array: Float32Array | Uint16Array): Uint8Array {
  return new Uint8Array(array.buffer, array.byteOffset, array.byteLength);
}

/** f32 values -> the bytes of a tensor of `type` (`where` names the tensor in errors). */
export function encodeTensor(values: Float32Array, type: GgmlTypeId, where: string): Uint8Array {
  switch (type) {
    case GgmlType.F32:
      return bytesOf(values);
    case GgmlType.F16:
      return bytesOf(toF16(values));
    case GgmlType.BF16:
      return bytesOf(toBf16(values));
    case GgmlType.Q8_0:
      if (values.length % Q8_0_BLOCK !== 0)
        throw new FormatError(where, `q8_0 needs rows of a multiple of ${Q8_0_BLOCK} elements`);
      return quantizeQ8_0(values);
  }
}
