import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { backward, crossEntropy, fromArray, scope } from '../../../src/tensor/index.ts';
import { gradCheck, input64 } from '../../helpers/gradcheck.ts';

const labels = (values: number[], shape?: number[]) =>
  fromArray(values, shape ?? [values.length], { dtype: 'i32' });

/** Hand formula: lse - (1-s) z[label] - s mean(z), from the definition of each term. */
function handLoss(z: number[], label: number, s: number): number {
  const lse = Math.log(z.reduce((a, v) => a + Math.exp(v), 0));
  const logp = z.map((v) => v - lse);
  return -(1 - s) * logp[label]! - (s * logp.reduce((a, v) => a + v, 0)) / z.length;
}

describe('crossEntropy', () => {
  it('matches hand-computed numbers, with and without label smoothing', () => {
    const z = [
      [1, 2, 3],
      [0.5, -1, 0],
    ];
    const logits = fromArray(z);
    const y = labels([2, 0]);
    // lse([1,2,3]) = 3.40760596444438; logp[2] = -0.40760596444438
    assert.ok(
      Math.abs(crossEntropy(logits, y, { reduction: 'none' }).toArray()[0]! - 0.40760596444438) < 1e-6,
    );
    for (const s of [0, 0.1, 1]) {
      const none = crossEntropy(logits, y, { smoothing: s, reduction: 'none' }).toArray();
      const expected = [handLoss(z[0]!, 2, s), handLoss(z[1]!, 0, s)];
      none.forEach((v, i) => {
        assert.ok(Math.abs(v - expected[i]!) < 1e-6, `s=${s} row ${i}: ${v} vs ${expected[i]}`);
      });
      const mean = crossEntropy(logits, y, { smoothing: s }).item();
      assert.ok(Math.abs(mean - (expected[0]! + expected[1]!) / 2) < 1e-6);
      const total = crossEntropy(logits, y, { smoothing: s, reduction: 'sum' }).item();
      assert.ok(Math.abs(total - (expected[0]! + expected[1]!)) < 1e-6);
    }
    // s = 0.1, row 0: 0.9 * 0.40760596 + 0.1 * mean(2.40760596, 1.40760596, 0.40760596) = 0.50760596
    assert.ok(
      Math.abs(
        crossEntropy(fromArray([[1, 2, 3]]), labels([2]), { smoothing: 0.1 }).item() - 0.50760596444438,
      ) < 1e-6,
    );
  });

  it('ignores -100 labels: mean over the rest, zero loss and gradient for ignored rows', () => {
    const logits = input64([3, 4], 1);
    const y = labels([1, -100, 3]);
    const none = crossEntropy(logits, y, { reduction: 'none' }).toArray();
    assert.equal(none[1], 0);
    const mean = crossEntropy(logits, y).item();
    assert.ok(Math.abs(mean - (none[0]! + none[2]!) / 2) < 1e-12);
    scope(() => backward(crossEntropy(logits, y)));
    const g = logits.grad!.toArray();
    assert.deepEqual(g.slice(4, 8), [0, 0, 0, 0]);
    logits.grad = null;
  });

  it('the mean of zero tokens is 0 (with zero gradient)', () => {
    const logits = input64([2, 3], 2);
    const y = labels([-100, -100]);
    assert.equal(crossEntropy(logits, y).item(), 0);
    scope(() => backward(crossEntropy(logits, y)));
    assert.deepEqual(logits.grad!.toArray(), [0, 0, 0, 0, 0, 0]);
    logits.grad = null;
  });

  it('keeps the leading shape with reduction none', () => {
    const out = crossEntropy(input64([2, 3, 5], 3), labels([0, 1, 2, 3, 4, -100], [2, 3]), {
      reduction: 'none',
    });
    assert.deepEqual(out.shape, [2, 3]);
  });

  it('names bad labels and shapes', () => {
    assert.throws(
      () => crossEntropy(input64([2, 3], 1), labels([0, 3])),
      /label 3 at position 1 is outside the vocabulary \[0, 3\)/,
    );
    assert.throws(
      () => crossEntropy(input64([2, 3], 1), labels([0, 1, 2])),
      /labels must be the logits' shape without the last/,
    );
  });

  const cases: [number[], number[], number, 'mean' | 'sum' | 'none'][] = [
    [[3, 5], [0, 4, -100], 0, 'mean'],
    [[3, 5], [0, 4, 2], 0.2, 'mean'],
    [[2, 2, 3], [0, 1, -100, 2], 0.1, 'sum'],
    [[1, 1], [0], 0, 'mean'],
    [[4, 1], [0, 0, -100, 0], 0.3, 'none'],
    [[2, 6], [5, 1], 0.5, 'none'],
  ];
  for (const [shape, ys, s, reduction] of cases) {
    it(`gradient ${JSON.stringify(shape)} smoothing ${s} ${reduction}`, () => {
      const y = labels(ys, shape.slice(0, -1));
      gradCheck('crossEntropy', (z) => crossEntropy(z, y, { smoothing: s, reduction }), [
        input64(shape, 4, 2),
      ]);
    });
  }
});
