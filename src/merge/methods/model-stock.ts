/** `model_stock` (Jang et al., Model Stock): interpolate the models' mean toward the base by their angle. */
import { z } from 'zod';
import { modelStockTensors } from '../combine.ts';
import { registerMergeMethod } from '../method.ts';
import { mergeParameters as p } from '../parameters.ts';

registerMergeMethod({
  name: 'model_stock',
  description: 'mean of the models, pulled toward the base by the ratio their pairwise angles give',
  options: z.object({ filter_wise: p.filter_wise() }),
  modelParameters: [],
  usesBase: true,
  bench: {},
  check(config, problem) {
    if (config.others < 2)
      problem(`model_stock needs at least two models besides the base; found ${config.others}`, ['models']);
  },
  mergeTensor(ctx) {
    const base = ctx.base();
    const thetas = ctx.entries.map((_, i) => ctx.model(i));
    modelStockTensors(base, thetas, ctx.params.global.filter_wise === true, ctx.rowLength, base);
    return base;
  },
});
