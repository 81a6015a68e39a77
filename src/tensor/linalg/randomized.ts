/**
 * Randomized truncated SVD (Halko, Martinsson & Tropp 2011, algorithms 4.4 and 5.1): the top `rank`
 * singular triplets of A from a Gaussian sketch Y = A Omega with `oversample` extra columns,
 * refined by `powerIterations` rounds of subspace iteration (Y = A (A^T Q)), re-orthonormalised
 * by QR at every step so small singular values are not lost to rounding. The small matrix
 * B = Q^T A is then decomposed exactly. Cost O(m n (rank + oversample) (2 q + 2)); the error of
 * the vectors falls like (s_{rank+oversample+1} / s_j)^(2q+1), so a slowly decaying spectrum needs
 * more power iterations. Seeded through Rng: the same seed gives the same result.
 */
import { Rng } from '../rng.ts';
import { type Matrix64, matmul64 } from './matrix.ts';
import { qr } from './qr.ts';
import { svd } from './svd.ts';

/** Options of `randomizedSvd`. */
export interface RandomizedSvdOptions {
  /** Extra sketch columns beyond the rank (default 10). */
  oversample?: number;
  /** Rounds of subspace (power) iteration (default 4). */
  powerIterations?: number;
  /** Seed of the Gaussian test matrix (default 0); ignored when `rng` is given. */
  seed?: number;
  /** Generator to draw the test matrix from. */
  rng?: Rng;
}

/** Top-`rank` truncated SVD: U m x r, s (r, decreasing), V n x r with r = min(rank, m, n). */
export interface TruncatedSvd {
  u: Matrix64;
  s: Float64Array;
  v: Matrix64;
}

/**
 * The top `rank` singular triplets of `a` by the randomized range finder with power iterations
 * (see the file comment). When rank + oversample reaches min(m, n) the exact `svd` is used.
 */
export function randomizedSvd(a: Matrix64, rank: number, options: RandomizedSvdOptions = {}): TruncatedSvd {
  const m = a.rows;
  const n = a.cols;
  if (!Number.isInteger(rank) || rank < 1)
    throw new RangeError(`randomizedSvd: rank must be >= 1, found ${rank}`);
  const oversample = options.oversample ?? 10;
  const powerIterations = options.powerIterations ?? 4;
  if (!Number.isInteger(oversample) || oversample < 0)
    throw new RangeError(`randomizedSvd: oversample must be an integer >= 0, found ${oversample}`);
  if (!Number.isInteger(powerIterations) || powerIterations < 0)
    throw new RangeError(`randomizedSvd: powerIterations must be an integer >= 0, found ${powerIterations}`);
  const k = Math.min(rank, m, n);
  const sketch = Math.min(k + oversample, m, n);
  if (sketch >= Math.min(m, n)) {
    const exact = svd(a);
    return {
      u: firstColumns(exact.u!, k),
      s: exact.s.slice(0, k),
      v: firstColumns(exact.v!, k),
    };
  }
  const rng = options.rng ?? new Rng(options.seed ?? 0);
  const omega: Matrix64 = { rows: n, cols: sketch, data: new Float64Array(n * sketch) };
  for (let i = 0; i < omega.data.length; i++) omega.data[i] = rng.normal();
  let q = qr(matmul64(a, omega)).q; // m x sketch
  for (let it = 0; it < powerIterations; it++) {
    const z = qr(matmul64(a, q, { transA: true })).q; // n x sketch
    q = qr(matmul64(a, z)).q;
  }
  const b = matmul64(q, a, { transA: true }); // sketch x n
  const small = svd(b);
  const u = matmul64(q, firstColumns(small.u!, k));
  return { u, s: small.s.slice(0, k), v: firstColumns(small.v!, k) };
}

function firstColumns(a: Matrix64, k: number): Matrix64 {
  if (k === a.cols) return a;
  const out = new Float64Array(a.rows * k);
  for (let i = 0; i < a.rows; i++) out.set(a.data.subarray(i * a.cols, i * a.cols + k), i * k);
  return { rows: a.rows, cols: k, data: out };
}
