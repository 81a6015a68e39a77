/**
 * `perplexity` (POINTS-style perplexity filtering): keep the candidates with the lowest perplexity
 * under the reference model, exp(mean NLL) of the tokens fine-tuning would train (the completion
 * of a {prompt, completion} record; every token after the first of a {text} record).
 */
import { z } from 'zod';
import { meanNll } from './record-model.ts';
import { registerSelectionMethod } from './registry.ts';

/** Per candidate: mean NLL; the score is its negative (low perplexity first). */
registerSelectionMethod({
  name: 'perplexity',
  description: 'keep the lowest-perplexity records under the reference model (POINTS)',
  options: z.object({}),
  needsTarget: false,
  score(input) {
    const n = input.candidates.length;
    const nll = new Float64Array(n);
    input.candidates.forEach((example, i) => {
      nll[i] = meanNll(input.model, example);
      input.onProgress?.('perplexity', i + 1, n);
    });
    return {
      scores: nll.map((v) => -v),
      columns: { perplexity: nll.map(Math.exp) },
    };
  },
});
