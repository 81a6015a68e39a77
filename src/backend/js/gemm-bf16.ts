/**
 * The js reference of bf16-compute GEMM: op(A) and op(B) rounded to bf16 (round to nearest even,
 * as f32ToBf16), then sgemm (whose f64 accumulation of the exact bf16 products stands in for the
 * native f32 accumulation: the two differ only by accumulation order and f32 rounding).
 */
import type { Bf16Array, FloatArray } from '../kernels.ts';
import { sgemm } from './basic.ts';

const bits = new Uint32Array(1);
const asFloat = new Float32Array(bits.buffer);

/** x rounded to f32, then to bf16 (nearest even; NaN stays NaN), as a number. */
export function roundToBf16(x: number): number {
  asFloat[0] = x;
  const b = bits[0]!;
  if ((b & 0x7f800000) === 0x7f800000 && (b & 0x7fffff) !== 0) return x;
  bits[0] = (b + 0x7fff + ((b >>> 16) & 1)) & 0xffff0000;
  return asFloat[0]!;
}

/** A Float32Array copy of x with every element rounded to bf16. */
function roundedCopy(x: FloatArray): Float32Array {
  const out = new Float32Array(x.length);
  for (let i = 0; i < x.length; i++) out[i] = roundToBf16(x[i]!);
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
