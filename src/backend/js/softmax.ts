/**
 * Softmax and log-softmax over the last axis of a [rows, cols] array, forward and backward.
 * Sums are accumulated in JS doubles; `out` may alias `x`.
 */
import type { FloatArray } from '../kernels.ts';

/** Row maximum of x[base .. base+cols) (NaN wins, -Infinity for an empty row). */
function rowMax(x: FloatArray, base: number, cols: number): number {
  let m = -Infinity;
  for (let j = 0; j < cols; j++) {
    const v = x[base + j]!;
    if (v > m || Number.isNaN(v)) m = v;
  }
  return m;
}

/** out = softmax(x) per row of [rows, cols]. A row of all -Infinity gives NaN (as PyTorch). */
export function softmax(x: FloatArray, out: FloatArray, rows: number, cols: number): void {
  const e = new Float64Array(cols);
  for (let r = 0; r < rows; r++) {
    const base = r * cols;
    const m = rowMax(x, base, cols);
    let s = 0;
    for (let j = 0; j < cols; j++) {
      const v = Math.exp(x[base + j]! - m);
      e[j] = v;
      s += v;
    }
    const inv = 1 / s;
    for (let j = 0; j < cols; j++) out[base + j] = e[j]! * inv;
  }
}

/** gx = y * (gy - sum(gy * y)) per row, y the softmax output. gx may alias gy. */
export function softmaxBackward(
  y: FloatArray,
  gy: FloatArray,
  gx: FloatArray,
  rows: number,
  cols: number,
): void {
  for (let r = 0; r < rows; r++) {
    const base = r * cols;
    let dot = 0;
    for (let j = 0; j < cols; j++) dot += gy[base + j]! * y[base + j]!;
    for (let j = 0; j < cols; j++) gx[base + j] = y[base + j]! * (gy[base + j]! - dot);
  }
}

/** out = x - logsumexp(x) per row of [rows, cols]. */
export function logSoftmax(x: FloatArray, out: FloatArray, rows: number, cols: number): void {
  for (let r = 0; r < rows; r++) {
    const base = r * cols;
    const m = rowMax(x, base, cols);
    let s = 0;
    for (let j = 0; j < cols; j++) s += Math.exp(x[base + j]! - m);
    const lse = m + Math.log(s);
    for (let j = 0; j < cols; j++) out[base + j] = x[base + j]! - lse;
  }
}

/** gx = gy - exp(y) * sum(gy) per row, y the log-softmax output. gx may alias gy. */
export function logSoftmaxBackward(
  y: FloatArray,
  gy: FloatArray,
  gx: FloatArray,
  rows: number,
  cols: number,
): void {
  for (let r = 0; r < rows; r++) {
    const base = r * cols;
    let s = 0;
    for (let j = 0; j < cols; j++) s += gy[base + j]!;
    for (let j = 0; j < cols; j++) gx[base + j] = gy[base + j]! - Math.exp(y[base + j]!) * s;
  }
}
