/** `breadcrumbs_ties`: breadcrumbs' outlier-and-small-entry trimming, then TIES' sign election. */
import { z } from 'zod';
import { registerMergeMethod } from '../method.ts';
import { mergeParameters as p } from '../parameters.ts';
import { taskArithmetic } from '../task-arithmetic.ts';

const modelParameters = ['weight', 'density', 'gamma'] as const;

registerMergeMethod({
  name: 'breadcrumbs_ties',
  description: 'breadcrumbs trimming, then sign election over the weighted task vectors',
  options: z.object({
    weight: p.weight(),
    density: p.density(),
    gamma: p.gamma(),
    normalize: p.normalize(false),
    lambda: p.lambda(),
    int8_mask: p.int8_mask(),
    rescale: p.rescale('none'),
    scope: p.scope(),
    divisor: p.divisor(),
  }),
  modelParameters,
  ...taskArithmetic({ sparsification: 'magnitude_outliers', consensus: true }, modelParameters),
});
