import assert from 'node:assert/strict';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, describe, it } from 'node:test';
import { Rng } from '../../../src/tensor/index.ts';
import {
  abstentionOutcome,
  binomialCdf,
  clopperPearsonUpper,
  conformalThreshold,
} from '../../../src/uq/conformal.ts';
import { loadThreshold, saveThreshold, thresholdJSON } from '../../../src/uq/conformal-file.ts';
import { conformalSplits, conformalSplitsOfPredictions } from '../../../src/uq/conformal-splits.ts';
import { assertClose } from './helpers.ts';

// n = 9 (so n + 1 = 10); 0.9 and 0.7 are ties. Going down the distinct confidences, the answered
// and wrong counts and the bound (wrong + 1) / 10 are:
//   t = 0.9: 2 answered, 1 wrong, 0.2   t = 0.8: 3, 1, 0.2   t = 0.7: 5, 1, 0.2
//   t = 0.6: 6, 2, 0.3                  t = 0.5: 7, 2, 0.3   t = 0.4: 8, 3, 0.4   t = 0.3: 9, 4, 0.5
const marginalC = [0.9, 0.9, 0.8, 0.7, 0.7, 0.6, 0.5, 0.4, 0.3];
const marginalY = [true, false, true, true, true, false, true, false, false];

describe('conformalThreshold, marginal (conformal risk control of 1{answered and wrong})', () => {
  it('picks the smallest threshold whose bound is <= alpha, answering a tie group together', () => {
    const r = conformalThreshold(marginalC, marginalY, { alpha: 0.25 });
    assert.equal(r.guarantee, 'marginal');
    assert.equal(r.threshold, 0.7);
    assertClose(r.bound!, 0.2);
    // both 0.7s are answered: 5, not 4
    assert.deepEqual(r.calibration, {
      n: 9,
      answered: 5,
      coverage: 5 / 9,
      risk: 1 / 9,
      selectiveRisk: 1 / 5,
    });
    assert.equal(r.note, null);
    assert.equal(conformalThreshold(marginalC, marginalY, { alpha: 0.35 }).threshold, 0.5);
    assert.equal(conformalThreshold(marginalC, marginalY, { alpha: 0.45 }).threshold, 0.4);
    assert.equal(conformalThreshold(marginalC, marginalY, { alpha: 0.5 }).threshold, 0.3);
  });

  it('does not depend on the order of the input', () => {
    const order = [8, 3, 0, 5, 1, 7, 2, 6, 4];
    const r = conformalThreshold(
      order.map((i) => marginalC[i]!),
      order.map((i) => marginalY[i]!),
      { alpha: 0.35 },
    );
    assert.equal(r.threshold, 0.5);
  });

  it('abstains on everything when no threshold satisfies alpha, and says so', () => {
    const r = conformalThreshold(marginalC, marginalY, { alpha: 0.15 });
    assert.equal(r.threshold, null);
    assert.equal(r.bound, null);
    assert.deepEqual(r.calibration, { n: 9, answered: 0, coverage: 0, risk: 0, selectiveRisk: null });
    assert.match(
      r.note!,
      /no threshold satisfies alpha = 0.15 on 9 calibration predictions.*abstain on every question/,
    );
    // alpha below 1/(n+1) can never be met, whatever the data
    const tiny = conformalThreshold([0.9, 0.8], [true, true], { alpha: 0.3 });
    assert.equal(tiny.threshold, null);
    assert.match(tiny.note!, /alpha < 1\/\(n\+1\) = 0.3333 cannot be met/);
    // every answer right: the lowest confidence passes (answer everything)
    assert.equal(conformalThreshold([0.9, 0.2, 0.5], [1, 1, 1], { alpha: 0.3 }).threshold, 0.2);
  });

  it('rejects bad input with a clear message', () => {
    assert.throws(
      () => conformalThreshold([0.5], [true], { alpha: 1 }),
      /alpha: expected a number in \(0, 1\), found 1/,
    );
    assert.throws(() => conformalThreshold([], [], { alpha: 0.1 }), /no calibration predictions/);
    assert.throws(
      () => conformalThreshold([0.5, 0.2], [true], { alpha: 0.1 }),
      /differ in length \(2 vs 1\)/,
    );
    assert.throws(
      () => conformalThreshold([0.5], [true], { alpha: 0.1, guarantee: 'joint' as 'marginal' }),
      /expected marginal or selective, found joint/,
    );
  });
});

