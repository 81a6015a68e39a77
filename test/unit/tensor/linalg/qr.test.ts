import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import {
  columns64,
  identity64,
  matmul64,
  matrix64,
  orthogonalityError64,
  orthonormalComplement,
  qr,
  relativeError64,
  transpose64,
} from '../../../../src/tensor/index.ts';
import { isUpperTriangular, maxAbsDiff, randomMatrix } from './helpers.ts';

describe('linalg: Householder QR', () => {
  it('thin QR of a tall matrix: orthonormal Q, upper-triangular R, Q R = A', () => {
    const a = randomMatrix(9, 5, 1);
    const { q, r } = qr(a);
    assert.deepEqual([q.rows, q.cols, r.rows, r.cols], [9, 5, 5, 5]);
    assert.ok(orthogonalityError64(q) < 1e-14);
    assert.ok(isUpperTriangular(r));
    assert.ok(relativeError64(a, matmul64(q, r)) < 1e-14);
  });

  it('full QR: square orthogonal Q and an m x n R', () => {
    const a = randomMatrix(7, 3, 2);
    const { q, r } = qr(a, { mode: 'full' });
    assert.deepEqual([q.rows, q.cols, r.rows, r.cols], [7, 7, 7, 3]);
    assert.ok(orthogonalityError64(q) < 1e-14);
    assert.ok(orthogonalityError64(transpose64(q)) < 1e-14, 'rows orthonormal too');
    assert.ok(isUpperTriangular(r));
    assert.ok(relativeError64(a, matmul64(q, r)) < 1e-14);
    // the thin factor is the first columns of the full one
    const thin = qr(a);
    assert.ok(maxAbsDiff(thin.q.data, columns64(q, 0, 3).data) < 1e-14);
  });

  it('wide matrices: Q is m x m, R m x n (thin and full agree)', () => {
    const a = randomMatrix(3, 6, 3);
    for (const mode of ['thin', 'full'] as const) {
      const { q, r } = qr(a, { mode });
      assert.deepEqual([q.rows, q.cols, r.rows, r.cols], [3, 3, 3, 6]);
      assert.ok(relativeError64(a, matmul64(q, r)) < 1e-14);
      assert.ok(orthogonalityError64(q) < 1e-14);
    }
  });

  it('a known 3 x 2 example: |R| is the Gram-Schmidt factor', () => {
    const a = matrix64(3, 2, [1, 1, 0, 1, 1, 0]);
    const { q, r } = qr(a);
    assert.ok(Math.abs(Math.abs(r.data[0]!) - Math.SQRT2) < 1e-15);
    assert.ok(Math.abs(Math.abs(r.data[3]!) - Math.sqrt(1.5)) < 1e-15);
    assert.ok(relativeError64(a, matmul64(q, r)) < 1e-15);
  });

  it('handles zero and repeated columns (rank deficiency) without NaN', () => {
    const a = matrix64(4, 3, [1, 0, 1, 2, 0, 2, 3, 0, 3, 4, 0, 4]);
    const { q, r } = qr(a);
    assert.ok(q.data.every(Number.isFinite) && r.data.every(Number.isFinite));
    assert.ok(orthogonalityError64(q) < 1e-14);
    assert.ok(relativeError64(a, matmul64(q, r)) < 1e-14);
    const zero = qr(matrix64(3, 2));
    assert.ok(relativeError64(identity64(2), matmul64(zero.q, zero.q, { transA: true })) < 1e-15);
  });

  it('orthonormalComplement extends orthonormal columns to an orthogonal matrix', () => {
    const { q } = qr(randomMatrix(8, 3, 4));
    const c = orthonormalComplement(q);
    assert.deepEqual([c.rows, c.cols], [8, 5]);
    assert.ok(orthogonalityError64(c) < 1e-14);
    assert.ok(maxAbsDiff(matmul64(q, c, { transA: true }).data, new Float64Array(15)) < 1e-14);
    assert.throws(() => orthonormalComplement(matrix64(2, 3)), RangeError);
  });
});
