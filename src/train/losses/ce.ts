/** `ce`: mean negative log-likelihood of the supervised tokens over the optimizer step. */
import { z } from 'zod';
import { registerLoss, type TokenLoss } from './registry.ts';

/** Cross-entropy: L = -(1/N_step) sum_i logp_i; dL/dlogp_i = -1/N_step. */
export function crossEntropyLoss(): TokenLoss {
  return {
    name: 'ce',
    compute(terms, step) {
      const n = Math.max(1, step.stepTokens);
      const cLogp = new Float32Array(terms.count).fill(-1 / n);
      let sum = 0;
      for (let i = 0; i < terms.count; i++) sum -= terms.logp[i]!;
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