// Going down: (k answered, e wrong, P(Bin(k, 0.5) <= e)):
//   0.9 (tie of 3): 3, 0, 1/8   0.8: 4, 0, 1/16   0.7: 5, 1, 6/32   0.6: 6, 1, 7/64
//   0.5: 7, 2, 29/128 > 0.2: stop. (0.45: 8, 2, 37/256 and 0.44 would pass again, but the fixed
//   sequence has stopped.)
const selectiveC = [0.9, 0.9, 0.9, 0.8, 0.7, 0.6, 0.5, 0.45, 0.44, 0.43];
const selectiveY = [true, true, true, true, false, true, false, true, true, true];

describe('conformalThreshold, selective (Learn-then-Test, fixed sequence)', () => {
  it('scans from high to low and stops at the first threshold not rejected', () => {
    const r = conformalThreshold(selectiveC, selectiveY, { alpha: 0.5, guarantee: 'selective', delta: 0.2 });
    assert.equal(r.threshold, 0.6);
    assert.equal(r.delta, 0.2);
    assert.deepEqual(r.calibration, { n: 10, answered: 6, coverage: 0.6, risk: 0.1, selectiveRisk: 1 / 6 });
    // the bound is the Clopper-Pearson upper 80% bound for 1 wrong in 6: P(Bin(6, u) <= 1) = 0.2
    assertClose(binomialCdf(1, 6, r.bound!), 0.2, 1e-9);
    assert.ok(r.bound! < 0.5);
  });

  it('abstains on everything when the most confident group already fails', () => {
    // k = 1, e = 0: p-value (1 - 0.5)^1 = 0.5 > 0.2
    const r = conformalThreshold([0.9, 0.8, 0.7], [true, true, true], {
      alpha: 0.5,
      guarantee: 'selective',
      delta: 0.2,
    });
    assert.equal(r.threshold, null);
    assert.match(
      r.note!,
      /no threshold bounds the error among answered at alpha = 0.5 with probability 0.8.*abstain on every question/,
    );
    // delta defaults to 0.1
    assert.equal(conformalThreshold([0.9], [true], { alpha: 0.5, guarantee: 'selective' }).delta, 0.1);
  });
});

describe('binomial tail and Clopper-Pearson bound', () => {
  it('match hand-computed values', () => {
    assertClose(binomialCdf(2, 7, 0.5), 29 / 128);
    assertClose(binomialCdf(1, 5, 0.3), 0.7 ** 5 + 5 * 0.3 * 0.7 ** 4, 1e-14);
    assert.equal(binomialCdf(3, 3, 0.4), 1);
    assert.equal(binomialCdf(-1, 3, 0.4), 0);
    // large k without underflow: P(Bin(1000, 0.5) <= 500) = 1/2 + P(=500)/2
    assertClose(binomialCdf(500, 1000, 0.5), 0.5 + 0.0252250181783608 / 2, 1e-12);
    // zero failures: 1 - delta^(1/k)
    assertClose(clopperPearsonUpper(0, 10, 0.1), 1 - 0.1 ** 0.1, 1e-12);
    assert.equal(clopperPearsonUpper(4, 4, 0.1), 1);
  });
});

describe('abstentionOutcome', () => {
  it('answers confidence >= threshold, and nothing for null', () => {
    assert.deepEqual(abstentionOutcome([0.2, 0.5, 0.5, 0.9], [false, false, true, true], 0.5), {
      n: 4,
      answered: 3,
      coverage: 0.75,
      risk: 0.25,
      selectiveRisk: 1 / 3,
    });
    assert.equal(abstentionOutcome([0.2], [true], null).answered, 0);
  });
});

