/**
 * The js reference of bf16-compute GEMM: op(A) and op(B) rounded to bf16 (round to nearest even,
 * as f32ToBf16), then sgemm (whose f64 accumulation of the exact bf16 products stands in for the
 * native f32 accumulation: the two differ only by accumulation order and f32 rounding).
 */
import type { Bf16Array, FloatArray } from '../kernels.ts';
import { sgemm } from './basic.ts';
import { bf16ToF32, f32ToBf16 } from './misc.ts';

const scalarIn = new Float32Array(1);
const scalarBits = new Uint16Array(1);
const scalarOut = new Float32Array(1);

/** x rounded to f32, then to bf16 (nearest even; NaN stays NaN), as a number (f32ToBf16's rule). */
export function roundToBf16(x: number): number {
  scalarIn[0] = x;
  f32ToBf16(scalarIn, scalarBits, 1);
  bf16ToF32(scalarBits, scalarOut, 1);
  return scalarOut[0]!;
}

/** A Float32Array copy of x with every element rounded to bf16 (through the f32 <-> bf16 kernels). */
export function roundedCopy(x: FloatArray): Float32Array {
  const f32 = x instanceof Float32Array ? x : Float32Array.from(x);
  const bf16 = new Uint16Array(f32.length);
  f32ToBf16(f32, bf16, f32.length);
  const out = new Float32Array(f32.length);
  bf16ToF32(bf16, out, f32.length);
  return out;
}

/** Kernels.gemmBf16: sgemm on bf16-rounded inputs (bf16 B is already exact). */
export function gemmBf16(
  transA: boolean,
  transB: boolean,
  M: number,
  N: number,
  K: number,
  alpha: number,
  A: FloatArray,
  aOffset: number,
  lda: number,
  B: FloatArray | Bf16Array,
  bOffset: number,
  ldb: number,
  bBf16: boolean,
  beta: number,
  C: FloatArray,
  cOffset: number,
  ldc: number,
  batch: number,
  strideA: number,
  strideB: number,
  strideC: number,
): void {
  const a = roundedCopy(A);
  const b = bBf16 ? B : roundedCopy(B as FloatArray);
  sgemm(
    transA,
    transB,
    M,
    N,
    K,
    alpha,
    a,
    aOffset,
    lda,
    b,
    bOffset,
    ldb,
    bBf16,
    beta,
    C,
    cOffset,
    ldc,
    batch,
    strideA,
    strideB,
    strideC,
  );
}
