import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { grade, normalizeAnswer, rougeL } from '../../../src/uq/grade.ts';
import { quantile, sequenceConfidence, sequenceScores } from '../../../src/uq/scores.ts';

describe('grading', () => {
  it('normalises like SQuAD', () => {
    assert.equal(normalizeAnswer('  The  Oslo, Norway! '), 'oslo norway');
  });
  it('exact, contains and rougeL', () => {
    assert.equal(grade(' Oslo.', 'oslo', 'exact'), true);
    assert.equal(grade('Oslo city', 'Oslo', 'exact'), false);
    assert.equal(grade('It is Oslo city', 'Oslo', 'contains'), true);
    assert.equal(grade('Osloville', 'Oslo', 'contains'), false);
    assert.ok(Math.abs(rougeL('w x y z', 'x y q') - (2 * 0.5 * (2 / 3)) / (0.5 + 2 / 3)) < 1e-12);
    assert.equal(grade('born in oslo', 'oslo norway', 'rougeL'), false);
  });
});

describe('sequence scores', () => {
  it('match the LM-Polygraph definitions on a hand example', () => {
    const t = {
      logprobs: [-1, -3],
      entropies: [0.5, 1.5],
      top1: [Math.log(0.5), Math.log(0.6)],
      top2: [Math.log(0.3), Math.log(0.1)],
    };
    const s = sequenceScores(t);
    assert.equal(s.msp, 4);
    assert.equal(s.log_perplexity, 2);
    assert.equal(s.mean_entropy, 1);
    assert.equal(s.max_entropy, 1.5);
    assert.ok(Math.abs(s.margin - (1 - (0.2 + 0.5) / 2)) < 1e-12);
    assert.equal(s.logprob_q0, 3);
    assert.equal(s.logprob_q50, 2);
    assert.ok(Math.abs(sequenceConfidence(t) - Math.exp(-2)) < 1e-15);
  });
  it('quantile interpolates like numpy', () => {
    assert.equal(quantile([1, 2, 3, 4], 0.5), 2.5);
    assert.equal(quantile([4, 1, 3, 2], 0.25), 1.75);
  });
});
