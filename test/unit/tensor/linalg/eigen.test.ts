import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import {
  identity64,
  matmul64,
  matrix64,
  orthogonalityError64,
  relativeError64,
  symmetricEigen,
} from '../../../../src/tensor/index.ts';
import { maxAbsDiff, randomMatrix } from './helpers.ts';

function symmetricRandom(n: number, seed: number) {
  const a = randomMatrix(n, n, seed);
  const s = matrix64(n, n);
  for (let i = 0; i < n; i++)
    for (let j = 0; j < n; j++) s.data[i * n + j] = a.data[i * n + j]! + a.data[j * n + i]!;
  return s;
}

describe('linalg: symmetric eigendecomposition', () => {
  it('a 2 x 2 example: eigenvalues 1 and 3 with eigenvectors (1, -1) and (1, 1) / sqrt 2', () => {
    const { values, vectors } = symmetricEigen(matrix64(2, 2, [2, 1, 1, 2]));
    assert.ok(maxAbsDiff(values, [1, 3]) < 1e-15);
    const v = vectors!;
    assert.ok(Math.abs(Math.abs(v.data[0]!) - Math.SQRT1_2) < 1e-15);
    assert.ok(Math.abs(v.data[0]! + v.data[2]!) < 1e-15, 'first eigenvector is along (1, -1)');
    assert.ok(Math.abs(v.data[1]! - v.data[3]!) < 1e-15, 'second along (1, 1)');
  });

  it('random symmetric 40 x 40: A V = V diag(w), V orthogonal, ascending order', () => {
    const a = symmetricRandom(40, 1);
    const { values, vectors } = symmetricEigen(a);
    const v = vectors!;
    assert.ok(orthogonalityError64(v) < 1e-13);
    const vw = matrix64(
      40,
      40,
      v.data.map((x, i) => x * values[i % 40]!),
    );
    assert.ok(relativeError64(matmul64(a, v), vw) < 1e-13);
    for (let i = 1; i < 40; i++) assert.ok(values[i - 1]! <= values[i]!);
    const down = symmetricEigen(a, { order: 'descending', vectors: false });
    assert.equal(down.vectors, null);
    assert.ok(maxAbsDiff(down.values, [...values].reverse()) < 1e-12);
  });

  it('the 1-D Laplacian has eigenvalues 2 - 2 cos(k pi / (n + 1))', () => {
    const n = 25;
    const a = matrix64(n, n);
    for (let i = 0; i < n; i++) {
      a.data[i * n + i] = 2;
      if (i > 0) a.data[i * n + i - 1] = -1;
      if (i < n - 1) a.data[i * n + i + 1] = -1;
    }
    const expected = Array.from({ length: n }, (_, k) => 2 - 2 * Math.cos(((k + 1) * Math.PI) / (n + 1)));
    assert.ok(maxAbsDiff(symmetricEigen(a).values, expected) < 1e-14);
  });

  it('repeated eigenvalues, zero, 1 x 1 and empty matrices', () => {
    const eye = symmetricEigen(identity64(6));
    assert.ok(maxAbsDiff(eye.values, new Float64Array(6).fill(1)) < 1e-15);
    assert.ok(orthogonalityError64(eye.vectors!) < 1e-15);
    const zero = symmetricEigen(matrix64(5, 5));
    assert.ok(zero.values.every((x) => x === 0));
    assert.ok(orthogonalityError64(zero.vectors!) < 1e-15);
    assert.deepEqual([...symmetricEigen(matrix64(1, 1, [-4])).values], [-4]);
    assert.equal(symmetricEigen(matrix64(0, 0)).values.length, 0);
  });

  it('uses the symmetric part and rejects non-square or non-finite input', () => {
    const skewed = matrix64(2, 2, [2, 0, 2, 2]); // symmetric part [[2, 1], [1, 2]]
    assert.ok(maxAbsDiff(symmetricEigen(skewed).values, [1, 3]) < 1e-15);
    assert.throws(() => symmetricEigen(matrix64(2, 3)), /not square/);
    assert.throws(() => symmetricEigen(matrix64(2, 2, [1, Number.NaN, 0, 1])), /finite/);
  });
});
