import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import {
  abs,
  add,
  addScalar,
  div,
  exp,
  fromArray,
  gelu,
  log,
  maskedFill,
  maximum,
  mul,
  mulScalar,
  neg,
  pow,
  relu,
  rsqrt,
  sigmoid,
  silu,
  softplus,
  sqrt,
  square,
  sub,
  type Tensor,
  tanh,
  where,
} from '../../../src/tensor/index.ts';
import { gradCheck, input64 } from '../../helpers/gradcheck.ts';

describe('elementwise forward', () => {
  it('broadcasts like NumPy', () => {
    const a = fromArray([[1], [2]]);
    const b = fromArray([10, 20, 30]);
    assert.deepEqual(add(a, b).toNested(), [
      [11, 21, 31],
      [12, 22, 32],
    ]);
    assert.deepEqual(sub(b, a).shape, [2, 3]);
  });
  it('names the op and both shapes when shapes do not broadcast', () => {
    assert.throws(
      () => add(fromArray([1, 2, 3]), fromArray([1, 2])),
      /add: \[3\] and \[2\] do not broadcast/,
    );
  });
  it('refuses to mix dtypes', () => {
    assert.throws(() => mul(fromArray([1]), fromArray([1], undefined, { dtype: 'f64' })), /dtypes differ/);
  });
  it('computes unary functions', () => {
    const x = fromArray([-1, 0, 2]);
    assert.deepEqual(relu(x).toArray(), [0, 0, 2]);
    assert.deepEqual(abs(x).toArray(), [1, 0, 2]);
    assert.ok(Math.abs(gelu(fromArray([1]), 'erf').item() - 0.8413447) < 1e-6);
    assert.ok(Math.abs(gelu(fromArray([1]), 'tanh').item() - 0.841192) < 1e-6);
    assert.ok(Math.abs(silu(fromArray([1])).item() - 0.7310586) < 1e-6);
    assert.deepEqual(maskedFill(x, fromArray([1, 0, 1]), 7).toArray(), [7, 0, 7]);
  });
});

describe('elementwise gradients (finite differences, f64)', () => {
  const binaries: [string, (a: Tensor, b: Tensor) => Tensor][] = [
    ['add', add],
    ['sub', sub],
    ['mul', mul],
    ['div', div],
    ['maximum', maximum],
  ];
  const shapes: [number[], number[]][] = [
    [
      [2, 3],
      [2, 3],
    ],
    [
      [2, 1, 3],
      [4, 1],
    ],
    [[3], [2, 3]],
    [[1], [2, 2]],
  ];
  for (const [name, f] of binaries) {
    for (const [sa, sb] of shapes) {
      it(`${name} ${JSON.stringify(sa)} x ${JSON.stringify(sb)}`, () => {
        const a = input64(sa, 1);
        const b = input64(sb, 2);
        if (name === 'div') {
          const d = b.data as Float64Array;
          for (let i = 0; i < d.length; i++) d[i] = d[i]! > 0 ? d[i]! + 0.5 : d[i]! - 0.5;
        }
        gradCheck(name, f, [a, b]);
      });
    }
  }
  const positive = (x: Tensor) => {
    const d = x.data as Float64Array;
    for (let i = 0; i < d.length; i++) d[i] = Math.abs(d[i]!) + 0.2;
    return x;
  };
  const unaries: [string, (x: Tensor) => Tensor, boolean][] = [
    ['neg', neg, false],
    ['exp', exp, false],
    ['log', log, true],
    ['sqrt', sqrt, true],
    ['rsqrt', rsqrt, true],
    ['abs', abs, false],
    ['tanh', tanh, false],
    ['sigmoid', sigmoid, false],
    ['relu', relu, false],
    ['silu', silu, false],
    ['gelu_tanh', (x) => gelu(x, 'tanh'), false],
    ['gelu_erf', (x) => gelu(x, 'erf'), false],
    ['softplus', softplus, false],
    ['square', square, false],
    ['pow', (x) => pow(x, 3), false],
    ['pow_frac', (x) => pow(x, 0.5), true],
    ['addScalar', (x) => addScalar(x, 2), false],
    ['mulScalar', (x) => mulScalar(x, -3), false],
  ];
  for (const [name, f, needsPositive] of unaries) {
    it(name, () => {
      const x = input64([3, 4], 3);
      if (needsPositive) positive(x);
      // keep relu/abs away from the kink at 0
      const d = x.data as Float64Array;
      for (let i = 0; i < d.length; i++) if (Math.abs(d[i]!) < 1e-3) d[i] = 0.1;
      gradCheck(name, f, [x]);
    });
  }
  it('where (gradient flows to the chosen branch only)', () => {
    const cond = fromArray([1, 0, 1, 0, 0, 1], [2, 3], { dtype: 'f64' });
    gradCheck('where', (a, b) => where(cond, a, b), [input64([2, 3], 4), input64([3], 5)]);
  });
});
