/**
 * SwiGLU, embedding gather / scatter-add, philox dropout, AdamW and bf16 <-> f32 conversions.
 */

import type { Bf16Array, FloatArray } from '../kernels.ts';
import { philoxUniform } from '../philox.ts';
import { bf16 } from './basic.ts';

function sigmoid(x: number): number {
  return x >= 0 ? 1 / (1 + Math.exp(-x)) : Math.exp(x) / (1 + Math.exp(x));
}

/** out = silu(gate) * up. out may alias gate or up. */
export function swiglu(gate: FloatArray, up: FloatArray, out: FloatArray, n: number): void {
  for (let i = 0; i < n; i++) {
    const g = gate[i]!;
    out[i] = g * sigmoid(g) * up[i]!;
  }
}

/** gGate = gy * up * silu'(gate), gUp = gy * silu(gate), with silu'(x) = s (1 + x (1 - s)). */
export function swigluBackward(
  gate: FloatArray,
  up: FloatArray,
  gy: FloatArray,
  gGate: FloatArray,
  gUp: FloatArray,
  n: number,
): void {
  for (let i = 0; i < n; i++) {
    const g = gate[i]!;
    const s = sigmoid(g);
    const dy = gy[i]!;
    const u = up[i]!;
    gUp[i] = dy * g * s;
    gGate[i] = dy * u * s * (1 + g * (1 - s));
  }
}

/** out[i, :] = table[ids[i], :] for i < n (table [rows, dim], bf16 when tableBf16). */
export function gatherRows(
  table: FloatArray | Bf16Array,
  tableBf16: boolean,
  ids: Int32Array,
  out: FloatArray,
  n: number,
  dim: number,
): void {
  const rows = dim === 0 ? Infinity : table.length / dim;
  for (let i = 0; i < n; i++) {
    const id = ids[i]!;
    if (id < 0 || id >= rows)
      throw new RangeError(`gatherRows: id ${id} (position ${i}) is outside the table of ${rows} rows`);
    const src = id * dim;
    const dst = i * dim;
    if (tableBf16) for (let k = 0; k < dim; k++) out[dst + k] = bf16(table[src + k]!);
    else for (let k = 0; k < dim; k++) out[dst + k] = table[src + k]!;
  }
}

/** gTable[ids[i], :] += g[i, :] for i < n, in index order (deterministic). */
export function scatterAddRows(
  g: FloatArray,
  ids: Int32Array,
  gTable: FloatArray,
  n: number,
  dim: number,
): void {
  const rows = dim === 0 ? Infinity : gTable.length / dim;
  for (let i = 0; i < n; i++) {
    const id = ids[i]!;
    if (id < 0 || id >= rows)
      throw new RangeError(`scatterAddRows: id ${id} (position ${i}) is outside the table of ${rows} rows`);
    const dst = id * dim;
    const src = i * dim;
    for (let k = 0; k < dim; k++) gTable[dst + k] = gTable[dst + k]! + g[src + k]!;
  }
}

/** out[j] = dot(a[aRows[j], :], b[bRows[j], :]) for j < k (rows of length n), in index order. */
export function rowPairDots(
  a: FloatArray,
  b: FloatArray,
  aRows: Int32Array,
  bRows: Int32Array,
  out: FloatArray,
  k: number,
  n: number,
): void {
  const aCount = n === 0 ? Infinity : a.length / n;
  const bCount = n === 0 ? Infinity : b.length / n;
  for (let j = 0; j < k; j++) {
    const ra = aRows[j]!;
    const rb = bRows[j]!;
    if (ra < 0 || ra >= aCount || rb < 0 || rb >= bCount)
      throw new RangeError(
        `rowPairDots: pair ${j} (${ra}, ${rb}) is outside a of ${aCount} rows / b of ${bCount} rows`,
      );
    const ao = ra * n;
    const bo = rb * n;
    let s = 0;
    for (let t = 0; t < n; t++) s += a[ao + t]! * b[bo + t]!;
    out[j] = s;
  }
}

