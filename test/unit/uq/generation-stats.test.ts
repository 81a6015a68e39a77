import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { createModel, generate, llamaConfigJson } from '../../../src/models/index.ts';
import { answerTokens } from '../../../src/uq/scores.ts';

describe('scores from generation', () => {
  it('per-token stats collected while generating equal a teacher-forced pass over prompt + answer', () => {
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
      { seed: 9 },
    );
    const prompt = [1, 5, 9, 2];
    const g = generate(model, prompt, { maxNewTokens: 6, returnStats: true });
    const tf = answerTokens(model, prompt, g.generatedIds);
    g.tokenStats!.forEach((s, i) => {
      assert.ok(Math.abs(s.logprob - tf.logprobs[i]!) < 1e-4, `logprob ${i}`);
      assert.ok(Math.abs(s.entropy - tf.entropies[i]!) < 1e-4, `entropy ${i}`);
      assert.ok(Math.abs(s.top1 - tf.top1[i]!) < 1e-4, `top1 ${i}`);
      assert.ok(Math.abs(s.top2 - tf.top2[i]!) < 1e-4, `top2 ${i}`);
    });
    // greedy: the chosen token is the argmax, so its log-prob is the top-1 log-prob
    for (const s of g.tokenStats!) assert.ok(Math.abs(s.logprob - s.top1) < 1e-6);
  });
});
