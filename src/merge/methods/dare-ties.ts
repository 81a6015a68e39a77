/** `dare_ties`: DARE's random drops, then TIES' sign election. */
import { z } from 'zod';
import { registerMergeMethod } from '../method.ts';
import { mergeParameters as p } from '../parameters.ts';
import { taskArithmetic } from '../task-arithmetic.ts';

const modelParameters = ['weight', 'density'] as const;

registerMergeMethod({
  name: 'dare_ties',
  description: 'DARE random drops with rescale, then sign election over the weighted task vectors',
  options: z.object({
    weight: p.weight(),
    density: p.density(),
    normalize: p.normalize(false),
    lambda: p.lambda(),
    int8_mask: p.int8_mask(),
    rescale: p.rescale('l1'),
    divisor: p.divisor(),
  }),
  modelParameters,
  bench: { modelParameters: { density: 0.5 } },
  ...taskArithmetic({ sparsification: 'random', consensus: true }, modelParameters),
});
