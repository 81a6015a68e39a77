/** `task_arithmetic` (Ilharco et al.): base + lambda * sum_i w_i (θ_i − base). */
import { z } from 'zod';
import { registerMergeMethod } from '../method.ts';
import { mergeParameters as p } from '../parameters.ts';
import { taskArithmetic } from '../task-arithmetic.ts';

const modelParameters = ['weight'] as const;

registerMergeMethod({
  name: 'task_arithmetic',
  description: 'base + lambda * the weighted sum of the task vectors θ_i − base',
  options: z.object({
    weight: p.weight(),
    normalize: p.normalize(false),
    lambda: p.lambda(),
    int8_mask: p.int8_mask(),
  }),
  modelParameters,
  ...taskArithmetic({ sparsification: null, consensus: false }, modelParameters),
});
