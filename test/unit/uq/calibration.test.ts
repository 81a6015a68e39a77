import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import {
  binConfidences,
  brier,
  ece,
  mce,
  nll,
  reliabilityDiagram,
  UqInputError,
} from '../../../src/uq/index.ts';
import { assertClose, assertUndefined, assertValue } from './helpers.ts';

describe('ece and mce, equal-width bins', () => {
  // 5 bins: [0, 0.2], (0.2, 0.4], (0.4, 0.6], (0.6, 0.8], (0.8, 1].
  // bin 0: 0, 0.1, 0.2 (an edge belongs to the lower bin): confidence 0.1, accuracy 1/3, gap 7/30.
  // bin 1: 0.3 (wrong): gap 0.3. bin 2: 0.45 (right): gap 0.55. bin 3: empty.
  // bin 4: 0.9, 1.0 (both right): confidence 0.95, gap 0.05.
  // ECE = (3 * 7/30 + 0.3 + 0.55 + 2 * 0.05) / 7 = 1.65 / 7; MCE = 0.55.
  const conf = [0.1, 0.2, 0.3, 0.45, 0.9, 1.0, 0.0];
  const correct = [0, 1, 0, 1, 1, 1, 0];

  it('match a hand computation, with an empty bin', () => {
    const result = ece(conf, correct, { bins: 5 });
    assertValue(result, 1.65 / 7);
    assert.equal(result.binCount, 5);
    assert.equal(result.scheme, 'equal-width');
    assert.deepEqual(
      result.bins.map((b) => [b.lo, b.hi, b.count]),
      [
        [0, 0.2, 3],
        [0.2, 0.4, 1],
        [0.4, 0.6, 1],
        [0.6, 0.8, 0],
        [0.8, 1, 2],
      ],
    );
    assert.equal(result.bins[3]!.accuracy, null);
    assert.equal(result.bins[3]!.confidence, null);
    assertClose(result.bins[0]!.accuracy!, 1 / 3);
    assertClose(result.bins[0]!.confidence!, 0.1);
    assertValue(mce(conf, correct, { bins: 5 }), 0.55);
  });

  it('default to 15 bins', () => {
    const result = ece([0.5], [1]);
    assert.equal(result.binCount, 15);
    assert.equal(result.bins.length, 15);
    assertValue(result, 0.5);
  });

  it('put a confidence on an edge in the lower bin, despite rounding (0.7 * 10 > 7 in floating point)', () => {
    const bins = binConfidences([0.7, 0.3, 0.1, 1e-300], [1, 1, 1, 1], { bins: 10 });
    assert.deepEqual(
      bins.map((b) => b.count),
      [2, 0, 1, 0, 0, 0, 1, 0, 0, 0],
    );
  });

  it('are |accuracy - c| for a constant confidence', () => {
    assertValue(ece([0.8, 0.8, 0.8, 0.8], [1, 0, 1, 1]), 0.05, 1e-15);
    assertValue(mce([0.8, 0.8, 0.8, 0.8], [1, 0, 1, 1]), 0.05, 1e-15);
  });

  it('are null for empty input', () => {
    const result = ece([], []);
    assertUndefined(result, /empty input/);
    assert.equal(result.binCount, 15);
    assertUndefined(mce([], [], { scheme: 'equal-mass' }), /empty input/);
  });

  it('reject confidences outside [0, 1] and bad bin counts', () => {
    assert.throws(() => ece([1.2], [1]), /confidences\[0\]: expected a probability in \[0, 1\]/);
    assert.throws(() => ece([0.5], [1], { bins: 0 }), UqInputError);
    assert.throws(() => ece([0.5], [1], { bins: 2.5 }), UqInputError);
  });
});

