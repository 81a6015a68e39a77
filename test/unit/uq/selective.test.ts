import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { auarc, aurc, prr, riskCoverageCurve, UqInputError } from '../../../src/uq/index.ts';
import { assertClose, assertUndefined, assertValue, tieOrders } from './helpers.ts';

/** AURC of one fixed order (a permutation of indices): mean over k of errors among the first k / k. */
function aurcOfOrder(order: readonly number[], correct: readonly number[]): number {
  let errors = 0;
  let total = 0;
  order.forEach((i, k) => {
    errors += 1 - correct[i]!;
    total += errors / (k + 1);
  });
  return total / order.length;
}

describe('aurc, auarc and the risk-coverage curve', () => {
  it('average the risk (accuracy) of the k surest answers over k', () => {
    // Surest first: errors 0, 0, 1, 0 -> risks 0, 0, 1/3, 1/4 -> AURC = (7/12)/4 = 7/48;
    // accuracies 1, 1, 2/3, 3/4 -> AUARC = (41/12)/4 = 41/48.
    const u = [0.1, 0.2, 0.3, 0.4];
    const correct = [1, 1, 0, 1];
    assertValue(aurc(u, correct), 7 / 48);
    assertValue(auarc(u, correct), 41 / 48);
    const curve = riskCoverageCurve(u, correct);
    assert.deepEqual(
      curve.map((p) => p.coverage),
      [0.25, 0.5, 0.75, 1],
    );
    curve.forEach((p, k) => {
      assertClose(p.risk, [0, 0, 1 / 3, 1 / 4][k]!);
    });
  });

  it('average tied uncertainties over their tie group (expected value under random tie-breaking)', () => {
    // Sorted: 0.1 (right), {0.5 right, 0.5 wrong}, 0.9 (wrong). Expected errors among the first k:
    // 0, 1/2, 1, 2 -> risks 0, 1/4, 1/3, 1/2 -> AURC = (13/12)/4 = 13/48.
    // The two tie orders give risk sums 5/6 (right first) and 4/3 (wrong first): mean 13/12.
    const u = [0.5, 0.5, 0.1, 0.9];
    const correct = [1, 0, 1, 0];
    assertValue(aurc(u, correct), 13 / 48);
    assertValue(auarc(u, correct), 1 - 13 / 48);
    const risks = riskCoverageCurve(u, correct).map((p) => p.risk);
    [0, 1 / 4, 1 / 3, 1 / 2].forEach((r, k) => {
      assertClose(risks[k]!, r);
    });
  });

  it('equal the mean over every tie-breaking order (brute force)', () => {
    const u = [0.3, 0.1, 0.3, 0.7, 0.3, 0.1, 0.7];
    const correct = [1, 0, 0, 1, 1, 1, 0];
    const orders = tieOrders(u);
    assert.equal(orders.length, 3 * 2 * 2 * 2); // 3! x 2! x 2!
    const expected = orders.reduce((sum, order) => sum + aurcOfOrder(order, correct), 0) / orders.length;
    assertValue(aurc(u, correct), expected, 1e-12);
    assertValue(auarc(u, correct), 1 - expected, 1e-12);
  });

  it('give the overall error rate for constant uncertainty, 0/1 for one class', () => {
    assertValue(aurc([2, 2, 2, 2], [1, 0, 0, 1]), 0.5);
    assertValue(aurc([0.1, 0.7, 0.3], [1, 1, 1]), 0);
    assertValue(auarc([0.1, 0.7, 0.3], [false, false, false]), 0);
  });

  it('are null (no points) for empty input', () => {
    assertUndefined(aurc([], []), /empty input/);
    assertUndefined(auarc([], []), /empty input/);
    assert.deepEqual(riskCoverageCurve([], []), []);
  });

  it('reject mismatched lengths', () => {
    assert.throws(() => aurc([0.1], [1, 0]), UqInputError);
  });
});

