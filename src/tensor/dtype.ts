/** Element types. bf16 is storage only (kernels widen to f32); f64 exists on the js backend only. */
export type DType = 'f32' | 'bf16' | 'i32' | 'f64';

export interface ArrayForDType {
  f32: Float32Array;
  bf16: Uint16Array;
  i32: Int32Array;
  f64: Float64Array;
}
export type AnyArray = ArrayForDType[DType];

/** Bytes per element of each dtype. */
export const BYTES_PER_ELEMENT: Readonly<Record<DType, number>> = { f32: 4, bf16: 2, i32: 4, f64: 8 };

/** A typed array view of `length` elements of `dtype` over `buffer`. */
export function viewOf(dtype: DType, buffer: ArrayBuffer, length: number): AnyArray {
  switch (dtype) {
    case 'f32':
      return new Float32Array(buffer, 0, length);
    case 'bf16':
      return new Uint16Array(buffer, 0, length);
    case 'i32':
      return new Int32Array(buffer, 0, length);
    case 'f64':
      return new Float64Array(buffer, 0, length);
  }
}

/** The dtype whose storage is this typed array (bf16 is a Uint16Array). */
export function dtypeOfArray(a: AnyArray): DType {
  if (a instanceof Float32Array) return 'f32';
  if (a instanceof Float64Array) return 'f64';
  if (a instanceof Int32Array) return 'i32';
  return 'bf16';
}

export function isFloat(dtype: DType): boolean {
  return dtype === 'f32' || dtype === 'f64';
}
