/** A toy loss registered from outside src/ (docs/extending.md): `scale` times cross-entropy. */
import { z } from 'zod';
import { registerLoss } from '../../src/train/losses/index.ts';

registerLoss({
  name: 'scaled-ce',
  description: 'scale * cross-entropy',
  options: z.object({ scale: z.number().positive().default(1).describe('multiplier of the NLL') }),
  create: ({ scale }) => ({
    name: 'scaled-ce',
    compute(terms, step) {
      const n = Math.max(1, step.stepTokens);
      let nll = 0;
      for (let i = 0; i < terms.count; i++) nll -= terms.logp[i]!;
      return {
        value: (scale * nll) / n,
        parts: { nll: nll / n, scaled_nll: (scale * nll) / n },
        cLogp: new Float32Array(terms.count).fill(-scale / n),
        cEntropy: null,
        cTop1: null,
      };
    },
  }),
});
