/**
 * Plain-TypeScript GEMM, elementwise, broadcast, copy and reduction kernels. Written for
 * clarity; they are the correctness oracle for the native backend and accept f64 arrays.
 */
import type { Bf16Array, BinaryOp, FloatArray, NumericArray, ReduceOp, UnaryOp } from '../kernels.ts';

const widen = new Uint32Array(1);
const widenF = new Float32Array(widen.buffer);
/** bf16 bits -> number. */
export function bf16(bits: number): number {
  widen[0] = bits << 16;
  return widenF[0]!;
}

export function sgemm(
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
  const row = new Float64Array(N);
  const bRow = new Float64Array(K);
  for (let b = 0; b < batch; b++) {
    const a0 = aOffset + b * strideA;
    const b0 = bOffset + b * strideB;
    const c0 = cOffset + b * strideC;
    for (let i = 0; i < M; i++) {
      row.fill(0);
      if (!transB) {
        for (let p = 0; p < K; p++) {
          const a = transA ? A[a0 + p * lda + i]! : A[a0 + i * lda + p]!;
          if (a === 0) continue;
          const base = b0 + p * ldb;
          if (bBf16) for (let j = 0; j < N; j++) row[j]! += a * bf16(B[base + j]!);
          else for (let j = 0; j < N; j++) row[j]! += a * B[base + j]!;
        }
      } else {
        for (let p = 0; p < K; p++) bRow[p] = transA ? A[a0 + p * lda + i]! : A[a0 + i * lda + p]!;
        for (let j = 0; j < N; j++) {
          const base = b0 + j * ldb;
          let s = 0;
          if (bBf16) for (let p = 0; p < K; p++) s += bRow[p]! * bf16(B[base + p]!);
          else for (let p = 0; p < K; p++) s += bRow[p]! * B[base + p]!;
          row[j] = s;
        }
      }
      const cBase = c0 + i * ldc;
      if (beta === 0) for (let j = 0; j < N; j++) C[cBase + j] = alpha * row[j]!;
      else for (let j = 0; j < N; j++) C[cBase + j] = alpha * row[j]! + beta * C[cBase + j]!;
    }
  }
}

const SQRT_2_OVER_PI = Math.sqrt(2 / Math.PI);

/** erfc(|x|) by Numerical Recipes' Chebyshev fit (relative error < 1.2e-7 everywhere). */
function erfcOfAbs(x: number): number {
  const z = Math.abs(x);
  const t = 1 / (1 + 0.5 * z);
  return (
    t *
    Math.exp(
      -z * z -
        1.26551223 +
        t *
          (1.00002368 +
            t *
              (0.37409196 +
                t *
                  (0.09678418 +
                    t *
                      (-0.18628806 +
                        t *
                          (0.27886807 +
                            t * (-1.13520398 + t * (1.48851587 + t * (-0.82215223 + t * 0.17087277)))))))),
    )
  );
}

/** erf with |error| < 1.2e-7 (Numerical Recipes erfc, Chebyshev). */
export function erf(x: number): number {
  const r = erfcOfAbs(x);
  return x >= 0 ? 1 - r : r - 1;
}

/** The complementary error function 1 - erf(x), accurate in the tail (relative error < 1.2e-7). */
export function erfc(x: number): number {
  const r = erfcOfAbs(x);
  return x >= 0 ? r : 2 - r;
}

function sigmoid(x: number): number {
  return x >= 0 ? 1 / (1 + Math.exp(-x)) : Math.exp(x) / (1 + Math.exp(x));
}

function softplus(x: number): number {
  return x > 20 ? x : Math.log1p(Math.exp(x));
}

