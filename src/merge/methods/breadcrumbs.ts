/** `breadcrumbs` (Davari & Belilovsky, Model Breadcrumbs): drop the largest (gamma) and the smallest entries. */
import { z } from 'zod';
import { registerMergeMethod } from '../method.ts';
import { mergeParameters as p } from '../parameters.ts';
import { taskArithmetic } from '../task-arithmetic.ts';

const modelParameters = ['weight', 'density', 'gamma'] as const;

registerMergeMethod({
  name: 'breadcrumbs',
  description: 'remove the top-gamma outliers and keep the next density of each task vector, weighted sum',
  options: z.object({
    weight: p.weight(),
    density: p.density(),
    gamma: p.gamma(),
    normalize: p.normalize(false),
    lambda: p.lambda(),
    int8_mask: p.int8_mask(),
    rescale: p.rescale('none'),
    scope: p.scope(),
  }),
  modelParameters,
  bench: { modelParameters: { density: 0.8, gamma: 0.01 } },
  ...taskArithmetic({ sparsification: 'magnitude_outliers', consensus: false }, modelParameters),
});
