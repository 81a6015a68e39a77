/** Cascades with graded quality (ROUGE-L) and the post-hoc rule's `diff` target, on hand data. */
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import {
  answerQuality,
  type CascadeExample,
  cascadeExamples,
  deferralCurve,
  evaluateCascade,
  fitPostHocRule,
  oracleCurve,
  postHocTargetValue,
  randomAucDf,
} from '../../../src/uq/cascade.ts';

const ex = (logprobs: number[], s: number, l: number): CascadeExample => ({
  logprobs,
  smallQuality: s,
  largeQuality: l,
});
const close = (a: number, b: number, what: string) =>
  assert.ok(Math.abs(a - b) < 1e-12, `${what}: ${a} vs ${b}`);

describe('cascade with graded quality', () => {
  // graded qualities (e.g. ROUGE-L F): small [0.5, 0.2, 1, 0], large [1, 0.8, 0.5, 0]
  const examples = [ex([-1], 0.5, 1), ex([-2], 0.2, 0.8), ex([-0.1], 1, 0.5), ex([-3], 0, 0)];
  it('averages graded quality along the deferral curve (hand-computed AUC-DF)', () => {
    // deferral order (lowest confidence first): #3 (gain 0), #1 (+0.6), #0 (+0.5), #2 (-0.5)
    // quality: 1.7/4 = 0.425, 0.425, 0.575, 0.7, 0.575
    const c = deferralCurve([-1, -2, -0.1, -3], examples);
    [0.425, 0.425, 0.575, 0.7, 0.575].forEach((q, i) => {
      close(c.quality[i]!, q, `quality[${i}]`);
    });
    // trapezoid: 0.25 * (0.425 + 0.5 + 0.6375 + 0.6375) = 0.55
    close(c.aucDf, 0.55, 'AUC-DF');
  });
  it('random is the mean of the two mean qualities; the oracle defers the largest gains first', () => {
    close(randomAucDf(examples), (0.425 + 0.575) / 2, 'random');
    const o = oracleCurve(examples);
    // gains in oracle order: +0.6, +0.5, 0, -0.5 -> 0.425, 0.575, 0.7, 0.7, 0.575
    [0.425, 0.575, 0.7, 0.7, 0.575].forEach((q, i) => {
      close(o.quality[i]!, q, `oracle[${i}]`);
    });
    close(o.aucDf, 0.25 * (0.5 + 0.6375 + 0.7 + 0.6375), 'oracle AUC-DF');
  });
  it('rougeL quality is the ROUGE-L F of the answer vs the gold; exact is 0/1; unanswerable is 0', () => {
    const p = { logprobs: [-1], correct: false, answer: 'the cat sat', reference: 'Cat sat on mat.' };
    // normalised words: [cat, sat] vs [cat, sat, on, mat]: LCS 2, P 1, R 0.5, F 2/3
    close(answerQuality(p, 'rougeL'), 2 / 3, 'rougeL');
    assert.equal(answerQuality(p, 'exact'), 0);
    assert.equal(answerQuality({ ...p, extra: { answerable: false } }, 'rougeL'), 0);
    const [e] = cascadeExamples([p], [{ ...p, answer: 'cat sat on mat', correct: true }], 'rougeL');
    close(e!.smallQuality, 2 / 3, 'small');
    assert.equal(e!.largeQuality, 1);
  });
});

describe('post-hoc deferral targets', () => {
  // group A (confident small answers): the large model is always a little better (+0.1);
  // group B (unsure): the large model is much better half the time (+1), else worse (-0.2).
  // better = P(large better): A 1 > B 0.5, so it defers A first; diff = E[gain]: B 0.4 > A 0.1.
  const make = (i: number): CascadeExample =>
    i % 2 === 0 ? ex([-0.2, -0.3], 0.5, 0.6) : i % 4 === 1 ? ex([-3, -4], 0, 1) : ex([-3, -4], 0.6, 0.4);
  const all = Array.from({ length: 48 }, (_, i) => make(i));
  it('the targets are 1{q_large > q_small} and q_large - q_small', () => {
    assert.equal(postHocTargetValue(ex([], 0.5, 0.6), 'better'), 1);
    assert.equal(postHocTargetValue(ex([], 0.6, 0.4), 'better'), 0);
    close(postHocTargetValue(ex([], 0.6, 0.4), 'diff'), -0.2, 'diff');
  });
  it('better ranks the always-slightly-better group first, diff the larger expected gain', () => {
    const a = [-0.2, -0.3];
    const b = [-3, -4];
    const better = fitPostHocRule(all, { seed: 0, target: 'better' });
    const diff = fitPostHocRule(all, { seed: 0, target: 'diff' });
    assert.ok(better.deferralScore(a) > better.deferralScore(b));
    assert.ok(diff.deferralScore(b) > diff.deferralScore(a));
    // the regression recovers the mean gains 0.1 and 0.4
    assert.ok(Math.abs(diff.deferralScore(a) - 0.1) < 0.05, `${diff.deferralScore(a)}`);
    assert.ok(Math.abs(diff.deferralScore(b) - 0.4) < 0.05, `${diff.deferralScore(b)}`);
  });
  it('on this case the diff target gives the higher AUC-DF (it defers B, the larger mean gain, first)', () => {
    const test = all.slice(0, 24);
    const rb = evaluateCascade(all, test, { seed: 0, target: 'better' });
    const rd = evaluateCascade(all, test, { seed: 0, target: 'diff' });
    assert.equal(rb.post_hoc_target, 'better');
    assert.equal(rd.post_hoc_target, 'diff');
    // test: 12 of A (gain 0.1 each), 12 of B (mean gain 0.4); small mean quality 0.4
    // diff defers B then A: curve rises 0.4/24 per step over 12 steps, then 0.1/24
    const n = 24;
    const qs = (12 * 0.5 + 6 * 0 + 6 * 0.6) / n;
    const expected = (gains: number[]) => {
      const q = [qs];
      for (const g of gains) q.push(q.at(-1)! + g / n);
      let auc = 0;
      for (let k = 1; k <= n; k++) auc += (q[k]! + q[k - 1]!) / 2 / n;
      return auc;
    };
    const bFirst = [...Array(12).fill(0.4), ...Array(12).fill(0.1)];
    const aFirst = [...Array(12).fill(0.1), ...Array(12).fill(0.4)];
    close(rd.methods.post_hoc_mlp!.auc_df, expected(bFirst), 'diff AUC-DF');
    close(rb.methods.post_hoc_mlp!.auc_df, expected(aFirst), 'better AUC-DF');
    assert.ok(rd.methods.post_hoc_mlp!.auc_df > rb.methods.post_hoc_mlp!.auc_df);
    // the reported reference curves
    assert.deepEqual(rd.random_curve.rates, [0, 1]);
    close(rd.random_curve.quality[0]!, qs, 'random start');
    assert.equal(rd.oracle_curve.quality.length, n + 1);
  });
});
