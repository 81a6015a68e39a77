/** Rényi and Fisher-Rao divergence from uniform (temperature 2), by hand. */
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { distributionStats } from '../../../src/models/index.ts';
import { fisherRaoFromUniform, renyiHalfFromUniform } from '../../../src/uq/scores/divergence.ts';
import { sequenceScores, tokensFromStats } from '../../../src/uq/scores.ts';

const close = (a: number, b: number, tol = 1e-12) => assert.ok(Math.abs(a - b) < tol, `${a} != ${b}`);

describe('divergence-from-uniform scores', () => {
  it('sqrtMass of softmax(logits / 2)', () => {
    // logits / 2 = [log 4, 0]: q = [0.8, 0.2], S = sqrt(0.8) + sqrt(0.2) = 3 / sqrt(5)
    close(distributionStats([2 * Math.log(4), 0], 0).sqrtMass, 3 / Math.sqrt(5));
    close(distributionStats([5, 5, 5, 5], 1).sqrtMass, 2); // uniform over 4: 4 sqrt(1/4)
  });
  it('Rényi 1/2 and Fisher-Rao of q = [0.8, 0.2] against uniform over 2', () => {
    const s = 3 / Math.sqrt(5);
    // D = -2 log sum sqrt(q_i / 2) = -2 log(3 / sqrt 10) = 0.1053605
    close(renyiHalfFromUniform(s, 2), 0.1053605, 1e-7);
    // F = (2/pi) arccos(3 / sqrt 10) = (2/pi) atan(1/3) = 0.2048328
    close(fisherRaoFromUniform(s, 2), 0.2048328, 1e-7);
    // the uniform distribution is at distance 0; a one-hot one at (2/pi) arccos(1/sqrt V)
    close(renyiHalfFromUniform(2, 4), 0);
    close(fisherRaoFromUniform(2, 4), 0);
    close(fisherRaoFromUniform(1, 4), (2 / Math.PI) * Math.acos(0.5));
  });
  it('the scores are the negated means over the answer tokens, only with the distributions', () => {
    const stats = [distributionStats([2 * Math.log(4), 0], 0), distributionStats([3, 3], 1)];
    const scores = sequenceScores(tokensFromStats(stats));
    close(scores.renyi_divergence!, -(0.1053605 + 0) / 2, 1e-7);
    close(scores.fisher_rao!, -(0.2048328 + 0) / 2, 1e-7);
    const fused = sequenceScores({ logprobs: [-1], entropies: [1], top1: [-1], top2: [-2] });
    assert.ok(!('renyi_divergence' in fused) && 'msp' in fused);
  });
});
