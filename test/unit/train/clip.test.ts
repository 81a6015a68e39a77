import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { Parameter } from '../../../src/nn/index.ts';
import { fromArray } from '../../../src/tensor/index.ts';
import { clipGradNorm } from '../../../src/train/optim/index.ts';

function withGrad(values: number[], dtype: 'f32' | 'f64' = 'f32'): Parameter {
  const p = Parameter.zeros([values.length], dtype);
  p.grad = fromArray(values, [values.length], { dtype, track: false });
  return p;
}

describe('clipGradNorm', () => {
  it('returns the global L2 norm and scales all gradients to maxNorm', () => {
    const a = withGrad([3, 4]);
    const b = withGrad([12]);
    const none = Parameter.zeros([2]);
    const total = clipGradNorm([a, b, none], 6.5);
    assert.ok(Math.abs(total - 13) < 1e-9);
    const scale = 6.5 / (13 + 1e-6);
    const ga = a.grad!.toArray();
    const gb = b.grad!.toArray();
    assert.ok(Math.abs(ga[0]! - 3 * scale) < 1e-6 && Math.abs(ga[1]! - 4 * scale) < 1e-6);
    assert.ok(Math.abs(gb[0]! - 12 * scale) < 1e-6);
    assert.equal(none.grad, null);
  });

  it('leaves gradients alone when the norm is below maxNorm', () => {
    const a = withGrad([3, 4], 'f64');
    assert.equal(clipGradNorm([a], 10), 5);
    assert.deepEqual(a.grad!.toArray(), [3, 4]);
  });

  it('accumulates in f64 (no f32 overflow of the squares)', () => {
    const a = withGrad([1e20, 1e20]);
    const total = clipGradNorm([a], 1);
    assert.ok(Math.abs(total / (Math.SQRT2 * 1e20) - 1) < 1e-6, `total ${total}`);
    const g = a.grad!.toArray();
    assert.ok(Math.abs(Math.hypot(g[0]!, g[1]!) - 1) < 1e-5);
  });

  it('reports a non-finite norm when asked', () => {
    const a = withGrad([Number.POSITIVE_INFINITY, 1]);
    assert.throws(() => clipGradNorm([a], 1, { errorIfNonfinite: true }), /total gradient norm is Infinity/);
    assert.throws(() => clipGradNorm([a], 0), /maxNorm must be positive/);
  });
});
