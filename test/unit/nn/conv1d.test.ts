import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { Conv1D } from '../../../src/nn/index.ts';
import { Rng } from '../../../src/tensor/index.ts';
import { gradCheck, input64 } from '../../helpers/gradcheck.ts';

describe('Conv1D (transformers GPT-2 layout)', () => {
  it('stores the weight [in, out] and computes x W + b', () => {
    const c = new Conv1D(3, 2, { init: 'zeros' });
    assert.deepEqual(c.weight.shape, [3, 2]);
    assert.deepEqual(c.bias!.shape, [2]);
    c.weight.fillWith((i) => i + 1); // [[1, 2], [3, 4], [5, 6]]
    c.bias!.fillWith((i) => 10 * (i + 1));
    const x = input64([1, 3], 1);
    const c64 = new Conv1D(3, 2, { init: 'zeros', dtype: 'f64' });
    c64.weight.fillWith((i) => i + 1);
    c64.bias!.fillWith((i) => 10 * (i + 1));
    const y = c64.forward(x).data as Float64Array;
    const xs = x.data as Float64Array;
    assert.ok(Math.abs(y[0]! - (xs[0]! * 1 + xs[1]! * 3 + xs[2]! * 5 + 10)) < 1e-12);
    assert.ok(Math.abs(y[1]! - (xs[0]! * 2 + xs[1]! * 4 + xs[2]! * 6 + 20)) < 1e-12);
  });
  it("draws transformers' init N(0, 0.02), bias 0, from a seed", () => {
    const c = new Conv1D(64, 32, { seed: 3 });
    const w = c.weight.data as Float32Array;
    const std = Math.sqrt(w.reduce((s, v) => s + v * v, 0) / w.length);
    assert.ok(Math.abs(std - 0.02) < 0.002, `std ${std}`);
    assert.ok((c.bias!.data as Float32Array).every((v) => v === 0));
    assert.throws(() => new Conv1D(2, 2), /pass a seed or an rng/);
  });
  it('gradients of x, weight and bias match finite differences (f64)', () => {
    const c = new Conv1D(4, 5, { rng: new Rng(2), dtype: 'f64' });
    c.bias!.fillWith((i) => 0.1 * i);
    gradCheck('Conv1D', (x) => c.forward(x!), [input64([2, 3, 4], 7), c.weight, c.bias!]);
  });
  it('names the expected input width', () => {
    assert.throws(
      () => new Conv1D(4, 5, { init: 'zeros' }).forward(input64([2, 3], 1)),
      /Conv1D\(4 -> 5\): input \[2,3\] must end in 4/,
    );
  });
});