export function unary(op: UnaryOp, x: FloatArray, out: FloatArray, n: number, param: number): void {
  switch (op) {
    case 'neg':
      for (let i = 0; i < n; i++) out[i] = -x[i]!;
      return;
    case 'exp':
      for (let i = 0; i < n; i++) out[i] = Math.exp(x[i]!);
      return;
    case 'log':
      for (let i = 0; i < n; i++) out[i] = Math.log(x[i]!);
      return;
    case 'sqrt':
      for (let i = 0; i < n; i++) out[i] = Math.sqrt(x[i]!);
      return;
    case 'rsqrt':
      for (let i = 0; i < n; i++) out[i] = 1 / Math.sqrt(x[i]!);
      return;
    case 'abs':
      for (let i = 0; i < n; i++) out[i] = Math.abs(x[i]!);
      return;
    case 'tanh':
      for (let i = 0; i < n; i++) out[i] = Math.tanh(x[i]!);
      return;
    case 'sigmoid':
      for (let i = 0; i < n; i++) out[i] = sigmoid(x[i]!);
      return;
    case 'relu':
      for (let i = 0; i < n; i++) out[i] = x[i]! > 0 ? x[i]! : 0;
      return;
    case 'silu':
      for (let i = 0; i < n; i++) out[i] = x[i]! * sigmoid(x[i]!);
      return;
    case 'gelu_tanh':
      for (let i = 0; i < n; i++) {
        const v = x[i]!;
        out[i] = 0.5 * v * (1 + Math.tanh(SQRT_2_OVER_PI * (v + 0.044715 * v * v * v)));
      }
      return;
    case 'gelu_erf':
      for (let i = 0; i < n; i++) out[i] = 0.5 * x[i]! * (1 + erf(x[i]! / Math.SQRT2));
      return;
    case 'softplus':
      for (let i = 0; i < n; i++) out[i] = softplus(x[i]!);
      return;
    case 'square':
      for (let i = 0; i < n; i++) out[i] = x[i]! * x[i]!;
      return;
    case 'pow':
      for (let i = 0; i < n; i++) out[i] = x[i]! ** param;
      return;
    case 'add_scalar':
      for (let i = 0; i < n; i++) out[i] = x[i]! + param;
      return;
    case 'mul_scalar':
      for (let i = 0; i < n; i++) out[i] = x[i]! * param;
      return;
  }
}

function derivative(op: UnaryOp, x: number, y: number, param: number): number {
  switch (op) {
    case 'neg':
      return -1;
    case 'exp':
      return y;
    case 'log':
      return 1 / x;
    case 'sqrt':
      return 0.5 / y;
    case 'rsqrt':
      return -0.5 * y * y * y;
    case 'abs':
      return x > 0 ? 1 : x < 0 ? -1 : 0;
    case 'tanh':
      return 1 - y * y;
    case 'sigmoid':
      return y * (1 - y);
    case 'relu':
      return x > 0 ? 1 : 0;
    case 'silu': {
      const s = sigmoid(x);
      return s * (1 + x * (1 - s));
    }
    case 'gelu_tanh': {
      const u = SQRT_2_OVER_PI * (x + 0.044715 * x * x * x);
      const t = Math.tanh(u);
      return 0.5 * (1 + t) + 0.5 * x * (1 - t * t) * SQRT_2_OVER_PI * (1 + 3 * 0.044715 * x * x);
    }
    case 'gelu_erf':
      return 0.5 * (1 + erf(x / Math.SQRT2)) + (x * Math.exp(-0.5 * x * x)) / Math.sqrt(2 * Math.PI);
    case 'softplus':
      return sigmoid(x);
    case 'square':
      return 2 * x;
    case 'pow':
      return param === 0 ? 0 : param * x ** (param - 1);
    case 'add_scalar':
      return 1;
    case 'mul_scalar':
      return param;
  }
}

export function unaryBackward(
  op: UnaryOp,
  x: FloatArray,
  y: FloatArray,
  gy: FloatArray,
  gx: FloatArray,
  n: number,
  param: number,
): void {
  for (let i = 0; i < n; i++) gx[i] = gy[i]! * derivative(op, x[i]!, y[i]!, param);
}

