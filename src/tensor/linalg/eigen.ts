/**
 * Symmetric eigendecomposition A = V diag(w) V^T in f64: Householder reduction to tridiagonal
 * form, then the implicit QL algorithm with Wilkinson-type shifts (EISPACK tred2/tql2, as in
 * JAMA), rewritten for row-major storage. The reduction updates the trailing block row by row,
 * and the QL rotations act on the eigenvectors stored as rows, so every inner loop is contiguous.
 * Cost is about (2 + 4/3 + ~4.5) n^3 flops with vectors: n = 576 takes about a second and
 * n = 1536 tens of seconds in plain JS (the SVD only ever decomposes the smaller side's Gram
 * matrix). Eigenvalues are accurate to about eps * ||A|| in absolute terms; eigenvectors are
 * orthonormal to working precision.
 */
import { AttuneError } from '../../errors.ts';
import { type Matrix64, transpose64 } from './matrix.ts';

/** Options of `symmetricEigen`. */
export interface SymmetricEigenOptions {
  /** Compute the eigenvectors (default true); false returns only the eigenvalues, faster. */
  vectors?: boolean;
  /** Order of the eigenvalues: 'ascending' (default, as LAPACK) or 'descending'. */
  order?: 'ascending' | 'descending';
}

/** Eigenvalues and (optionally) eigenvectors of a symmetric matrix. */
export interface SymmetricEigenResult {
  /** Eigenvalues in the requested order. */
  values: Float64Array;
  /** n x n; column j is the unit eigenvector of values[j] (null when vectors were not asked for). */
  vectors: Matrix64 | null;
}

/** sqrt(a^2 + b^2) without overflow for huge values. */
function hypot2(a: number, b: number): number {
  const x = Math.abs(a);
  const y = Math.abs(b);
  const big = Math.max(x, y);
  if (big === 0) return 0;
  if (big < 1e150 && big > 1e-150) return Math.sqrt(a * a + b * b);
  const small = Math.min(x, y);
  const r = small / big;
  return big * Math.sqrt(1 + r * r);
}

/**
 * Householder tridiagonalisation of the symmetric n x n `work` (row-major, overwritten): A = Q T Q^T
 * with Q = H_0 ... H_{n-3}, H_k = I - betas[k] v_k v_k^T acting on indices k+1..n-1. Returns T's
 * diagonal and off-diagonal (off[i] couples i and i+1; off[n-1] = 0) and the reflectors.
 */
