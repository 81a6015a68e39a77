/**
 * A few eigenvectors, or the left singular vectors alone, for less than a full decomposition.
 *
 * `topSymmetricEigen(a, k)`: the k largest eigenpairs of a symmetric matrix. Householder
 * tridiagonalisation (as `symmetricEigen`), all eigenvalues by implicit QL without vectors (O(n^2)),
 * then each wanted eigenvector by inverse iteration on the tridiagonal (LU with partial pivoting,
 * O(n) per solve; vectors of close eigenvalues are re-orthogonalised, as LAPACK's dstein) and one
 * back-transformation through the reflectors (O(n^2) per vector). About 3x cheaper than the full
 * decomposition with vectors.
 *
 * `leftSingularVectors(a, {count})`: U (and s) of A without V, from the eigenvectors of the Gram
 * matrix A A^T when A is wide or square (all of them, or the top `count`); a tall A (and any
 * request that needs more care) goes through `svd`. Singular vectors from the Gram matrix are
 * orthonormal to working precision and accurate to about eps * s_1^2 / gap in angle — ample for
 * comparing directions (intruder dimensions) — and the singular values, square roots of the Gram
 * eigenvalues, to about sqrt(eps) * s_1 for the small ones; use `svd` when V or accurate small
 * singular values are needed.
 */
import { Rng } from '../rng.ts';
import { symmetricEigenRows, symmetricPart, tridiagonalize, tridiagonalQl } from './eigen.ts';
import { dotRange, type Matrix64, matmul64, rowGram64, transpose64 } from './matrix.ts';
import { svd } from './svd.ts';

/** The k largest eigenvalues (descending) and their unit eigenvectors (n x k columns). */
export interface TopEigen {
  values: Float64Array;
  vectors: Matrix64;
}

/**
 * Solve (T - shift I) x = y in place (y becomes x) for the symmetric tridiagonal T (diag, off),
 * by Gaussian elimination with partial pivoting; tiny pivots are replaced by `tiny`.
 */
function solveShiftedTridiagonal(
  diag: Float64Array,
  off: Float64Array,
  shift: number,
  tiny: number,
  y: Float64Array,
): void {
  const n = diag.length;
  const u0 = new Float64Array(n);
  const u1 = new Float64Array(n);
  const u2 = new Float64Array(n);
  const mult = new Float64Array(n);
  const swapped = new Uint8Array(n);
  let p = diag[0]! - shift;
  let q = n > 1 ? off[0]! : 0;
  for (let i = 0; i < n - 1; i++) {
    const below = off[i]!;
    const next = diag[i + 1]! - shift;
    const nextUp = i + 1 < n - 1 ? off[i + 1]! : 0;
    if (Math.abs(p) >= Math.abs(below)) {
      if (p === 0) p = tiny;
      const l = below / p;
      u0[i] = p;
      u1[i] = q;
      u2[i] = 0;
      mult[i] = l;
      p = next - l * q;
      q = nextUp;
    } else {
      const l = p / below;
      u0[i] = below;
      u1[i] = next;
      u2[i] = nextUp;
      mult[i] = l;
      swapped[i] = 1;
      p = q - l * next;
      q = -l * nextUp;
    }
  }
  u0[n - 1] = p === 0 ? tiny : p;
  for (let i = 0; i < n - 1; i++) {
    if (swapped[i]) {
      const top = y[i]!;
      y[i] = y[i + 1]!;
      y[i + 1] = top - mult[i]! * y[i]!;
    } else {
      y[i + 1] = y[i + 1]! - mult[i]! * y[i]!;
    }
  }
  for (let i = n - 1; i >= 0; i--) {
    let v = y[i]!;
    if (i + 1 < n) v -= u1[i]! * y[i + 1]!;
    if (i + 2 < n) v -= u2[i]! * y[i + 2]!;
    const pivot = Math.abs(u0[i]!) < tiny ? (u0[i]! < 0 ? -tiny : tiny) : u0[i]!;
    y[i] = v / pivot;
  }
}

/**
 * The `k` largest eigenvalues (descending) and eigenvectors of the symmetric part of the square
 * `a` (see the file comment). k is capped at n.
 */
