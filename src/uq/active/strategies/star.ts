/**
 * `star` ("Constraint LoRA with Dynamic Active Learning", METHODS.md §1): the uncertainty of the
 * greedy answer under the base model and under the adapted model with MC dropout, each min-max
 * normalised over the candidates, mixed `lambda_i U_adapted + (1 - lambda_i) U_base` with
 * `lambda_i = 0.1 (iter + 1)`: early rounds trust the base, later ones the adapter. (The calibration
 * constraint, weight decay on lora_B, is the LoRA option lora_b_weight_decay of the training config.)
 */
import { z } from 'zod';
import { starMix } from '../mix.ts';
import { registerStrategy } from '../strategy.ts';

registerStrategy({
  name: 'star',
  description: 'STAR: dynamic mix of base and MC-dropout adapted-model uncertainty (lambda = 0.1 (iter+1))',
  options: z.object({
    uncertainty: z
      .enum(['nll', 'entropy'])
      .default('nll')
      .describe('per-example uncertainty: sequence NLL of the greedy answer, or its summed token entropy'),
  }),
  scores: (ctx, o) => {
    const base = Float64Array.from(ctx.base.greedy(), (a) => (o.uncertainty === 'nll' ? a.nll : a.entropy));
    const adapted = ctx.current.mcDropout()[o.uncertainty];
    return starMix(base, adapted, ctx.iter);
  },
});
