/** `ties` (Yadav et al., TIES-merging): trim each task vector by magnitude, elect signs, merge the agreeing entries. */
import { z } from 'zod';
import { registerMergeMethod } from '../method.ts';
import { mergeParameters as p } from '../parameters.ts';
import { taskArithmetic } from '../task-arithmetic.ts';

const modelParameters = ['weight', 'density'] as const;

registerMergeMethod({
  name: 'ties',
  description: 'keep the top-density task-vector entries by magnitude, elect signs, merge the agreeing ones',
  options: z.object({
    weight: p.weight(),
    density: p.density(),
    normalize: p.normalize(true),
    lambda: p.lambda(),
    int8_mask: p.int8_mask(),
    rescale: p.rescale('none'),
    scope: p.scope(),
    divisor: p.divisor(),
  }),
  modelParameters,
  bench: { modelParameters: { density: 0.5 } },
  ...taskArithmetic({ sparsification: 'magnitude', consensus: true }, modelParameters),
});