describe('conformalSplits (the headline over random calibration/test splits)', () => {
  // confidences drawn uniformly, each answer right with probability = its confidence
  const rng = new Rng(7);
  const confidence = Array.from({ length: 2000 }, () => rng.uniform());
  const correct = confidence.map((c) => rng.uniform() < c);

  it('keeps the mean realised marginal risk at or below alpha, seeded and repeatable', () => {
    const a = conformalSplits(confidence, correct, { alpha: 0.1, seed: 3 });
    assert.equal(a.splits, 20);
    assert.equal(a.perSplit.length, 20);
    assert.equal(a.nCalibration, 1000);
    assert.equal(a.nTest, 1000);
    assert.equal(a.risk.count, 20);
    assert.ok(a.risk.mean! <= 0.1 + 0.01, `mean risk ${a.risk.mean}`);
    // the threshold is not trivial: the risk is close to alpha, and a fair share is answered
    assert.ok(a.risk.mean! > 0.07, `mean risk ${a.risk.mean}`);
    assert.ok(a.coverage.mean! > 0.3 && a.coverage.mean! < 0.9, `coverage ${a.coverage.mean}`);
    assert.ok(a.risk.std! > 0);
    assert.deepEqual(conformalSplits(confidence, correct, { alpha: 0.1, seed: 3 }), a);
    const predictions = confidence.map((c, i) => ({ confidence: c, correct: correct[i]! }));
    assert.deepEqual(conformalSplitsOfPredictions(predictions, { alpha: 0.1, seed: 3 }), a);
    assert.notDeepEqual(conformalSplits(confidence, correct, { alpha: 0.1, seed: 4 }).perSplit, a.perSplit);
  });

  it('selective: the error among answered exceeds alpha in at most about delta of the splits', () => {
    const s = conformalSplits(confidence, correct, {
      alpha: 0.1,
      guarantee: 'selective',
      delta: 0.1,
      seed: 1,
    });
    assert.equal(s.delta, 0.1);
    assert.ok(s.violations <= 0.2, `violations ${s.violations}`);
    assert.ok(s.risk.mean! <= 0.1, `mean selective risk ${s.risk.mean}`);
  });

  it('computes the spread by hand on a tiny set', () => {
    // every answer right: each split answers everything (threshold = lowest calibration confidence
    // or lower) with zero risk
    const s = conformalSplits([0.9, 0.8, 0.7, 0.6], [1, 1, 1, 1], { alpha: 0.45, splits: 3 });
    assert.deepEqual(s.risk, { mean: 0, std: 0, count: 3 });
    assert.throws(() => conformalSplits([0.9], [1], { alpha: 0.1 }), /leave no calibration or no test part/);
  });
});

describe('threshold files', () => {
  const dir = mkdtempSync(join(tmpdir(), 'attune-thr-'));
  after(() => rmSync(dir, { recursive: true, force: true }));

  it('round-trips a chosen threshold and rejects a bad file naming the field', () => {
    const path = join(dir, 'thr.json');
    const chosen = thresholdJSON(conformalThreshold(marginalC, marginalY, { alpha: 0.25 }), 'confidence');
    saveThreshold(path, chosen);
    assert.deepEqual(loadThreshold(path), chosen);
    assert.deepEqual(chosen.calibration, {
      n: 9,
      answered: 5,
      coverage: 5 / 9,
      risk: 1 / 9,
      selective_risk: 0.2,
    });
    writeFileSync(path, JSON.stringify({ ...chosen, threshold: 'high' }));
    assert.throws(
      () => loadThreshold(path),
      /thr.json: threshold: expected a finite number or null, found "high"/,
    );
    writeFileSync(path, JSON.stringify({ ...chosen, type: 'platt' }));
    assert.throws(() => loadThreshold(path), /type: expected 'abstention_threshold'/);
    writeFileSync(path, JSON.stringify({ ...chosen, guarantee: 'joint' }));
    assert.throws(() => loadThreshold(path), /guarantee: expected marginal or selective, found "joint"/);
    // abstain-on-everything files (threshold null) load
    saveThreshold(path, thresholdJSON(conformalThreshold(marginalC, marginalY, { alpha: 0.15 }), 'c'));
    assert.equal(loadThreshold(path).threshold, null);
  });
});
