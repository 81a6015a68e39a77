import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import {
  fromArray,
  type Matrix64,
  matmul64,
  matrix64,
  matrix64ToTensor,
  orthogonalityError64,
  relativeError64,
  svd,
  svdReconstruct,
  symmetricEigen,
  tensorToMatrix64,
} from '../../../../src/tensor/index.ts';
import { maxAbsDiff, randomMatrix, withSingularValues } from './helpers.ts';

function checkSvd(a: Matrix64, tolerance: number): ReturnType<typeof svd> {
  const r = svd(a);
  const k = Math.min(a.rows, a.cols);
  assert.equal(r.s.length, k);
  assert.deepEqual([r.u!.rows, r.u!.cols, r.v!.rows, r.v!.cols], [a.rows, k, a.cols, k]);
  for (let i = 0; i < k; i++) {
    assert.ok(r.s[i]! >= 0, 'non-negative');
    if (i > 0) assert.ok(r.s[i - 1]! >= r.s[i]!, 'sorted in decreasing order');
  }
  assert.ok(orthogonalityError64(r.u!) < tolerance, `U orthonormal: ${orthogonalityError64(r.u!)}`);
  assert.ok(orthogonalityError64(r.v!) < tolerance, `V orthonormal: ${orthogonalityError64(r.v!)}`);
  const err = relativeError64(a, svdReconstruct(r.u!, r.s, r.v!));
  assert.ok(err < tolerance, `reconstruction error ${err}`);
  return r;
}

