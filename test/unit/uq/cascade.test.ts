import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import {
  type CascadeExample,
  deferralCurve,
  evaluateCascade,
  oracleCurve,
  randomAucDf,
} from '../../../src/uq/cascade.ts';

const ex = (logprobs: number[], s: number, l: number): CascadeExample => ({
  logprobs,
  smallQuality: s,
  largeQuality: l,
});

describe('cascade deferral curves', () => {
  const examples = [ex([-0.1], 1, 1), ex([-2], 0, 1), ex([-0.5], 1, 0), ex([-3], 0, 0)];
  it('computes quality at each deferral count (hand example)', () => {
    // confidence = mean logprob: order of deferral: -3 (gain 0), -2 (gain +1), -0.5 (gain -1), -0.1 (gain 0)
    const c = deferralCurve([-0.1, -2, -0.5, -3], examples);
    assert.deepEqual(c.rates, [0, 0.25, 0.5, 0.75, 1]);
    assert.deepEqual(c.quality, [0.5, 0.5, 0.75, 0.5, 0.5]);
    // trapezoid: 0.25 * (0.5 + 0.625 + 0.625 + 0.5) = 0.5625
    assert.ok(Math.abs(c.aucDf - 0.5625) < 1e-12);
  });
  it('averages tied confidences (expected value under random tie-breaking)', () => {
    const c = deferralCurve([0, 0, 0, 0], examples);
    // every step adds the mean gain 0
    assert.deepEqual(c.quality, [0.5, 0.5, 0.5, 0.5, 0.5]);
  });
  it('random is the straight line, oracle defers gains first', () => {
    assert.equal(randomAucDf(examples), 0.5);
    const o = oracleCurve(examples);
    assert.equal(Math.max(...o.quality), 0.75);
    assert.equal(o.quality[1], 0.75);
  });
  it('the fitted post-hoc rule beats random when low quantiles predict that the large model is better', () => {
    const make = (i: number): CascadeExample => {
      const hard = i % 2 === 0;
      return ex(hard ? [-0.2, -4 - (i % 3)] : [-0.2, -0.3 - (i % 5) * 0.01], hard ? 0 : 1, 1);
    };
    const all = Array.from({ length: 80 }, (_, i) => make(i));
    const r = evaluateCascade(all.slice(0, 40), all.slice(40), { seed: 1 });
    assert.ok(
      r.methods.post_hoc_mlp!.auc_df > r.random_auc_df + 0.05,
      JSON.stringify(r.methods.post_hoc_mlp!.auc_df),
    );
    assert.ok(r.methods.chow_quantile_0!.auc_df > r.random_auc_df);
    assert.ok(r.oracle_auc_df >= r.methods.post_hoc_mlp!.auc_df - 1e-12);
  });
});
