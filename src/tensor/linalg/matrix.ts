/**
 * Dense f64 matrices for linear algebra: a row-major Float64Array with explicit dimensions
 * (`Matrix64`), the handful of products the decompositions need, and conversions from and to
 * Tensors. Everything here is plain TypeScript on the CPU, independent of the backend: it serves
 * analysis and initialisation code (SVDs of weight matrices), not training hot paths.
 */
import { Tensor } from '../tensor.ts';

/** A dense row-major f64 matrix: element (i, j) is `data[i * cols + j]`. */
export interface Matrix64 {
  readonly rows: number;
  readonly cols: number;
  readonly data: Float64Array;
}

function checkDims(rows: number, cols: number, where: string): void {
  if (!Number.isSafeInteger(rows) || rows < 0 || !Number.isSafeInteger(cols) || cols < 0) {
    throw new RangeError(`${where}: dimensions must be non-negative integers, found ${rows} x ${cols}`);
  }
}

/**
 * A `rows` x `cols` matrix over `data` (row-major; not copied), or zero-filled when `data` is
 * omitted. Throws a RangeError when `data` has the wrong length.
 */
export function matrix64(rows: number, cols: number, data?: Float64Array | ArrayLike<number>): Matrix64 {
  checkDims(rows, cols, 'matrix64');
  if (data === undefined) return { rows, cols, data: new Float64Array(rows * cols) };
  if (data.length !== rows * cols) {
    throw new RangeError(`matrix64: ${rows} x ${cols} needs ${rows * cols} values, found ${data.length}`);
  }
  return { rows, cols, data: data instanceof Float64Array ? data : Float64Array.from(data) };
}

/** The n x n identity. */
export function identity64(n: number): Matrix64 {
  const m = matrix64(n, n);
  for (let i = 0; i < n; i++) m.data[i * n + i] = 1;
  return m;
}

/** A copy of `a` (fresh buffer). */
export function cloneMatrix64(a: Matrix64): Matrix64 {
  return { rows: a.rows, cols: a.cols, data: Float64Array.from(a.data) };
}

/** A^T as a new matrix. */
export function transpose64(a: Matrix64): Matrix64 {
  const { rows, cols } = a;
  const src = a.data;
  const out = new Float64Array(rows * cols);
  // blocked so both sides stay in cache for large matrices
  const block = 32;
  for (let i0 = 0; i0 < rows; i0 += block) {
    const i1 = Math.min(rows, i0 + block);
    for (let j0 = 0; j0 < cols; j0 += block) {
      const j1 = Math.min(cols, j0 + block);
      for (let i = i0; i < i1; i++) {
        const row = i * cols;
        for (let j = j0; j < j1; j++) out[j * rows + i] = src[row + j]!;
      }
    }
  }
  return { rows: cols, cols: rows, data: out };
}

/** Options of `matmul64`. */
export interface Matmul64Options {
  /** Use A^T instead of A. */
  transA?: boolean;
  /** Use B^T instead of B. */
  transB?: boolean;
}

/**
 * The product op(A) op(B) with op = identity or transpose (`transA`, `transB`), in f64. Loops are
 * ordered so the innermost one runs over contiguous memory. Throws a RangeError on a dimension
 * mismatch.
 */
export function matmul64(a: Matrix64, b: Matrix64, options: Matmul64Options = {}): Matrix64 {
  const transA = options.transA ?? false;
  const transB = options.transB ?? false;
  const m = transA ? a.cols : a.rows;
  const inner = transA ? a.rows : a.cols;
  const innerB = transB ? b.cols : b.rows;
  const n = transB ? b.rows : b.cols;
  if (inner !== innerB) {
    throw new RangeError(
      `matmul64: op(A) is ${m} x ${inner} but op(B) is ${innerB} x ${n} (transA ${transA}, transB ${transB})`,
    );
  }
  const C = new Float64Array(m * n);
  if (!transB) {
    // op(A) row-major: A itself, or A^T materialised once
    const left = transA ? transpose64(a).data : a.data;
    gemmRowsAccumulate(C, left, b.data, m, inner, n);
    return { rows: m, cols: n, data: C };
  }
  // transB: C[i, j] = dot(op(A)[i, :], B[j, :]) (contiguous dot products)
  const left = transA ? transpose64(a).data : a.data;
  gemmDots(C, left, b.data, m, inner, n, false);
  return { rows: m, cols: n, data: C };
}

