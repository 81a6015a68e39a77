/** `ce`: mean negative log-likelihood of the supervised tokens over the optimizer step. */
import { z } from 'zod';
import { registerLoss, type TokenLoss } from './registry.ts';

/**
 * Cross-entropy: L = -(1/N_step) sum_i w_i logp_i; dL/dlogp_i = -w_i/N_step, with per-token weights
 * w_i from `terms.weights` (a `token_weight` transform) and w_i = 1 without them.
 */
export function crossEntropyLoss(): TokenLoss {
  return {
    name: 'ce',
    acceptsWeights: true,
    compute(terms, step) {
      const n = Math.max(1, step.stepTokens);
      const w = terms.weights;
      const cLogp = new Float32Array(terms.count);
      let sum = 0;
      for (let i = 0; i < terms.count; i++) {
        const wi = w ? w[i]! : 1;
        cLogp[i] = -wi / n;
        sum -= wi * terms.logp[i]!;
      }
      return { value: sum / n, parts: { nll: sum / n }, cLogp, cEntropy: null, cTop1: null };
    },
  };
}

registerLoss({
  name: 'ce',
  description: 'cross-entropy (mean negative log-likelihood of the supervised tokens)',
  options: z.object({}),
  create: () => crossEntropyLoss(),
});
