/**
 * Householder QR of a dense f64 matrix, A = Q R: thin (Q m x min(m,n), R min(m,n) x n) or full
 * (Q m x m, R m x n). Reflector k zeroes column k below the diagonal; each reflector is applied
 * to the trailing block row by row (w = v^T A as a combination of rows, then a rank-1 update), so
 * every inner loop runs over contiguous memory of the row-major storage. Q is accumulated
 * backwards from the identity, skipping the columns a reflector cannot reach.
 */
import { type Matrix64, matrix64 } from './matrix.ts';

/** A QR factorisation in compact form: the Householder vectors and the reduced matrix. */
export interface HouseholderQr {
  readonly rows: number;
  readonly cols: number;
  /** Reflector k is I - beta[k] v_k v_k^T with v_k (length rows - k) acting on rows k..rows-1. */
  readonly vectors: Float64Array[];
  readonly betas: Float64Array;
  /** The reduced matrix (R in its upper triangle; below it only rounding-level values). */
  readonly reduced: Matrix64;
}

/** Compute the Householder reflectors of `a` (not modified). */
export function householderQr(a: Matrix64): HouseholderQr {
  const m = a.rows;
  const n = a.cols;
  const R = Float64Array.from(a.data);
  const p = Math.min(m, n);
  const vectors: Float64Array[] = [];
  const betas = new Float64Array(p);
  const w = new Float64Array(n);
  for (let k = 0; k < p; k++) {
    const len = m - k;
    const v = new Float64Array(len);
    let scale = 0;
    for (let i = 0; i < len; i++) {
      v[i] = R[(k + i) * n + k]!;
      scale = Math.max(scale, Math.abs(v[i]!));
    }
    vectors.push(v);
    if (scale === 0 || len === 1) {
      betas[k] = 0;
      continue;
    }
    let norm2 = 0;
    for (let i = 0; i < len; i++) {
      const x = v[i]! / scale;
      norm2 += x * x;
    }
    const alpha = scale * Math.sqrt(norm2);
    const x0 = v[0]!;
    v[0] = x0 >= 0 ? x0 + alpha : x0 - alpha;
    let vv = 0;
    for (let i = 0; i < len; i++) vv += v[i]! * v[i]!;
    const beta = 2 / vv;
    betas[k] = beta;
    // w[j] = sum_i v_i R[k + i, j] for j >= k, then R[k + i, j] -= beta v_i w[j]
    w.fill(0, k, n);
    for (let i = 0; i < len; i++) {
      const vi = v[i]!;
      if (vi === 0) continue;
      const row = (k + i) * n;
      for (let j = k; j < n; j++) w[j] += vi * R[row + j]!;
    }
    for (let i = 0; i < len; i++) {
      const f = beta * v[i]!;
      if (f === 0) continue;
      const row = (k + i) * n;
      for (let j = k; j < n; j++) R[row + j] -= f * w[j]!;
    }
    // exact zeros below the diagonal, and the diagonal entry the reflector produces
    R[k * n + k] = x0 >= 0 ? -alpha : alpha;
    for (let i = 1; i < len; i++) R[(k + i) * n + k] = 0;
  }
  return { rows: m, cols: n, vectors, betas, reduced: { rows: m, cols: n, data: R } };
}

/**
 * Columns `start`..`end-1` of Q = H_0 H_1 ... H_{p-1} (an m x (end - start) matrix), by backward
 * accumulation applied to those columns of the identity.
 */
export function householderQColumns(f: HouseholderQr, start: number, end: number): Matrix64 {
  const m = f.rows;
  if (!(start >= 0 && end <= m && start <= end)) {
    throw new RangeError(`householderQColumns: columns [${start}, ${end}) outside 0..${m}`);
  }
  const width = end - start;
  const M = new Float64Array(m * width);
  for (let j = start; j < end; j++) M[j * width + (j - start)] = 1;
  const w = new Float64Array(width);
  for (let k = f.vectors.length - 1; k >= 0; k--) {
    const beta = f.betas[k]!;
    if (beta === 0) continue;
    const v = f.vectors[k]!;
    // columns j < k of the identity are untouched by H_k..H_{p-1}: they are still e_j there
    const j0 = Math.max(0, k - start);
    if (j0 >= width) continue;
    w.fill(0, j0, width);
    for (let i = 0; i < v.length; i++) {
      const vi = v[i]!;
      if (vi === 0) continue;
      const row = (k + i) * width;
      for (let j = j0; j < width; j++) w[j] += vi * M[row + j]!;
    }
    for (let i = 0; i < v.length; i++) {
      const fct = beta * v[i]!;
      if (fct === 0) continue;
      const row = (k + i) * width;
      for (let j = j0; j < width; j++) M[row + j] -= fct * w[j]!;
    }
  }
  return { rows: m, cols: width, data: M };
}

/** Options of `qr`. */
export interface QrOptions {
  /** 'thin' (default): Q m x min(m,n), R min(m,n) x n. 'full': Q m x m, R m x n. */
  mode?: 'thin' | 'full';
}

/** A = Q R with Q's columns orthonormal and R upper triangular. */
export interface QrResult {
  q: Matrix64;
  r: Matrix64;
}

/**
 * Householder QR of `a` (see the file comment); `mode` picks the thin (default) or full
 * factorisation. The diagonal of R may be negative (as LAPACK's geqrf).
 */
export function qr(a: Matrix64, options: QrOptions = {}): QrResult {
  const mode = options.mode ?? 'thin';
  const f = householderQr(a);
  const m = a.rows;
  const n = a.cols;
  const rRows = mode === 'full' ? m : Math.min(m, n);
  const r = matrix64(rRows, n);
  for (let i = 0; i < Math.min(rRows, m); i++) {
    for (let j = i; j < n; j++) r.data[i * n + j] = f.reduced.data[i * n + j]!;
  }
  const q = householderQColumns(f, 0, mode === 'full' ? m : Math.min(m, n));
  return { q, r };
}

/**
 * An orthonormal basis of the orthogonal complement of the column space of `q` (m x p with
 * orthonormal columns, p <= m): an m x (m - p) matrix. Computed from the Householder QR of `q`,
 * whose full Q extends q's columns (up to signs) to a basis of R^m.
 */
export function orthonormalComplement(q: Matrix64): Matrix64 {
  if (q.cols > q.rows) {
    throw new RangeError(`orthonormalComplement: ${q.rows} x ${q.cols} has more columns than rows`);
  }
  return householderQColumns(householderQr(q), q.cols, q.rows);
}
