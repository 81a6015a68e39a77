/** Random and structured matrices shared by the linalg tests. */
import { type Matrix64, matmul64, matrix64, qr, Rng } from '../../../../src/tensor/index.ts';

/** An m x n matrix of standard normal entries. */
export function randomMatrix(m: number, n: number, seed: number): Matrix64 {
  const rng = new Rng(seed);
  const a = matrix64(m, n);
  for (let i = 0; i < a.data.length; i++) a.data[i] = rng.normal();
  return a;
}

/** A random m x k matrix with orthonormal columns (k <= m). */
export function randomOrthonormal(m: number, k: number, seed: number): Matrix64 {
  return qr(randomMatrix(m, k, seed)).q;
}

/** U diag(s) V^T for random orthonormal U (m x k), V (n x k), k = s.length. */
export function withSingularValues(m: number, n: number, s: number[], seed: number): Matrix64 {
  const k = s.length;
  const u = randomOrthonormal(m, k, seed);
  const v = randomOrthonormal(n, k, seed + 1);
  for (let i = 0; i < m; i++) for (let j = 0; j < k; j++) u.data[i * k + j]! *= s[j]!;
  return matmul64(u, v, { transB: true });
}

/** max |a_i - b_i|. */
export function maxAbsDiff(a: ArrayLike<number>, b: ArrayLike<number>): number {
  if (a.length !== b.length) throw new Error(`lengths differ: ${a.length} vs ${b.length}`);
  let d = 0;
  for (let i = 0; i < a.length; i++) d = Math.max(d, Math.abs(a[i]! - b[i]!));
  return d;
}

/** Whether every entry below the diagonal is exactly zero. */
export function isUpperTriangular(r: Matrix64): boolean {
  for (let i = 0; i < r.rows; i++)
    for (let j = 0; j < Math.min(i, r.cols); j++) if (r.data[i * r.cols + j] !== 0) return false;
  return true;
}