describe('linalg: SVD', () => {
  it('a known 2 x 2 example: [[3, 0], [4, 5]] has singular values 3 sqrt 5 and sqrt 5', () => {
    const r = checkSvd(matrix64(2, 2, [3, 0, 4, 5]), 1e-15);
    assert.ok(maxAbsDiff(r.s, [3 * Math.sqrt(5), Math.sqrt(5)]) < 1e-14);
  });

  it('diagonal and rank-one matrices', () => {
    const d = checkSvd(matrix64(3, 3, [0, 0, 0, 0, -2, 0, 0, 0, 5]), 1e-15);
    assert.ok(maxAbsDiff(d.s, [5, 2, 0]) < 1e-15);
    const outer = matrix64(4, 3, [1, 2, 3, 2, 4, 6, 3, 6, 9, 4, 8, 12]); // (1,2,3,4)^T (1,2,3)
    const o = checkSvd(outer, 1e-14);
    assert.ok(Math.abs(o.s[0]! - Math.sqrt(30) * Math.sqrt(14)) < 1e-12);
    assert.ok(o.s[1]! < 1e-13 && o.s[2]! < 1e-13);
  });

  it('random wide and tall matrices: reconstruction, orthogonality, s^2 = eig(A^T A)', () => {
    for (const [m, n, seed] of [
      [12, 20, 1],
      [20, 12, 2],
      [16, 16, 3],
      [1, 7, 4],
      [7, 1, 5],
    ] as const) {
      const a = randomMatrix(m, n, seed);
      const r = checkSvd(a, 1e-13);
      const gram = matmul64(a, a, m <= n ? { transB: true } : { transA: true });
      const eig = symmetricEigen(gram, { order: 'descending', vectors: false }).values;
      assert.ok(
        maxAbsDiff(
          r.s.map((x) => x * x),
          eig,
        ) < 1e-11,
        `${m} x ${n}`,
      );
    }
  });

  it('recovers prescribed singular values spanning 12 orders of magnitude to eps * s_1', () => {
    const s = Array.from({ length: 13 }, (_, i) => 10 ** -i);
    const a = withSingularValues(30, 20, s, 7);
    const r = checkSvd(a, 1e-13);
    for (let i = 0; i < 13; i++) assert.ok(Math.abs(r.s[i]! - s[i]!) < 1e-14, `s_${i}: ${r.s[i]} vs ${s[i]}`);
    for (let i = 13; i < 20; i++) assert.ok(r.s[i]! < 1e-14);
  });

  it('clustered singular values: still an exact factorisation', () => {
    const s = [3, 3, 3, 1 + 1e-9, 1, 1e-3];
    checkSvd(withSingularValues(9, 14, s, 11), 1e-13);
  });

  it('rank-deficient and zero matrices get complete orthonormal bases', () => {
    const lowRank = withSingularValues(10, 15, [4, 2, 1], 5);
    const r = checkSvd(lowRank, 1e-13);
    assert.ok(r.s.slice(3).every((x) => x < 1e-14));
    const zero = checkSvd(matrix64(4, 6), 1e-15);
    assert.ok(zero.s.every((x) => x === 0));
  });

  it('fullMatrices completes U and V to square orthogonal matrices', () => {
    for (const [m, n] of [
      [5, 9],
      [9, 5],
    ] as const) {
      const a = randomMatrix(m, n, m * 10 + n);
      const r = svd(a, { fullMatrices: true });
      assert.deepEqual([r.u!.rows, r.u!.cols, r.v!.rows, r.v!.cols], [m, m, n, n]);
      assert.ok(orthogonalityError64(r.u!) < 1e-13);
      assert.ok(orthogonalityError64(r.v!) < 1e-13);
      assert.ok(relativeError64(a, svdReconstruct(r.u!, r.s, r.v!)) < 1e-13);
    }
  });

  it("vectors: 'left' | 'right' | 'none' return what was asked for", () => {
    const a = randomMatrix(6, 8, 9);
    const both = svd(a);
    const left = svd(a, { vectors: 'left' });
    assert.equal(left.v, null);
    assert.ok(maxAbsDiff(left.u!.data, both.u!.data) === 0);
    assert.equal(svd(a, { vectors: 'right' }).u, null);
    const none = svd(a, { vectors: 'none' });
    assert.equal(none.u, null);
    assert.ok(maxAbsDiff(none.s, both.s) < 1e-12);
    assert.throws(() => svd(matrix64(1, 2, [1, Number.POSITIVE_INFINITY])), /finite/);
  });

  it('tensor conversions: f32 and bf16 tensors in, f64 or f32 tensors out', () => {
    const t = fromArray([
      [1, 2],
      [3, 4.5],
    ]);
    const m = tensorToMatrix64(t);
    assert.deepEqual([m.rows, m.cols, ...m.data], [2, 2, 1, 2, 3, 4.5]);
    const bf = fromArray([[1.5, -2]], undefined, { dtype: 'bf16' });
    assert.deepEqual([...tensorToMatrix64(bf).data], [1.5, -2]);
    assert.throws(() => tensorToMatrix64(fromArray([1, 2])), /not 2-D/);
    const back = matrix64ToTensor(m, 'f32');
    assert.equal(back.dtype, 'f32');
    assert.deepEqual(back.shape, [2, 2]);
    assert.deepEqual(matrix64ToTensor(m).toArray(), [1, 2, 3, 4.5]);
    t.release();
    bf.release();
  });

  it('runs the full SVD of a 576 x 1536 matrix (SmolLM2 down_proj shape); the time is printed, not asserted', (t) => {
    const a = randomMatrix(576, 1536, 42);
    for (let i = 0; i < a.data.length; i++) a.data[i]! *= 0.02;
    const start = performance.now();
    const r = svd(a);
    const seconds = (performance.now() - start) / 1000;
    t.diagnostic(`svd 576 x 1536: ${seconds.toFixed(2)} s, ${r.sweeps} Jacobi sweep(s)`);
    assert.equal(r.s.length, 576);
    assert.ok(orthogonalityError64(r.u!) < 1e-12);
    // A v_j = s_j u_j and unit, mutually orthogonal v_j, checked on a sample of columns
    for (const j of [0, 1, 287, 574, 575]) {
      let residual = 0;
      let norm = 0;
      for (let i = 0; i < 576; i++) {
        let av = 0;
        for (let k = 0; k < 1536; k++) av += a.data[i * 1536 + k]! * r.v!.data[k * 576 + j]!;
        residual = Math.max(residual, Math.abs(av - r.s[j]! * r.u!.data[i * 576 + j]!));
      }
      for (let k = 0; k < 1536; k++) norm += r.v!.data[k * 576 + j]! ** 2;
      assert.ok(residual < 1e-13, `column ${j}: residual ${residual}`);
      assert.ok(Math.abs(norm - 1) < 1e-13);
    }
    for (let j = 1; j < 576; j++) assert.ok(r.s[j - 1]! >= r.s[j]! && r.s[j]! > 0);
  });
});
