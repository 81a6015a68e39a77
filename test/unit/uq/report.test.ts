import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { PREDICTION_METRIC_NAMES, predictionMetrics, UqInputError } from '../../../src/uq/index.ts';
import { assertClose } from './helpers.ts';

describe('predictionMetrics', () => {
  it('computes every metric from confidences (ranking on 1 - confidence)', () => {
    // The two wrong answers have the lowest confidences: perfect detection and rejection.
    // Surest first: 0.9 (right), 0.8 (right), 0.6 (wrong), 0.3 (wrong): risks 0, 0, 1/3, 1/2 ->
    // AURC 5/24. 15 bins: 0.3 | 0.6 | 0.8 | 0.9 each alone -> gaps 0.3, 0.6, 0.2, 0.1 -> ECE 1.2/4.
    // Brier (0.01 + 0.04 + 0.09 + 0.36) / 4 = 0.125.
    const m = predictionMetrics({ correct: [true, true, false, false], confidence: [0.9, 0.8, 0.3, 0.6] });
    assert.equal(m.n, 4);
    assert.equal(m.bins, 15);
    assert.equal(m.score, 'confidence');
    assert.equal(m.auroc, 1);
    assert.equal(m.aupr, 1);
    assert.equal(m.prr, 1);
    assertClose(m.aurc!, 5 / 24);
    assertClose(m.auarc!, 19 / 24);
    assertClose(m.ece!, 0.3);
    assertClose(m.mce!, 0.6);
    assertClose(m.brier!, 0.125);
    assertClose(m.nll!, -(Math.log(0.9) + Math.log(0.8) + Math.log(0.7) + Math.log(0.4)) / 4);
    assert.deepEqual(m.notes, {});
  });

  it('leaves the calibration metrics null (with notes) for an uncertainty', () => {
    const m = predictionMetrics({ correct: [1, 0, 1], uncertainty: [0.2, 3.5, 0.1], bins: 10 });
    assert.equal(m.score, 'uncertainty');
    assert.equal(m.bins, 10);
    assert.equal(m.auroc, 1);
    for (const name of ['ece', 'mce', 'brier', 'nll'] as const) {
      assert.equal(m[name], null);
      assert.match(m.notes[name]!, /needs confidences/);
    }
  });

  it('gives null with a reason for one class and for empty input', () => {
    const oneClass = predictionMetrics({ correct: [1, 1], uncertainty: [0.2, 0.4] });
    assert.equal(oneClass.auroc, null);
    assert.match(oneClass.notes.auroc!, /one class/);
    assert.equal(oneClass.aupr, null);
    assert.equal(oneClass.prr, null);
    assert.equal(oneClass.aurc, 0);
    assert.equal(oneClass.auarc, 1);
    const empty = predictionMetrics({ correct: [], confidence: [] });
    assert.equal(empty.n, 0);
    for (const name of PREDICTION_METRIC_NAMES) assert.match(empty.notes[name]!, /empty input/);
  });

  it('needs exactly one score', () => {
    assert.throws(() => predictionMetrics({ correct: [1] }), UqInputError);
    assert.throws(
      () => predictionMetrics({ correct: [1], confidence: [0.5], uncertainty: [0.5] }),
      UqInputError,
    );
  });
});
