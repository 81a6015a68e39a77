/** `dare_linear` (Yu et al., DARE): drop task-vector entries at random, rescale, add. */
import { z } from 'zod';
import { registerMergeMethod } from '../method.ts';
import { mergeParameters as p } from '../parameters.ts';
import { taskArithmetic } from '../task-arithmetic.ts';

const modelParameters = ['weight', 'density'] as const;

registerMergeMethod({
  name: 'dare_linear',
  description: 'keep each task-vector entry with probability density (seeded), rescale, weighted sum',
  options: z.object({
    weight: p.weight(),
    density: p.density(),
    normalize: p.normalize(false),
    lambda: p.lambda(),
    int8_mask: p.int8_mask(),
    rescale: p.rescale('l1'),
  }),
  modelParameters,
  ...taskArithmetic({ sparsification: 'random', consensus: false }, modelParameters),
});
