/**
 * Full (all min(m, n) singular triplets) SVD of a dense f64 matrix, A = U diag(s) V^T.
 *
 * Method: one-sided Jacobi (Hestenes) preconditioned by the eigenvectors of the small Gram
 * matrix. For A m x n with m <= n (a wide A is handled as is, a tall one through A^T):
 *   1. G = A A^T (m x m) and its symmetric eigendecomposition G = U0 diag(l) U0^T;
 *   2. B = U0^T A, whose rows are already nearly orthogonal (row i is about s_i v_i^T);
 *   3. one-sided Jacobi sweeps on the rows of B, applying every rotation to the rows of U0^T too,
 *      until all pairs are orthogonal to tol = sqrt(n) * eps (usually 2-3 sweeps, since the
 *      start is nearly converged);
 *   4. s_i = ||b_i||, v_i = b_i / s_i, sorted by decreasing s.
 * Since B = U^T A holds throughout (U orthogonal, rotations applied to both sides), the
 * reconstruction U diag(s) V^T is backward stable like any Jacobi SVD, U and V are orthonormal to
 * working precision, and the Jacobi sweeps repair what the Gram matrix alone would lose (its
 * eigenvectors are only accurate to about eps * s_1^2 / gap, and small singular values taken as
 * sqrt(l) only to about sqrt(eps) * s_1). The trade-off against Golub-Kahan-Reinsch: the same
 * backward error, but no guarantee of high relative accuracy for singular values far below
 * eps * s_1 (which weight matrices do not have), in exchange for inner loops that are all
 * contiguous dot products and row rotations, fast in plain JS: a 576 x 1536 matrix takes a few
 * seconds. Singular values at rounding level (<= max(m, n) * eps * s_1) are reported as computed,
 * but their right singular vectors are completed to an orthonormal set rather than taken from
 * rounding noise.
 */
import { symmetricEigenRows } from './eigen.ts';
import { dotRange, type Matrix64, matmul64, rowGram64, transpose64 } from './matrix.ts';
import { orthonormalComplement } from './qr.ts';

/** Which singular vectors `svd` computes. */
export type SvdVectors = 'both' | 'left' | 'right' | 'none';

/** Options of `svd`. */
export interface SvdOptions {
  /** Which vectors to compute (default 'both'). 'none' returns singular values from the Gram eigenvalues only (fast; small values accurate to about sqrt(eps) * s_1). */
  vectors?: SvdVectors;
  /**
   * Complete U to m x m and V to n x n (numpy's full_matrices=True). Default false: U is
   * m x k and V is n x k with k = min(m, n), every vector that has a singular value.
   */
  fullMatrices?: boolean;
  /** Largest number of Jacobi sweeps (default 30). */
  maxSweeps?: number;
}

/** A = U diag(s) V^T. */
export interface SvdResult {
  /** Singular values, non-negative, in decreasing order (length min(m, n)). */
  s: Float64Array;
  /** Left singular vectors as columns (null unless asked for). */
  u: Matrix64 | null;
  /** Right singular vectors as columns (null unless asked for). */
  v: Matrix64 | null;
  /** Jacobi sweeps run (0 when no vectors were computed). */
  sweeps: number;
}

const EPS = 2 ** -52;

/** Singular values at or below this are rounding noise of a k x n problem with largest value sMax. */
function negligibleNorm(sMax: number, k: number, n: number): number {
  return sMax * Math.max(k, n) * EPS;
}

