import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { fromArray, matmul } from '../../../src/tensor/index.ts';
import { gradCheck, input64 } from '../../helpers/gradcheck.ts';

describe('matmul', () => {
  it('multiplies 2-d matrices', () => {
    const a = fromArray([
      [1, 2],
      [3, 4],
    ]);
    const b = fromArray([
      [5, 6],
      [7, 8],
    ]);
    assert.deepEqual(matmul(a, b).toNested(), [
      [19, 22],
      [43, 50],
    ]);
    assert.deepEqual(matmul(a, b, { transA: true }).toNested(), [
      [26, 30],
      [38, 44],
    ]);
    assert.deepEqual(matmul(a, b, { transB: true }).toNested(), [
      [17, 23],
      [39, 53],
    ]);
  });
  it('names the op and both shapes on an inner-dim mismatch', () => {
    assert.throws(
      () =>
        matmul(
          fromArray([
            [1, 2, 3],
            [4, 5, 6],
          ]),
          fromArray(new Array(20).fill(0), [4, 5]),
        ),
      /matmul: \[2,3\] x \[4,5\]: inner dims 3 != 4/,
    );
  });
  const cases: [number[], number[], boolean, boolean][] = [
    [[3, 4], [4, 5], false, false],
    [[4, 3], [4, 5], true, false],
    [[3, 4], [5, 4], false, true],
    [[4, 3], [5, 4], true, true],
    [[2, 3, 4], [4, 2], false, false],
    [[2, 3, 4], [2, 4, 2], false, false],
    [[2, 4, 3], [1, 2, 4], true, true],
    [[2, 1, 3, 4], [3, 4, 2], false, false],
    [[1, 3], [3, 1], false, false],
  ];
  for (const [sa, sb, transA, transB] of cases) {
    it(`gradient ${JSON.stringify(sa)}${transA ? 'ᵀ' : ''} x ${JSON.stringify(sb)}${transB ? 'ᵀ' : ''}`, () => {
      gradCheck('matmul', (a, b) => matmul(a, b, { transA, transB }), [input64(sa, 1), input64(sb, 2)]);
    });
  }
});
