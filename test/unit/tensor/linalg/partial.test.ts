import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import {
  leftSingularVectors,
  type Matrix64,
  matmul64,
  matrix64,
  orthogonalityError64,
  svd,
  symmetricEigen,
  topSymmetricEigen,
} from '../../../../src/tensor/index.ts';
import { maxAbsDiff, randomMatrix, withSingularValues } from './helpers.ts';

/** min over columns j of |<x_j, y_j>| (1 when the columns agree up to sign). */
function worstColumnCos(x: Matrix64, y: Matrix64, k: number): number {
  const c = matmul64(x, y, { transA: true });
  let worst = 1;
  for (let j = 0; j < k; j++) worst = Math.min(worst, Math.abs(c.data[j * c.cols + j]!));
  return worst;
}

describe('linalg: partial decompositions', () => {
  it('topSymmetricEigen matches the full decomposition on its k largest eigenpairs', () => {
    const a = randomMatrix(50, 50, 1);
    const sym = matmul64(a, a, { transB: true });
    const full = symmetricEigen(sym, { order: 'descending' });
    const top = topSymmetricEigen(sym, 7);
    assert.equal(top.values.length, 7);
    assert.ok(maxAbsDiff(top.values, full.values.slice(0, 7)) < 1e-11);
    assert.ok(orthogonalityError64(top.vectors) < 1e-13);
    assert.ok(worstColumnCos(top.vectors, full.vectors!, 7) > 1 - 1e-12);
    // A v = lambda v
    const av = matmul64(sym, top.vectors);
    for (let j = 0; j < 7; j++) {
      for (let i = 0; i < 50; i++) {
        assert.ok(Math.abs(av.data[i * 7 + j]! - top.values[j]! * top.vectors.data[i * 7 + j]!) < 1e-10);
      }
    }
  });

  it('repeated eigenvalues still give orthonormal eigenvectors', () => {
    const d = matrix64(6, 6);
    [5, 5, 5, 2, 1, 0].forEach((x, i) => {
      d.data[i * 6 + i] = x;
    });
    const top = topSymmetricEigen(d, 4);
    assert.deepEqual([...top.values], [5, 5, 5, 2]);
    assert.ok(orthogonalityError64(top.vectors) < 1e-13);
    // the three eigenvectors of 5 span e_0..e_2
    for (let j = 0; j < 3; j++)
      for (let i = 3; i < 6; i++) assert.ok(Math.abs(top.vectors.data[i * 4 + j]!) < 1e-12);
    assert.throws(() => topSymmetricEigen(d, 0), RangeError);
  });

  it('leftSingularVectors: all or the top vectors, for wide, square and tall matrices', () => {
    for (const [m, n] of [
      [20, 35],
      [24, 24],
      [35, 20],
    ] as const) {
      const a = withSingularValues(
        m,
        n,
        Array.from({ length: Math.min(m, n) }, (_, i) => 10 / (i + 1)),
        m + n,
      );
      const exact = svd(a);
      const all = leftSingularVectors(a);
      assert.equal(all.u.cols, Math.min(m, n));
      assert.ok(orthogonalityError64(all.u) < 1e-13);
      assert.ok(maxAbsDiff(all.s, exact.s) < 1e-12);
      assert.ok(worstColumnCos(all.u, exact.u!, Math.min(m, n)) > 1 - 1e-9, `${m} x ${n} all`);
      const top = leftSingularVectors(a, { count: 5 });
      assert.deepEqual([top.u.rows, top.u.cols, top.s.length], [m, 5, 5]);
      assert.ok(orthogonalityError64(top.u) < 1e-13);
      assert.ok(maxAbsDiff(top.s, exact.s.slice(0, 5)) < 1e-12);
      assert.ok(worstColumnCos(top.u, exact.u!, 5) > 1 - 1e-12, `${m} x ${n} top`);
    }
  });

  it('a rank-deficient tall matrix falls back to the full SVD for its null directions', () => {
    const a = withSingularValues(30, 12, [3, 2], 9);
    const top = leftSingularVectors(a, { count: 4 });
    assert.ok(orthogonalityError64(top.u) < 1e-13);
    assert.ok(top.s[2]! < 1e-13 && top.s[3]! < 1e-13);
  });
});