function applyBinary(op: BinaryOp, a: number, b: number): number {
  switch (op) {
    case 'add':
      return a + b;
    case 'sub':
      return a - b;
    case 'mul':
      return a * b;
    case 'div':
      return a / b;
    case 'max':
      return a > b ? a : b;
    case 'min':
      return a < b ? a : b;
    case 'eq':
      return a === b ? 1 : 0;
    case 'gt':
      return a > b ? 1 : 0;
  }
}

/**
 * Visit every index of `shape` in row-major order, calling visit(linear, off0, off1, off2) with
 * the running offsets of up to three strided operands.
 */
function forEachIndex(
  shape: readonly number[],
  s0: readonly number[],
  s1: readonly number[],
  s2: readonly number[],
  visit: (linear: number, o0: number, o1: number, o2: number) => void,
): void {
  const rank = shape.length;
  let total = 1;
  for (const d of shape) total *= d;
  if (total === 0) return;
  const idx = new Array<number>(rank).fill(0);
  let o0 = 0;
  let o1 = 0;
  let o2 = 0;
  for (let linear = 0; linear < total; linear++) {
    visit(linear, o0, o1, o2);
    for (let d = rank - 1; d >= 0; d--) {
      idx[d]!++;
      o0 += s0[d] ?? 0;
      o1 += s1[d] ?? 0;
      o2 += s2[d] ?? 0;
      if (idx[d]! < shape[d]!) break;
      o0 -= (s0[d] ?? 0) * shape[d]!;
      o1 -= (s1[d] ?? 0) * shape[d]!;
      o2 -= (s2[d] ?? 0) * shape[d]!;
      idx[d] = 0;
    }
  }
}

export function binary(
  op: BinaryOp,
  a: FloatArray,
  aStrides: readonly number[],
  b: FloatArray,
  bStrides: readonly number[],
  out: FloatArray,
  shape: readonly number[],
): void {
  forEachIndex(shape, aStrides, bStrides, [], (i, oa, ob) => {
    out[i] = applyBinary(op, a[oa]!, b[ob]!);
  });
}

export function where(
  cond: NumericArray,
  condStrides: readonly number[],
  a: FloatArray,
  aStrides: readonly number[],
  b: FloatArray,
  bStrides: readonly number[],
  out: FloatArray,
  shape: readonly number[],
): void {
  forEachIndex(shape, condStrides, aStrides, bStrides, (i, oc, oa, ob) => {
    out[i] = cond[oc] !== 0 ? a[oa]! : b[ob]!;
  });
}

export function copyStrided(
  src: NumericArray,
  srcOffset: number,
  srcStrides: readonly number[],
  dst: NumericArray,
  dstOffset: number,
  dstStrides: readonly number[],
  shape: readonly number[],
): void {
  forEachIndex(shape, srcStrides, dstStrides, [], (_i, os, od) => {
    dst[dstOffset + od] = src[srcOffset + os]!;
  });
}

export function reduce(
  op: ReduceOp,
  x: FloatArray,
  out: FloatArray,
  outer: number,
  len: number,
  inner: number,
): void {
  for (let o = 0; o < outer; o++) {
    for (let i = 0; i < inner; i++) {
      const base = o * len * inner + i;
      let acc: number;
      if (op === 'sum') {
        acc = 0;
        for (let l = 0; l < len; l++) acc += x[base + l * inner]!;
      } else {
        acc = -Infinity;
        for (let l = 0; l < len; l++) {
          const v = x[base + l * inner]!;
          if (v > acc || Number.isNaN(v)) acc = v;
        }
        if (op === 'logsumexp' && Number.isFinite(acc)) {
          let s = 0;
          for (let l = 0; l < len; l++) s += Math.exp(x[base + l * inner]! - acc);
          acc += Math.log(s);
        }
      }
      out[o * inner + i] = acc;
    }
  }
}

export function sumSquares(x: FloatArray, n: number): number {
  let s = 0;
  for (let i = 0; i < n; i++) s += x[i]! * x[i]!;
  return s;
}