export function topSymmetricEigen(a: Matrix64, k: number): TopEigen {
  const n = a.rows;
  if (!Number.isInteger(k) || k < 1) throw new RangeError(`topSymmetricEigen: k must be >= 1, found ${k}`);
  const count = Math.min(k, n);
  const work = symmetricPart(a);
  if (n === 0)
    return { values: new Float64Array(0), vectors: { rows: 0, cols: 0, data: new Float64Array(0) } };
  const t = tridiagonalize(work, n);
  const diag = Float64Array.from(t.diag);
  const off = Float64Array.from(t.off);
  tridiagonalQl(diag, off, null);
  const values = Float64Array.from(diag).sort().reverse().subarray(0, count);
  let norm = 0;
  for (let i = 0; i < n; i++) norm = Math.max(norm, Math.abs(t.diag[i]!) + 2 * Math.abs(t.off[i]!));
  const eps = 2 ** -52;
  const tiny = Math.max(norm, Number.MIN_VALUE) * eps;
  const clusterGap = 1e-3 * norm;
  const rng = new Rng(0x5eed);
  const found: Float64Array[] = []; // eigenvectors of T
  for (let j = 0; j < count; j++) {
    // repeated eigenvalues: nudge the shift so the solves differ (as dstein)
    let shift = values[j]!;
    if (j > 0 && Math.abs(shift - values[j - 1]!) < 10 * tiny) shift = values[j - 1]! - 10 * tiny * j;
    const cluster: Float64Array[] = [];
    for (let i = 0; i < j; i++) if (Math.abs(values[i]! - values[j]!) < clusterGap) cluster.push(found[i]!);
    const x = Float64Array.from({ length: n }, () => rng.uniform() - 0.5);
    for (let iteration = 0; iteration < 4; iteration++) {
      solveShiftedTridiagonal(t.diag, t.off, shift, tiny, x);
      for (const other of cluster) {
        const d = dotRange(x, 0, other, 0, n);
        for (let i = 0; i < n; i++) x[i] = x[i]! - d * other[i]!;
      }
      let scale = 0;
      for (let i = 0; i < n; i++) scale = Math.max(scale, Math.abs(x[i]!));
      if (scale === 0) x[j % n] = 1;
      else for (let i = 0; i < n; i++) x[i] = x[i]! / scale;
      const length = Math.sqrt(dotRange(x, 0, x, 0, n));
      for (let i = 0; i < n; i++) x[i] = x[i]! / length;
    }
    found.push(x);
  }
  // back to A's basis: u = Q x = H_0 (H_1 (... H_{n-3} x))
  const vectors: Matrix64 = { rows: n, cols: count, data: new Float64Array(n * count) };
  found.forEach((x, j) => {
    const u = Float64Array.from(x);
    for (let r = t.vectors.length - 1; r >= 0; r--) {
      const beta = t.betas[r]!;
      if (beta === 0) continue;
      const v = t.vectors[r]!;
      const base = r + 1;
      let d = 0;
      for (let i = 0; i < v.length; i++) d += v[i]! * u[base + i]!;
      const f = beta * d;
      for (let i = 0; i < v.length; i++) u[base + i] = u[base + i]! - f * v[i]!;
    }
    for (let i = 0; i < n; i++) vectors.data[i * count + j] = u[i]!;
  });
  return { values: Float64Array.from(values), vectors };
}

/**
 * Top `count` left singular vectors of a tall `a` from the top eigenvectors V_k of A^T A:
 * U_k = A V_k, orthonormalised (modified Gram-Schmidt). Null when a wanted singular value is below
 * what the Gram matrix resolves (the direction would be noise): the caller then uses the full SVD.
 */
function topTallLeft(a: Matrix64, count: number): { u: Matrix64; s: Float64Array } | null {
  const m = a.rows;
  const top = topSymmetricEigen(matmul64(a, a, { transA: true }), count);
  const s = Float64Array.from(top.values, (l) => Math.sqrt(Math.max(l, 0)));
  // eigenvalues of the Gram matrix carry errors of about eps * s_1^2, so singular values below
  // about sqrt(eps) * s_1 are indistinguishable from zero here
  const floor = 10 * (s[0] ?? 0) * Math.sqrt(Math.max(m, a.cols) * 2 ** -52);
  if (count > 0 && !(s[count - 1]! > floor)) return null;
  const ut = transpose64(matmul64(a, top.vectors)).data;
  for (let j = 0; j < count; j++) {
    for (let i = 0; i < j; i++) {
      const d = dotRange(ut, j * m, ut, i * m, m);
      for (let x = 0; x < m; x++) ut[j * m + x] = ut[j * m + x]! - d * ut[i * m + x]!;
    }
    const length = Math.sqrt(dotRange(ut, j * m, ut, j * m, m));
    for (let x = 0; x < m; x++) ut[j * m + x] = ut[j * m + x]! / length;
  }
  return { u: transpose64({ rows: count, cols: m, data: ut }), s };
}

function firstColumns(a: Matrix64, k: number): Matrix64 {
  if (k === a.cols) return a;
  const out = new Float64Array(a.rows * k);
  for (let i = 0; i < a.rows; i++) out.set(a.data.subarray(i * a.cols, i * a.cols + k), i * k);
  return { rows: a.rows, cols: k, data: out };
}

/** Options of `leftSingularVectors`. */
export interface LeftSingularOptions {
  /** Only the top `count` vectors (default: all min(m, n)). */
  count?: number;
}

/**
 * The left singular vectors U (m x r, columns, in decreasing order of singular value) and the
 * singular values s of `a` (m x n), without V: r = min(m, n), or `count` when given. See the file
 * comment for the method and its accuracy.
 */
export function leftSingularVectors(
  a: Matrix64,
  options: LeftSingularOptions = {},
): { u: Matrix64; s: Float64Array } {
  const m = a.rows;
  const n = a.cols;
  const full = Math.min(m, n);
  const count = Math.min(options.count ?? full, full);
  if (!Number.isInteger(count) || count < 0) {
    throw new RangeError(`leftSingularVectors: count must be an integer >= 0, found ${options.count}`);
  }
  if (m > n) {
    if (count < full) {
      const top = topTallLeft(a, count);
      if (top) return top;
    }
    const r = svd(a, { vectors: 'left' });
    return { u: firstColumns(r.u!, count), s: r.s.slice(0, count) };
  }
  const gram = rowGram64(a);
  if (count < full) {
    const top = topSymmetricEigen(gram, count);
    return { u: top.vectors, s: Float64Array.from(top.values, (l) => Math.sqrt(Math.max(l, 0))) };
  }
  const eig = symmetricEigenRows(gram, { order: 'descending' });
  return {
    u: firstColumns(transpose64({ rows: m, cols: m, data: eig.rows! }), count),
    s: Float64Array.from(eig.values.subarray(0, count), (l) => Math.sqrt(Math.max(l, 0))),
  };
}