export function tridiagonalize(
  work: Float64Array,
  n: number,
): { diag: Float64Array; off: Float64Array; vectors: Float64Array[]; betas: Float64Array } {
  const diag = new Float64Array(n);
  const off = new Float64Array(n);
  const vectors: Float64Array[] = [];
  const betas = new Float64Array(Math.max(0, n - 2));
  const p = new Float64Array(n);
  for (let k = 0; k < n - 2; k++) {
    const len = n - k - 1;
    const base = k + 1;
    const v = new Float64Array(len);
    let scale = 0;
    for (let i = 0; i < len; i++) {
      v[i] = work[k * n + base + i]!;
      scale = Math.max(scale, Math.abs(v[i]!));
    }
    diag[k] = work[k * n + k]!;
    vectors.push(v);
    if (scale === 0) {
      off[k] = 0;
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
    off[k] = x0 >= 0 ? -alpha : alpha;
    let vv = 0;
    for (let i = 0; i < len; i++) vv += v[i]! * v[i]!;
    const beta = 2 / vv;
    betas[k] = beta;
    // p = beta T v over the trailing block T = work[base.., base..]
    let pv = 0;
    for (let i = 0; i < len; i++) {
      const row = (base + i) * n + base;
      let s = 0;
      for (let j = 0; j < len; j++) s += work[row + j]! * v[j]!;
      p[i] = beta * s;
      pv += p[i]! * v[i]!;
    }
    // q = p - (beta/2)(p.v) v ; T -= v q^T + q v^T
    const half = 0.5 * beta * pv;
    for (let i = 0; i < len; i++) p[i] = p[i]! - half * v[i]!;
    for (let i = 0; i < len; i++) {
      const row = (base + i) * n + base;
      const vi = v[i]!;
      const qi = p[i]!;
      for (let j = 0; j < len; j++) work[row + j] -= vi * p[j]! + qi * v[j]!;
    }
  }
  if (n >= 2) {
    diag[n - 2] = work[(n - 2) * n + (n - 2)]!;
    off[n - 2] = work[(n - 2) * n + (n - 1)]!;
  }
  if (n >= 1) diag[n - 1] = work[(n - 1) * n + (n - 1)]!;
  off[n - 1] = 0;
  return { diag, off, vectors, betas };
}

/**
 * The transposed orthogonal factor of the reduction, Q^T (rows are Q's columns), where
 * A = Q T Q^T and Q = H_0 ... H_{n-3}; H_k acts on indices k+1..n-1.
 */
function reductionFactorRows(n: number, vectors: Float64Array[], betas: Float64Array): Float64Array {
  // backward accumulation of Q in place (row operations), then one transpose
  const M = new Float64Array(n * n);
  for (let i = 0; i < n; i++) M[i * n + i] = 1;
  const w = new Float64Array(n);
  for (let k = vectors.length - 1; k >= 0; k--) {
    const beta = betas[k]!;
    if (beta === 0) continue;
    const v = vectors[k]!;
    const base = k + 1;
    w.fill(0, base, n);
    for (let i = 0; i < v.length; i++) {
      const vi = v[i]!;
      if (vi === 0) continue;
      const row = (base + i) * n;
      for (let j = base; j < n; j++) w[j] += vi * M[row + j]!;
    }
    for (let i = 0; i < v.length; i++) {
      const f = beta * v[i]!;
      if (f === 0) continue;
      const row = (base + i) * n;
      for (let j = base; j < n; j++) M[row + j] -= f * w[j]!;
    }
  }
  return transpose64({ rows: n, cols: n, data: M }).data;
}

/**
 * Implicit QL on the tridiagonal (diag, off; both overwritten), accumulating the rotations into the
 * rows of `rows` (n x n, row j = current vector j) when given. Eigenvalues are left in `diag`,
 * unsorted.
 */
export function tridiagonalQl(diag: Float64Array, off: Float64Array, rows: Float64Array | null): void {
  const n = diag.length;
  const eps = 2 ** -52;
  let f = 0;
  let tst1 = 0;
  for (let l = 0; l < n; l++) {
    tst1 = Math.max(tst1, Math.abs(diag[l]!) + Math.abs(off[l]!));
    let m = l;
    while (m < n - 1 && Math.abs(off[m]!) > eps * tst1) m++;
    if (m > l) {
      let iterations = 0;
      do {
        if (++iterations > 60) {
          throw new AttuneError(
            `symmetricEigen: the QL iteration did not converge for eigenvalue ${l} of ${n} (is the matrix finite?)`,
          );
        }
        let g = diag[l]!;
        let p = (diag[l + 1]! - g) / (2 * off[l]!);
        let r = hypot2(p, 1);
        if (p < 0) r = -r;
        diag[l] = off[l]! / (p + r);
        diag[l + 1] = off[l]! * (p + r);
        const dl1 = diag[l + 1]!;
        let h = g - diag[l]!;
        for (let i = l + 2; i < n; i++) diag[i] -= h;
        f += h;
        p = diag[m]!;
        let c = 1;
        let c2 = c;
        let c3 = c;
        const el1 = off[l + 1]!;
        let s = 0;
        let s2 = 0;
        for (let i = m - 1; i >= l; i--) {
          c3 = c2;
          c2 = c;
          s2 = s;
          g = c * off[i]!;
          h = c * p;
          r = hypot2(p, off[i]!);
          off[i + 1] = s * r;
          s = off[i]! / r;
          c = p / r;
          p = c * diag[i]! - s * g;
          diag[i + 1] = h + s * (c * g + s * diag[i]!);
          if (rows) {
            const a = i * n;
            const b = (i + 1) * n;
            for (let k = 0; k < n; k++) {
              const x = rows[b + k]!;
              const y = rows[a + k]!;
              rows[b + k] = s * y + c * x;
              rows[a + k] = c * y - s * x;
            }
          }
        }
        p = (-s * s2 * c3 * el1 * off[l]!) / dl1;
        off[l] = s * p;
        diag[l] = c * p;
      } while (Math.abs(off[l]!) > eps * tst1);
    }
    diag[l] = diag[l]! + f;
    off[l] = 0;
  }
}

/** The symmetric part (A + A^T) / 2 of the square `a` as a fresh buffer; throws on bad input. */
export function symmetricPart(a: Matrix64): Float64Array {
  const n = a.rows;
  if (a.cols !== n) throw new RangeError(`symmetricEigen: the matrix is ${a.rows} x ${a.cols}, not square`);
  const work = new Float64Array(n * n);
  for (let i = 0; i < n; i++) {
    for (let j = 0; j < n; j++) {
      const x = a.data[i * n + j]!;
      const y = a.data[j * n + i]!;
      if (!Number.isFinite(x)) {
        throw new AttuneError(`symmetricEigen: entry (${i}, ${j}) is ${x}; the matrix must be finite`);
      }
      work[i * n + j] = 0.5 * (x + y);
    }
  }
  return work;
}

/**
 * Eigenvalues (and eigenvector rows: row j is the unit eigenvector of values[j]) of the symmetric
 * part (A + A^T) / 2 of the square `a`, in the requested order. The row layout is what the SVD
 * uses internally; `symmetricEigen` returns the usual column layout.
 */
export function symmetricEigenRows(
  a: Matrix64,
  options: SymmetricEigenOptions = {},
): { values: Float64Array; rows: Float64Array | null } {
  const n = a.rows;
  const wantVectors = options.vectors ?? true;
  const order = options.order ?? 'ascending';
  const work = symmetricPart(a);
  if (n === 0) return { values: new Float64Array(0), rows: wantVectors ? new Float64Array(0) : null };
  const { diag, off, vectors, betas } = tridiagonalize(work, n);
  const rows = wantVectors ? reductionFactorRows(n, vectors, betas) : null;
  tridiagonalQl(diag, off, rows);
  const index = Array.from({ length: n }, (_, i) => i);
  index.sort((i, j) => (order === 'ascending' ? diag[i]! - diag[j]! : diag[j]! - diag[i]!) || i - j);
  const values = Float64Array.from(index, (i) => diag[i]!);
  if (!rows) return { values, rows: null };
  const sorted = new Float64Array(n * n);
  index.forEach((from, to) => {
    sorted.set(rows.subarray(from * n, from * n + n), to * n);
  });
  return { values, rows: sorted };
}

/**
 * Symmetric eigendecomposition A = V diag(values) V^T of the symmetric part (A + A^T) / 2 of the
 * square `a` (see the file comment for the method and its cost). Eigenvalues come in ascending
 * order unless `order: 'descending'`; `vectors: false` skips the eigenvectors. Throws a RangeError
 * for a non-square matrix and an AttuneError for non-finite entries.
 */
export function symmetricEigen(a: Matrix64, options: SymmetricEigenOptions = {}): SymmetricEigenResult {
  const { values, rows } = symmetricEigenRows(a, options);
  const n = a.rows;
  return { values, vectors: rows ? transpose64({ rows: n, cols: n, data: rows }) : null };
}