/**
 * C (m x n) += L (m x inner) R (inner x n), all row-major: blocks of R's rows are kept in cache
 * while every row of C accumulates four of them per pass.
 */
function gemmRowsAccumulate(
  C: Float64Array,
  L: Float64Array,
  R: Float64Array,
  m: number,
  inner: number,
  n: number,
): void {
  const blockRows = Math.max(4, Math.min(inner, Math.floor(32768 / Math.max(n, 1)) * 4));
  for (let k0 = 0; k0 < inner; k0 += blockRows) {
    const k1 = Math.min(inner, k0 + blockRows);
    for (let i = 0; i < m; i++) {
      const ci = i * n;
      const li = i * inner;
      let k = k0;
      for (; k + 3 < k1; k += 4) {
        const a0 = L[li + k]!;
        const a1 = L[li + k + 1]!;
        const a2 = L[li + k + 2]!;
        const a3 = L[li + k + 3]!;
        if (a0 === 0 && a1 === 0 && a2 === 0 && a3 === 0) continue;
        const r0 = k * n;
        const r1 = r0 + n;
        const r2 = r1 + n;
        const r3 = r2 + n;
        for (let j = 0; j < n; j++) {
          C[ci + j] += a0 * R[r0 + j]! + a1 * R[r1 + j]! + a2 * R[r2 + j]! + a3 * R[r3 + j]!;
        }
      }
      for (; k < k1; k++) {
        const a0 = L[li + k]!;
        if (a0 === 0) continue;
        const r0 = k * n;
        for (let j = 0; j < n; j++) C[ci + j] += a0 * R[r0 + j]!;
      }
    }
  }
}

/**
 * C[i, j] = dot(L row i, R row j) for L (m x inner), R (n x inner), all row-major; with
 * `symmetric` (L === R, m === n) only j <= i is computed and mirrored. Blocks of R's rows stay in
 * cache; four dot products share each load of L's row.
 */
function gemmDots(
  C: Float64Array,
  L: Float64Array,
  R: Float64Array,
  m: number,
  inner: number,
  n: number,
  symmetric: boolean,
): void {
  const blockRows = Math.max(4, Math.floor(16384 / Math.max(inner, 1)) * 4);
  for (let j0 = 0; j0 < n; j0 += blockRows) {
    const j1 = Math.min(n, j0 + blockRows);
    for (let i = symmetric ? j0 : 0; i < m; i++) {
      const li = i * inner;
      const jEnd = symmetric ? Math.min(j1, i + 1) : j1;
      let j = j0;
      for (; j + 3 < jEnd; j += 4) {
        const r0 = j * inner;
        const r1 = r0 + inner;
        const r2 = r1 + inner;
        const r3 = r2 + inner;
        let s0 = 0;
        let s1 = 0;
        let s2 = 0;
        let s3 = 0;
        for (let k = 0; k < inner; k++) {
          const x = L[li + k]!;
          s0 += x * R[r0 + k]!;
          s1 += x * R[r1 + k]!;
          s2 += x * R[r2 + k]!;
          s3 += x * R[r3 + k]!;
        }
        C[i * n + j] = s0;
        C[i * n + j + 1] = s1;
        C[i * n + j + 2] = s2;
        C[i * n + j + 3] = s3;
      }
      for (; j < jEnd; j++) C[i * n + j] = dotRange(L, li, R, j * inner, inner);
    }
  }
  if (symmetric) {
    for (let i = 0; i < m; i++) for (let j = 0; j < i; j++) C[j * n + i] = C[i * n + j]!;
  }
}

/** sum_k x[xo + k] * y[yo + k] for k < n (4-way unrolled; internal helper shared by the solvers). */
export function dotRange(x: Float64Array, xo: number, y: Float64Array, yo: number, n: number): number {
  let s0 = 0;
  let s1 = 0;
  let s2 = 0;
  let s3 = 0;
  let k = 0;
  for (; k + 3 < n; k += 4) {
    s0 += x[xo + k]! * y[yo + k]!;
    s1 += x[xo + k + 1]! * y[yo + k + 1]!;
    s2 += x[xo + k + 2]! * y[yo + k + 2]!;
    s3 += x[xo + k + 3]! * y[yo + k + 3]!;
  }
  for (; k < n; k++) s0 += x[xo + k]! * y[yo + k]!;
  return s0 + s1 + (s2 + s3);
}