/** Rows `ut` (k x k) and `bt` (k x n) after Jacobi: rows of bt orthogonal, bt = ut A. */
function jacobiRows(ut: Float64Array, bt: Float64Array, k: number, n: number, maxSweeps: number): number {
  const tol = Math.sqrt(Math.max(n, 1)) * EPS;
  const norms = new Float64Array(k);
  let sweep = 0;
  for (; sweep < maxSweeps; sweep++) {
    let largest = 0;
    for (let i = 0; i < k; i++) {
      norms[i] = dotRange(bt, i * n, bt, i * n, n);
      largest = Math.max(largest, norms[i]!);
    }
    // rows at rounding level carry no direction: rotating them only shrinks them further
    const floor = negligibleNorm(Math.sqrt(largest), k, n) ** 2;
    let rotated = 0;
    for (let i = 0; i < k - 1; i++) {
      const bi = i * n;
      const ui = i * k;
      for (let j = i + 1; j < k; j++) {
        const alpha = norms[i]!;
        const beta = norms[j]!;
        if (alpha <= floor || beta <= floor) continue;
        const bj = j * n;
        const gamma = dotRange(bt, bi, bt, bj, n);
        if (Math.abs(gamma) <= tol * Math.sqrt(alpha) * Math.sqrt(beta)) continue;
        rotated++;
        const zeta = (beta - alpha) / (2 * gamma);
        const t = (zeta >= 0 ? 1 : -1) / (Math.abs(zeta) + Math.sqrt(1 + zeta * zeta));
        const c = 1 / Math.sqrt(1 + t * t);
        const s = c * t;
        for (let x = 0; x < n; x++) {
          const p = bt[bi + x]!;
          const q = bt[bj + x]!;
          bt[bi + x] = c * p - s * q;
          bt[bj + x] = s * p + c * q;
        }
        const uj = j * k;
        for (let x = 0; x < k; x++) {
          const p = ut[ui + x]!;
          const q = ut[uj + x]!;
          ut[ui + x] = c * p - s * q;
          ut[uj + x] = s * p + c * q;
        }
        norms[i] = alpha - t * gamma;
        norms[j] = beta + t * gamma;
      }
    }
    if (rotated === 0) return sweep + 1;
  }
  return sweep;
}

/**
 * Replace the rows of `rows` (count x len) listed in `missing` by unit vectors orthogonal to every
 * other row and to each other (classical Gram-Schmidt, twice, on coordinate vectors).
 */
function completeRows(rows: Float64Array, count: number, len: number, missing: number[]): void {
  if (missing.length === 0) return;
  const isMissing = new Set(missing);
  const basis = Array.from({ length: count }, (_, i) => i).filter((i) => !isMissing.has(i));
  const candidate = new Float64Array(len);
  let next = 0;
  for (const target of missing) {
    for (;;) {
      if (next >= len) throw new Error('svd: internal: could not complete the singular vectors');
      candidate.fill(0);
      candidate[next++] = 1;
      for (let pass = 0; pass < 2; pass++) {
        for (const b of basis) {
          const d = dotRange(candidate, 0, rows, b * len, len);
          if (d === 0) continue;
          for (let x = 0; x < len; x++) candidate[x] -= d * rows[b * len + x]!;
        }
      }
      const norm = Math.sqrt(dotRange(candidate, 0, candidate, 0, len));
      if (norm < 0.5) continue; // nearly inside the span already: try the next coordinate
      for (let x = 0; x < len; x++) rows[target * len + x] = candidate[x]! / norm;
      basis.push(target);
      break;
    }
  }
}

/** SVD of a wide-or-square matrix (rows <= cols), returning U^T and V^T as row blocks. */
function svdWide(
  a: Matrix64,
  maxSweeps: number,
): { s: Float64Array; ut: Float64Array; vt: Float64Array; sweeps: number } {
  const k = a.rows;
  const n = a.cols;
  const eig = symmetricEigenRows(rowGram64(a), { order: 'descending' });
  const ut = eig.rows!;
  const bt = matmul64({ rows: k, cols: k, data: ut }, a).data;
  const sweeps = jacobiRows(ut, bt, k, n, maxSweeps);
  const sRaw = new Float64Array(k);
  for (let i = 0; i < k; i++) sRaw[i] = Math.sqrt(dotRange(bt, i * n, bt, i * n, n));
  const order = Array.from({ length: k }, (_, i) => i).sort((i, j) => sRaw[j]! - sRaw[i]! || i - j);
  const s = new Float64Array(k);
  const uSorted = new Float64Array(k * k);
  const vt = new Float64Array(k * n);
  const sMax = k > 0 ? sRaw[order[0]!]! : 0;
  const missing: number[] = [];
  order.forEach((from, to) => {
    const sigma = sRaw[from]!;
    uSorted.set(ut.subarray(from * k, from * k + k), to * k);
    s[to] = sigma;
    // a row of B at rounding level (a numerically zero singular value) has no meaningful
    // direction: its v is completed to an orthonormal set below instead
    if (sigma === 0 || sigma <= negligibleNorm(sMax, k, n)) {
      missing.push(to);
      return;
    }
    const inv = 1 / sigma;
    for (let x = 0; x < n; x++) vt[to * n + x] = bt[from * n + x]! * inv;
  });
  completeRows(vt, k, n, missing);
  return { s, ut: uSorted, vt, sweeps };
}

