import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { Linear } from '../../../src/nn/index.ts';
import { fromArray, matmul, Rng, type Tensor } from '../../../src/tensor/index.ts';
import { gradCheck, input64 } from '../../helpers/gradcheck.ts';

describe('Linear', () => {
  it('has weight [out, in] and bias [out], initialised like PyTorch U(-1/sqrt(in), 1/sqrt(in))', () => {
    const l = new Linear(16, 8, { seed: 3 });
    assert.deepEqual(l.weight.shape, [8, 16]);
    assert.deepEqual(l.bias!.shape, [8]);
    const bound = 1 / Math.sqrt(16);
    const w = l.weight.toArray();
    const b = l.bias!.toArray();
    assert.ok([...w, ...b].every((x) => x >= -bound && x < bound));
    assert.ok(Math.max(...w) > 0.8 * bound && Math.min(...w) < -0.8 * bound, 'spans the range');
    // drawn from the generator in order: weight first, then bias
    const rng = new Rng(3);
    const expected = Array.from({ length: 8 * 16 + 8 }, () =>
      Math.fround(-bound + 2 * bound * rng.uniform()),
    );
    assert.deepEqual([...w, ...b], expected);
    assert.throws(() => new Linear(2, 2), /pass a seed or an rng/);
    assert.throws(() => new Linear(0, 2, { seed: 1 }), /inFeatures must be a positive integer/);
  });

  it('computes x W^T + b', () => {
    const l = new Linear(3, 2, { init: 'zeros' });
    l.weight.copyFrom(fromArray([1, 2, 3, -1, 0, 1], [2, 3]));
    l.bias!.copyFrom(fromArray([0.5, -0.5]));
    const x = fromArray([
      [1, 1, 1],
      [2, 0, -1],
    ]);
    assert.deepEqual(l.forward(x).toNested(), [
      [6.5, -0.5],
      [-0.5, -3.5],
    ]);
  });

  it('matches a manual matmul for batched inputs and 1-d inputs', () => {
    const l = new Linear(4, 3, { seed: 5, bias: false });
    const x = fromArray(
      Array.from({ length: 2 * 5 * 4 }, (_, i) => Math.sin(i)),
      [2, 5, 4],
    );
    const y = l.forward(x);
    assert.deepEqual(y.shape, [2, 5, 3]);
    const manual = matmul(x, l.weight, { transB: true });
    assert.deepEqual(y.toArray(), manual.toArray());
    const v = fromArray([1, 2, 3, 4]);
    const yv = l.forward(v);
    assert.deepEqual(yv.shape, [3]);
    const w = l.weight.toArray();
    for (let o = 0; o < 3; o++) {
      const ref = w[o * 4]! + 2 * w[o * 4 + 1]! + 3 * w[o * 4 + 2]! + 4 * w[o * 4 + 3]!;
      assert.ok(Math.abs(yv.toArray()[o]! - ref) < 1e-5);
    }
    assert.throws(() => l.forward(fromArray([1, 2, 3])), /Linear\(4 -> 3\): input \[3\] must end in 4/);
  });

  it('gradients w.r.t. input, weight and bias (finite differences, f64)', () => {
    const l = new Linear(4, 3, { seed: 1, dtype: 'f64' });
    const x = input64([2, 5, 4], 11);
    gradCheck(
      'linear',
      (xi: Tensor, w: Tensor, b: Tensor) => {
        // the check perturbs the parameters' data in place; forward reads them
        assert.equal(w, l.weight);
        assert.equal(b, l.bias);
        return l.forward(xi);
      },
      [x, l.weight, l.bias!],
    );
  });

  it('gradients without bias and with a frozen weight', () => {
    const l = new Linear(3, 2, { seed: 2, dtype: 'f64', bias: false });
    gradCheck('linear no bias', (xi: Tensor) => l.forward(xi), [input64([4, 3], 3), l.weight]);
    l.weight.freeze();
    const x = input64([4, 3], 4);
    gradCheck('linear frozen', (xi: Tensor) => l.forward(xi), [x]);
    assert.equal(l.weight.grad, null, 'a frozen weight gets no gradient');
  });
});