/**
 * The Gram matrix of the rows, A A^T (`rows` x `rows`, symmetric: each dot product computed once).
 */
export function rowGram64(a: Matrix64): Matrix64 {
  const G = new Float64Array(a.rows * a.rows);
  gemmDots(G, a.data, a.data, a.rows, a.cols, a.rows, true);
  return { rows: a.rows, cols: a.rows, data: G };
}

/** The Frobenius norm sqrt(sum a_ij^2), scaled to avoid overflow. */
export function frobeniusNorm64(a: Matrix64): number {
  let scale = 0;
  for (const v of a.data) scale = Math.max(scale, Math.abs(v));
  if (scale === 0 || !Number.isFinite(scale)) return scale;
  let sum = 0;
  for (const v of a.data) {
    const x = v / scale;
    sum += x * x;
  }
  return scale * Math.sqrt(sum);
}

/** Columns `start` (inclusive) to `end` (exclusive) of `a`, copied. */
export function columns64(a: Matrix64, start: number, end: number): Matrix64 {
  if (!(start >= 0 && end <= a.cols && start <= end)) {
    throw new RangeError(`columns64: range [${start}, ${end}) is outside the ${a.cols} columns`);
  }
  const width = end - start;
  const out = new Float64Array(a.rows * width);
  for (let i = 0; i < a.rows; i++) out.set(a.data.subarray(i * a.cols + start, i * a.cols + end), i * width);
  return { rows: a.rows, cols: width, data: out };
}

/**
 * max |Q^T Q - I| over the entries: how far the columns of `q` are from orthonormal (0 for an
 * exactly orthonormal set). Used by tests and as a diagnostic.
 */
export function orthogonalityError64(q: Matrix64): number {
  const g = matmul64(q, q, { transA: true });
  let worst = 0;
  for (let i = 0; i < g.rows; i++) {
    for (let j = 0; j < g.cols; j++) {
      worst = Math.max(worst, Math.abs(g.data[i * g.cols + j]! - (i === j ? 1 : 0)));
    }
  }
  return worst;
}

/** ||A - B||_F / ||A||_F (||A - B||_F when A is zero). */
export function relativeError64(a: Matrix64, b: Matrix64): number {
  if (a.rows !== b.rows || a.cols !== b.cols) {
    throw new RangeError(`relativeError64: ${a.rows} x ${a.cols} vs ${b.rows} x ${b.cols}`);
  }
  const diff = new Float64Array(a.data.length);
  for (let i = 0; i < diff.length; i++) diff[i] = a.data[i]! - b.data[i]!;
  const num = frobeniusNorm64({ rows: a.rows, cols: a.cols, data: diff });
  const den = frobeniusNorm64(a);
  return den === 0 ? num : num / den;
}

/**
 * A 2-D float tensor (f32, bf16 or f64) as a new f64 matrix (bf16 widened exactly). Throws a
 * RangeError for another rank and a TypeError for an integer tensor.
 */
export function tensorToMatrix64(t: Tensor): Matrix64 {
  if (t.rank !== 2) throw new RangeError(`tensorToMatrix64: ${t.describe()} is not 2-D`);
  if (t.dtype === 'i32') throw new TypeError(`tensorToMatrix64: ${t.describe()} is not a float tensor`);
  const [rows, cols] = t.shape as [number, number];
  if (t.dtype === 'bf16') return matrix64(rows, cols, Float64Array.from(t.toArray()));
  return matrix64(rows, cols, Float64Array.from(t.data as Float32Array | Float64Array));
}

/**
 * A matrix as a new untracked 2-D tensor: f64 (default, the same values) or f32 (rounded to
 * nearest).
 */
export function matrix64ToTensor(a: Matrix64, dtype: 'f32' | 'f64' = 'f64'): Tensor {
  const data = dtype === 'f64' ? Float64Array.from(a.data) : Float32Array.from(a.data);
  return Tensor.wrap(data, [a.rows, a.cols], { track: false });
}