/**
 * The SVD A = U diag(s) V^T of `a` (m x n): all min(m, n) singular values in decreasing order and
 * the singular vectors asked for (see the file comment for the method, its accuracy and its
 * cost). `fullMatrices` completes U and V to square orthogonal matrices.
 */
export function svd(a: Matrix64, options: SvdOptions = {}): SvdResult {
  const vectors = options.vectors ?? 'both';
  const full = options.fullMatrices ?? false;
  const maxSweeps = options.maxSweeps ?? 30;
  const m = a.rows;
  const n = a.cols;
  const tall = m > n;
  const wide = tall ? transpose64(a) : a;
  const k = Math.min(m, n);
  for (let i = 0; i < a.data.length; i++) {
    if (!Number.isFinite(a.data[i]!)) {
      throw new RangeError(
        `svd: entry (${Math.floor(i / n)}, ${i % n}) is ${a.data[i]}; the matrix must be finite`,
      );
    }
  }
  if (vectors === 'none') {
    const eig = symmetricEigenRows(rowGram64(wide), { order: 'descending', vectors: false });
    return {
      s: Float64Array.from(eig.values, (l) => Math.sqrt(Math.max(l, 0))),
      u: null,
      v: null,
      sweeps: 0,
    };
  }
  const { s, ut, vt, sweeps } = svdWide(wide, maxSweeps);
  // for the wide problem: left vectors are rows of ut (k x k), right vectors rows of vt (k x len)
  const len = wide.cols;
  const leftWide: Matrix64 = transpose64({ rows: k, cols: k, data: ut });
  let rightWide: Matrix64 = transpose64({ rows: k, cols: len, data: vt });
  if (full && len > k) rightWide = appendComplement(rightWide);
  const wantU = vectors === 'both' || vectors === 'left';
  const wantV = vectors === 'both' || vectors === 'right';
  const u = tall ? rightWide : leftWide;
  const v = tall ? leftWide : rightWide;
  return { s, u: wantU ? u : null, v: wantV ? v : null, sweeps };
}

/** [q, complement(q)]: q (len x k, orthonormal columns) extended to a len x len orthogonal matrix. */
function appendComplement(q: Matrix64): Matrix64 {
  const extra = orthonormalComplement(q);
  const len = q.rows;
  const out = new Float64Array(len * len);
  for (let i = 0; i < len; i++) {
    out.set(q.data.subarray(i * q.cols, (i + 1) * q.cols), i * len);
    out.set(extra.data.subarray(i * extra.cols, (i + 1) * extra.cols), i * len + q.cols);
  }
  return { rows: len, cols: len, data: out };
}

/** U diag(s) V^T (for checks): U m x k, V n x k, using the first k = s.length columns. */
export function svdReconstruct(u: Matrix64, s: Float64Array, v: Matrix64): Matrix64 {
  const k = s.length;
  const m = u.rows;
  const n = v.rows;
  const us = new Float64Array(m * k);
  for (let i = 0; i < m; i++) for (let j = 0; j < k; j++) us[i * k + j] = u.data[i * u.cols + j]! * s[j]!;
  const vk = new Float64Array(n * k);
  for (let i = 0; i < n; i++) for (let j = 0; j < k; j++) vk[i * k + j] = v.data[i * v.cols + j]!;
  return matmul64({ rows: m, cols: k, data: us }, { rows: n, cols: k, data: vk }, { transB: true });
}