describe('prr (LM-Polygraph prediction-rejection ratio)', () => {
  it('is 1 for the oracle ranking, -1 for its reverse and 0 for constant uncertainty', () => {
    // q = [1, 1, 0, 0]. Oracle running means of kept quality: 1, 1, 2/3, 1/2 -> AUC 19/24; random
    // AUC = mean q = 1/2; the reverse: 0, 0, 1/3, 1/2 -> 5/24. PRR = (5/24 - 12/24)/(19/24 - 12/24)
    // = -1 (exactly -1 here because oracle and reverse are symmetric about 1/2 at every k).
    assertValue(prr([0.1, 0.2, 0.8, 0.9], [1, 1, 0, 0]), 1);
    assertValue(prr([0.9, 0.8, 0.2, 0.1], [1, 1, 0, 0]), -1);
    // All tied: the expected kept quality is mean q at every k, the random baseline exactly.
    assertValue(prr([3, 3, 3, 3], [1, 0, 0, 1]), 0);
    assertValue(prr([1, 1], [true, false]), 0);
  });

  it('matches a hand computation in between', () => {
    // U ascending keeps q = 1, 0, 0, 1: running means 1, 1/2, 1/3, 1/2 -> AUC = (7/3)/4 = 7/12.
    // PRR = (7/12 - 1/2) / (19/24 - 1/2) = (2/24) / (7/24) = 2/7.
    assertValue(prr([1, 2, 3, 4], [1, 0, 0, 1]), 2 / 7);
  });

  it('min-max normalises a graded quality', () => {
    // q = [2, 4, 6, 10] -> [0, 1/4, 1/2, 1], kept in that order (worst first): running means
    // 0, 1/8, 1/4, 7/16 -> AUC 13/64 = 39/192; random 7/16 = 84/192; oracle keeps 1, 1/2, 1/4, 0:
    // 1, 3/4, 7/12, 7/16 -> 133/192. PRR = (39 - 84) / (133 - 84) = -45/49.
    assertValue(prr([1, 2, 3, 4], [2, 4, 6, 10]), -45 / 49);
    // Scale and shift of q do not matter.
    assertValue(prr([1, 2, 3, 4], [-1, 0, 1, 3]), -45 / 49);
    // Oracle order on a graded quality: 1.
    assertValue(prr([3, 2, 1], [0, 5, 10]), 1);
  });

  it('averages ties like the mean over every tie-breaking order (brute force)', () => {
    const u = [0.3, 0.1, 0.3, 0.7, 0.3, 0.1];
    const quality = [2, 9, 5, 1, 10, 4];
    const q = quality.map((v) => (v - 1) / 9);
    const aucOfOrder = (order: readonly number[]): number => {
      let kept = 0;
      let total = 0;
      order.forEach((i, k) => {
        kept += q[i]!;
        total += kept / (k + 1);
      });
      return total / order.length;
    };
    const orders = tieOrders(u);
    const expectedAuc = orders.reduce((sum, order) => sum + aucOfOrder(order), 0) / orders.length;
    const random = q.reduce((a, b) => a + b, 0) / q.length;
    const oracle = aucOfOrder([4, 1, 2, 5, 0, 3]); // quality 10, 9, 5, 4, 2, 1
    // PRR is linear in AUC(U), so its expectation over tie orders uses the expected AUC.
    assertValue(prr(u, quality), (expectedAuc - random) / (oracle - random), 1e-12);
  });

  it('is null when every quality is equal or the input is empty', () => {
    assertUndefined(prr([0.1, 0.2, 0.3], [1, 1, 1]), /all qualities are equal/);
    assertUndefined(prr([0.1, 0.2], [0.4, 0.4]), /all qualities are equal/);
    assertUndefined(prr([], []), /empty input/);
  });

  it('rejects a quality that is not a number', () => {
    assert.throws(() => prr([0.1, 0.2], [1, Number.NaN]), /quality\[1\]/);
  });
});