/** In place: each row of x [rows, n] becomes H_n times it (unnormalised Walsh–Hadamard; n a power of two). */
export function fwht(x: FloatArray, rows: number, n: number): void {
  if (n > 1 && (n & (n - 1)) !== 0) throw new RangeError(`fwht: n ${n} must be a power of two`);
  if (x.length < rows * n) throw new RangeError(`fwht: x has ${x.length} elements, rows*n needs ${rows * n}`);
  for (let r = 0; r < rows; r++) {
    const o = r * n;
    for (let h = 1; h < n; h *= 2) {
      for (let i = o; i < o + n; i += 2 * h) {
        for (let j = i; j < i + h; j++) {
          const a = x[j]!;
          const b = x[j + h]!;
          x[j] = a + b;
          x[j + h] = a - b;
        }
      }
    }
  }
}

/** out[i] = keep ? x[i] / (1 - p) : 0 with keep iff philoxUniform(seed, offset + i) >= p. out may alias x. */
export function dropout(
  x: FloatArray,
  out: FloatArray,
  n: number,
  p: number,
  seed: number,
  offset: number,
): void {
  if (p === 0) {
    for (let i = 0; i < n; i++) out[i] = x[i]!;
    return;
  }
  const scale = 1 / (1 - p);
  for (let i = 0; i < n; i++) out[i] = philoxUniform(seed, offset + i) >= p ? x[i]! * scale : 0;
}

/** gx = gy through the same mask as `dropout` with the same (p, seed, offset). gx may alias gy. */
export function dropoutBackward(
  gy: FloatArray,
  gx: FloatArray,
  n: number,
  p: number,
  seed: number,
  offset: number,
): void {
  dropout(gy, gx, n, p, seed, offset);
}

/**
 * AdamW in place (decoupled weight decay, bias correction with step >= 1):
 *   m = b1 m + (1-b1) g; v = b2 v + (1-b2) g^2; p -= lr * (wd * p + mhat / (sqrt(vhat) + eps))
 * with mhat = m / (1 - b1^step), vhat = v / (1 - b2^step).
 */
export function adamw(
  p: FloatArray,
  g: FloatArray,
  m: FloatArray,
  v: FloatArray,
  n: number,
  lr: number,
  beta1: number,
  beta2: number,
  eps: number,
  weightDecay: number,
  step: number,
): void {
  if (!(step >= 1)) throw new RangeError(`adamw: step must be >= 1 (bias correction), got ${step}`);
  const bc1 = 1 - beta1 ** step;
  const bc2 = 1 - beta2 ** step;
  for (let i = 0; i < n; i++) {
    const gi = g[i]!;
    const mi = beta1 * m[i]! + (1 - beta1) * gi;
    const vi = beta2 * v[i]! + (1 - beta2) * gi * gi;
    m[i] = mi;
    v[i] = vi;
    const pi = p[i]!;
    p[i] = pi - lr * (weightDecay * pi + mi / bc1 / (Math.sqrt(vi / bc2) + eps));
  }
}

/** Round-to-nearest-even f32 -> bf16 bits; NaN stays a (quiet) NaN, infinities stay infinite. */
export function f32ToBf16(src: Float32Array, dst: Bf16Array, n: number): void {
  const bits = new Uint32Array(src.buffer, src.byteOffset, n);
  for (let i = 0; i < n; i++) {
    const b = bits[i]!;
    if ((b & 0x7f800000) === 0x7f800000 && (b & 0x7fffff) !== 0) dst[i] = (b >>> 16) | 0x40;
    else dst[i] = ((b + 0x7fff + ((b >>> 16) & 1)) >>> 16) & 0xffff;
  }
}

/** bf16 bits -> f32 (exact). */
export function bf16ToF32(src: Bf16Array, dst: Float32Array, n: number): void {
  const bits = new Uint32Array(dst.buffer, dst.byteOffset, n);
  for (let i = 0; i < n; i++) bits[i] = src[i]! << 16;
}
