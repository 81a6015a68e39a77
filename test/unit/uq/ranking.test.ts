import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { aupr, auroc, UqInputError } from '../../../src/uq/index.ts';
import { assertUndefined, assertValue } from './helpers.ts';

describe('auroc', () => {
  it('is the fraction of (positive, negative) pairs ranked right', () => {
    // Positives score 0.35 and 0.8, negatives 0.1 and 0.4. Pairs: 0.35>0.1 yes, 0.35>0.4 no,
    // 0.8>0.1 yes, 0.8>0.4 yes: 3/4 (scikit-learn's roc_auc_score gives 0.75 too).
    assertValue(auroc([0.1, 0.4, 0.35, 0.8], [0, 0, 1, 1]), 0.75);
  });

  it('counts a tie as half a pair (average ranks)', () => {
    // Sorted: 1, 1 (ranks 1.5, 1.5), 2 (rank 3), 3 (rank 4). Positives: one of the 1s and the 3:
    // rank sum 5.5, U = 5.5 - 2*3/2 = 2.5, AUROC = 2.5 / (2*2) = 0.625.
    // Pairwise: (1 vs 1) 1/2, (1 vs 2) 0, (3 vs 1) 1, (3 vs 2) 1 -> 2.5/4.
    assertValue(auroc([1, 1, 2, 3], [true, false, false, true]), 0.625);
  });

  it('is 1 for a perfect ranking, 0 for the reverse, 1/2 for constant scores', () => {
    assertValue(auroc([0.1, 0.2, 0.8, 0.9], [0, 0, 1, 1]), 1);
    assertValue(auroc([0.9, 0.8, 0.2, 0.1], [0, 0, 1, 1]), 0);
    assertValue(auroc([0.3, 0.3, 0.3, 0.3, 0.3], [0, 1, 1, 0, 1]), 0.5);
  });

  it('does not depend on the order of the input', () => {
    const a = auroc([0.2, 0.5, 0.5, 0.9, 0.1], [0, 1, 0, 1, 0]);
    const b = auroc([0.1, 0.9, 0.5, 0.5, 0.2], [0, 1, 0, 1, 0]);
    // Pairs: 0.5+ vs {0.2, 0.5, 0.1} = 1 + 1/2 + 1; 0.9 vs all three = 3 -> 5.5/6.
    assertValue(a, 5.5 / 6);
    assertValue(b, 5.5 / 6);
  });

  it('is null with a reason for one class or an empty input', () => {
    assertUndefined(auroc([0.1, 0.5], [1, 1]), /one class: no negatives/);
    assertUndefined(auroc([0.1, 0.5], [false, false]), /one class: no positives/);
    assertUndefined(auroc([], []), /empty input/);
  });

  it('rejects mismatched lengths, NaN and non-binary labels', () => {
    assert.throws(() => auroc([0.1, 0.2], [1]), UqInputError);
    assert.throws(() => auroc([0.1, Number.NaN], [1, 0]), /scores\[1\]: expected a finite number/);
    assert.throws(() => auroc([0.1, 0.2], [1, 0.5]), /positives\[1\]: expected true\/false or 1\/0/);
  });
});

describe('aupr (average precision, as scikit-learn)', () => {
  it('matches the scikit-learn documentation example', () => {
    // Thresholds high to low: 0.8 -> TP 1 FP 0: P 1, R 1/2, adds (1/2)(1) = 1/2; 0.4 -> TP 1 FP 1:
    // R unchanged, adds 0; 0.35 -> TP 2 FP 1: P 2/3, R 1, adds (1/2)(2/3) = 1/3; 0.1: R unchanged.
    // AP = 5/6 (average_precision_score([0,0,1,1], [0.1,0.4,0.35,0.8]) = 0.8333...).
    assertValue(aupr([0.1, 0.4, 0.35, 0.8], [0, 0, 1, 1]), 5 / 6);
  });

  it('takes a tie group at one threshold', () => {
    // Scores 0.9 {pos, neg}, 0.5 {pos, neg}: at 0.9 P 1/2 R 1/2 -> 1/4; at 0.5 P 1/2 R 1 -> 1/4.
    // AP = 1/2 (a strict ordering pos-first would give 1/2 + 2/3 * 1/2 = 5/6).
    assertValue(aupr([0.9, 0.9, 0.5, 0.5], [1, 0, 1, 0]), 0.5);
    // Labels [0,1,1,0,1], scores [0.2,0.8,0.8,0.8,0.1]: at 0.8 TP 2 FP 1: P 2/3 R 2/3 -> 4/9; at 0.2
    // R unchanged; at 0.1 TP 3 FP 2: P 3/5 R 1 -> (1/3)(3/5) = 1/5. AP = 4/9 + 1/5 = 29/45.
    assertValue(aupr([0.2, 0.8, 0.8, 0.8, 0.1], [0, 1, 1, 0, 1]), 29 / 45);
  });

  it('is the positive rate for constant scores, 1 for a perfect ranking', () => {
    // One threshold: P = 2/3, R = 1 -> AP = 2/3.
    assertValue(aupr([0.5, 0.5, 0.5], [1, 1, 0]), 2 / 3);
    assertValue(aupr([0.1, 0.2, 0.8, 0.9], [0, 0, 1, 1]), 1);
    // Reversed: at 0.9, 0.8 no TP; at 0.2: P 1/3 R 1/2 -> 1/6; at 0.1: P 2/4 R 1 -> 1/4. AP = 5/12.
    assertValue(aupr([0.9, 0.8, 0.2, 0.1], [0, 0, 1, 1]), 5 / 12);
  });

  it('is null without positives (scikit-learn warns), 1 when all are positive', () => {
    assertUndefined(aupr([0.1, 0.2], [0, 0]), /no positives/);
    assertUndefined(aupr([], []), /empty input/);
    assertValue(aupr([0.1, 0.2], [1, 1]), 1);
  });
});
