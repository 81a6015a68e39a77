import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { fromArray, logSoftmax, softmax, type Tensor } from '../../../src/tensor/index.ts';
import { gradCheck, input64 } from '../../helpers/gradcheck.ts';

function assertClose(
  actual: readonly number[],
  expected: readonly number[],
  tol: number,
  what: string,
): void {
  assert.equal(actual.length, expected.length, `${what}: length`);
  actual.forEach((a, i) => {
    assert.ok(Math.abs(a - expected[i]!) <= tol, `${what}[${i}]: ${a} vs ${expected[i]} (tol ${tol})`);
  });
}

describe('softmax / logSoftmax forward', () => {
  it('matches exp(x) / sum(exp(x)) over the last axis', () => {
    const x = fromArray([
      [1, 2, 3],
      [-1, 0, 1000],
    ]);
    const e = [Math.exp(1), Math.exp(2), Math.exp(3)];
    const s = e[0]! + e[1]! + e[2]!;
    assertClose(softmax(x).toArray(), [e[0]! / s, e[1]! / s, e[2]! / s, 0, 0, 1], 1e-6, 'softmax');
    const lse = Math.log(s);
    assertClose(logSoftmax(x).toArray(), [1 - lse, 2 - lse, 3 - lse, -1001, -1000, 0], 1e-4, 'logSoftmax');
  });
  it('works along a non-last axis', () => {
    const x = fromArray([
      [0, 1],
      [Math.log(3), 1],
    ]);
    // along axis 0: column 0 is softmax([0, log 3]) = [1/4, 3/4], column 1 is [1/2, 1/2]
    assertClose(softmax(x, 0).toArray(), [0.25, 0.5, 0.75, 0.5], 1e-6, 'softmax axis 0');
    assertClose(
      logSoftmax(x, 0).toArray(),
      [Math.log(0.25), Math.log(0.5), Math.log(0.75), Math.log(0.5)],
      1e-6,
      'logSoftmax axis 0',
    );
  });
  it('rejects an axis out of range', () => {
    assert.throws(() => softmax(fromArray([1, 2]), 1), /softmax: axis 1 is out of range/);
  });
});

describe('softmax / logSoftmax gradients (finite differences, f64)', () => {
  const cases: [number[], number][] = [
    [[3, 5], -1],
    [[1, 4], -1],
    [[4, 1], -1],
    [[2, 3, 4], 1],
    [[2, 3, 4], 0],
    [[5], 0],
  ];
  for (const [shape, axis] of cases) {
    for (const [name, f] of [
      ['softmax', softmax],
      ['logSoftmax', logSoftmax],
    ] as [string, (x: Tensor, axis?: number) => Tensor][]) {
      it(`${name} ${JSON.stringify(shape)} axis ${axis}`, () => {
        gradCheck(name, (x) => f(x, axis), [input64(shape, 7, 2)]);
      });
    }
  }
});
