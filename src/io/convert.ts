/**
 * Element conversions between the safetensors storage dtypes and Attune's tensor dtypes. Every
 * conversion is explicit and exact or round-to-nearest-even; none is silent about overflow.
 */
import { toBf16Bits } from '../tensor/creation.ts';

let halfTable: Uint32Array | null = null;

/** f32 bit patterns of all 65536 IEEE half-precision values (built on first use). */
function f16Table(): Uint32Array {
  if (halfTable) return halfTable;
  const table = new Uint32Array(65536);
  for (let h = 0; h < 65536; h++) {
    const sign = (h & 0x8000) << 16;
    let exponent = (h >>> 10) & 0x1f;
    let mantissa = h & 0x3ff;
    let bits: number;
    if (exponent === 0x1f) {
      bits = sign | 0x7f800000 | (mantissa << 13); // inf / NaN (payload kept)
    } else if (exponent === 0) {
      if (mantissa === 0) bits = sign;
      else {
        // Subnormal half: normalise into an f32 normal number.
        exponent = 113;
        while ((mantissa & 0x400) === 0) {
          mantissa <<= 1;
          exponent--;
        }
        bits = sign | (exponent << 23) | ((mantissa & 0x3ff) << 13);
      }
    } else {
      bits = sign | ((exponent + 112) << 23) | (mantissa << 13);
    }
    table[h] = bits >>> 0;
  }
  halfTable = table;
  return table;
}

/** IEEE half-precision bits -> f32 values (exact). */
export function f16ToF32(half: Uint16Array): Float32Array {
  const table = f16Table();
  const out = new Uint32Array(half.length);
  for (let i = 0; i < half.length; i++) out[i] = table[half[i]!]!;
  return new Float32Array(out.buffer);
}

/** bf16 bits -> f32 values (exact). */
export function bf16ToF32(bf16: Uint16Array): Float32Array {
  const out = new Uint32Array(bf16.length);
  for (let i = 0; i < bf16.length; i++) out[i] = bf16[i]! << 16;
  return new Float32Array(out.buffer);
}

/** f32 (or f64) values -> bf16 bits, rounding to nearest even. */
export function toBf16(values: Float32Array | Float64Array): Uint16Array {
  const source = values instanceof Float64Array ? Float32Array.from(values) : values;
  const out = new Uint16Array(source.length);
  for (let i = 0; i < source.length; i++) out[i] = toBf16Bits(source[i]!);
  return out;
}

/**
 * Little-endian int64 values (as pairs of int32 words) -> int32, or the index of the first value
 * outside the int32 range.
 */
export function i64ToI32(words: Int32Array): { values: Int32Array } | { badIndex: number; badValue: bigint } {
  const n = words.length / 2;
  const out = new Int32Array(n);
  for (let i = 0; i < n; i++) {
    const low = words[2 * i]!;
    const high = words[2 * i + 1]!;
    // The value fits in int32 exactly when the high word is the sign extension of the low word.
    if (high !== low >> 31) {
      const value = (BigInt(high) << 32n) | BigInt(low >>> 0);
      return { badIndex: i, badValue: value };
    }
    out[i] = low;
  }
  return { values: out };
}
