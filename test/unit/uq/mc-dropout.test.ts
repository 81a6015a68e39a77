import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { createModel, llamaConfigJson } from '../../../src/models/index.ts';
import { Dropout } from '../../../src/nn/index.ts';
import { mcDropoutScores } from '../../../src/uq/mc-dropout.ts';
import { answerTokens } from '../../../src/uq/scores.ts';

describe('MC dropout', () => {
  const model = createModel(
    {
      ...llamaConfigJson({
        vocabSize: 40,
        hiddenSize: 32,
        intermediateSize: 48,
        numLayers: 2,
        numHeads: 4,
        numKvHeads: 2,
      }),
      initializer_range: 0.4,
    },
    { seed: 2 },
  );
  model.eval();
  const prompt = [1, 4, 7];
  const answer = [9, 3, 12];
  it('is reproducible for a seed, differs across seeds, and restores the dropout state', () => {
    const drops = model.modules().filter((m): m is Dropout => m instanceof Dropout);
    const before = drops.map((d) => [d.offset, d.forcedRate]);
    const a = mcDropoutScores(model, prompt, answer, { passes: 5, rate: 0.2, seed: 1 });
    const b = mcDropoutScores(model, prompt, answer, { passes: 5, rate: 0.2, seed: 1 });
    const c = mcDropoutScores(model, prompt, answer, { passes: 5, rate: 0.2, seed: 2 });
    assert.deepEqual(a, b);
    assert.notDeepEqual(a, c);
    assert.deepEqual(
      drops.map((d) => [d.offset, d.forcedRate]),
      before,
    );
  });
  it('mutual information is positive with dropout and zero without; expected entropy equals the single pass at rate 0', () => {
    const on = mcDropoutScores(model, prompt, answer, { passes: 6, rate: 0.3, seed: 0 });
    assert.ok(on.mutual_information > 0, `${on.mutual_information}`);
    assert.ok(on.nll_variance > 0);
    const off = mcDropoutScores(model, prompt, answer, { passes: 3, rate: 0, seed: 0 });
    assert.ok(Math.abs(off.mutual_information) < 1e-9);
    assert.ok(off.nll_variance < 1e-9);
    const t = answerTokens(model, prompt, answer);
    const meanEntropy = t.entropies.reduce((s, v) => s + v, 0) / t.entropies.length;
    assert.ok(Math.abs(off.expected_entropy - meanEntropy) < 1e-4);
    assert.ok(Math.abs(off.nll_mean + t.logprobs.reduce((s, v) => s + v, 0)) < 1e-4);
  });
});
