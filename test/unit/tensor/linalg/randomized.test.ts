import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { matmul64, orthogonalityError64, Rng, randomizedSvd, svd } from '../../../../src/tensor/index.ts';
import { maxAbsDiff, randomMatrix, withSingularValues } from './helpers.ts';

describe('linalg: randomized truncated SVD', () => {
  it('finds the top singular triplets of a low-rank-plus-noise matrix', () => {
    const a = withSingularValues(80, 60, [10, 8, 6, 4, 2, 1, 0.5, 0.25, 0.1, 0.05], 3);
    const noise = randomMatrix(80, 60, 4);
    for (let i = 0; i < a.data.length; i++) a.data[i]! += 1e-6 * noise.data[i]!;
    const exact = svd(a);
    const r = randomizedSvd(a, 5, { seed: 1 });
    assert.deepEqual([r.u.rows, r.u.cols, r.v.rows, r.v.cols, r.s.length], [80, 5, 60, 5, 5]);
    assert.ok(maxAbsDiff(r.s, exact.s.slice(0, 5)) < 1e-9);
    assert.ok(orthogonalityError64(r.u) < 1e-13);
    assert.ok(orthogonalityError64(r.v) < 1e-13);
    // each vector matches the exact one up to sign
    const cosU = matmul64(r.u, exact.u!, { transA: true });
    for (let j = 0; j < 5; j++) assert.ok(Math.abs(Math.abs(cosU.data[j * 60 + j]!) - 1) < 1e-9);
  });

  it('is reproducible from its seed or Rng', () => {
    const a = randomMatrix(50, 40, 8);
    const r1 = randomizedSvd(a, 3, { seed: 5, oversample: 4, powerIterations: 1 });
    const r2 = randomizedSvd(a, 3, { rng: new Rng(5), oversample: 4, powerIterations: 1 });
    assert.deepEqual([...r1.s], [...r2.s]);
    assert.deepEqual([...r1.u.data], [...r2.u.data]);
  });

  it('falls back to the exact SVD when the sketch covers the matrix, and validates its arguments', () => {
    const a = randomMatrix(12, 9, 2);
    const r = randomizedSvd(a, 4);
    assert.ok(maxAbsDiff(r.s, svd(a).s.slice(0, 4)) < 1e-13);
    assert.equal(randomizedSvd(a, 50).s.length, 9);
    assert.throws(() => randomizedSvd(a, 0), /rank/);
    assert.throws(() => randomizedSvd(a, 2, { oversample: -1 }), /oversample/);
  });
});