describe('ece and mce, equal-mass bins', () => {
  it('keep a tie group in one bin (the bin of its middle position)', () => {
    // Sorted: 0.1 | 0.2 0.2 0.2 | 0.6 | 0.9; 3 bins of 6 -> position i goes to floor(i * 3 / 6).
    // 0.1 at 0 -> bin 0; the 0.2 group spans 1..3, middle 2 -> bin 1; 0.6 at 4 and 0.9 at 5 -> bin 2.
    // bin 0: conf 0.1, acc 0, gap 0.1; bin 1: conf 0.2, acc 2/3, gap 7/15; bin 2: conf 0.75, acc 1,
    // gap 0.25. ECE = (0.1 + 3 * 7/15 + 2 * 0.25) / 6 = 2 / 6; MCE = 7/15.
    const conf = [0.2, 0.1, 0.9, 0.2, 0.6, 0.2];
    const correct = [1, 0, 1, 0, 1, 1];
    const result = ece(conf, correct, { bins: 3, scheme: 'equal-mass' });
    assertValue(result, 1 / 3, 1e-15);
    assert.deepEqual(
      result.bins.map((b) => [b.lo, b.hi, b.count]),
      [
        [0.1, 0.1, 1],
        [0.2, 0.2, 3],
        [0.6, 0.9, 2],
      ],
    );
    assertValue(mce(conf, correct, { bins: 3, scheme: 'equal-mass' }), 7 / 15, 1e-15);
  });

  it('split untied confidences evenly and merge an all-tied input into one bin', () => {
    const even = binConfidences([0.4, 0.1, 0.3, 0.2], [1, 0, 1, 0], { bins: 2, scheme: 'equal-mass' });
    assert.deepEqual(
      even.map((b) => [b.lo, b.hi, b.count, b.accuracy]),
      [
        [0.1, 0.2, 2, 0],
        [0.3, 0.4, 2, 1],
      ],
    );
    const tied = ece([0.5, 0.5, 0.5, 0.5], [1, 1, 1, 0], { bins: 2, scheme: 'equal-mass' });
    assert.equal(tied.bins.length, 1);
    assert.equal(tied.binCount, 2);
    assertValue(tied, 0.25);
  });
});

describe('brier and nll', () => {
  it('match hand computations', () => {
    // (0.9 - 1)^2 + (0.2 - 0)^2 + (0.6 - 0)^2 = 0.01 + 0.04 + 0.36 = 0.41.
    assertValue(brier([0.9, 0.2, 0.6], [1, 0, 0]), 0.41 / 3, 1e-15);
    assertValue(nll([0.9, 0.2], [true, false]), -(Math.log(0.9) + Math.log(0.8)) / 2, 1e-15);
  });

  it('clip probabilities to [1e-12, 1 - 1e-12] in nll', () => {
    // A certain mistake costs -log(1e-12) = 27.631..., not infinity, either way round.
    assertValue(nll([0], [1]), -Math.log(1e-12), 1e-12);
    assertValue(nll([1], [0]), -Math.log(1e-12), 1e-3);
    assertValue(nll([1, 0], [1, 0]), 1e-12, 1e-15);
  });

  it('are null for empty input', () => {
    assertUndefined(brier([], []), /empty input/);
    assertUndefined(nll([], []), /empty input/);
  });
});

describe('reliabilityDiagram', () => {
  it('gives per-bin gaps and shares with the overall numbers', () => {
    const diagram = reliabilityDiagram([0.1, 0.2, 0.9, 0.95], [0, 1, 1, 1], { bins: 2 });
    assert.equal(diagram.n, 4);
    assert.equal(diagram.binCount, 2);
    assertClose(diagram.accuracy!, 0.75);
    assertClose(diagram.confidence!, 0.5375);
    // bin 0: conf 0.15, acc 0.5, gap 0.35; bin 1: conf 0.925, acc 1, gap 0.075.
    assertClose(diagram.bins[0]!.gap!, 0.35, 1e-15);
    assertClose(diagram.bins[1]!.gap!, 0.075, 1e-15);
    assert.deepEqual(
      diagram.bins.map((b) => b.fraction),
      [0.5, 0.5],
    );
    assertClose(diagram.ece!, (0.35 + 0.075) / 2, 1e-15);
    assertClose(diagram.mce!, 0.35, 1e-15);
    const empty = reliabilityDiagram([], []);
    assert.equal(empty.ece, null);
    assert.equal(empty.accuracy, null);
  });
});
