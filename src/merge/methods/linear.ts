/** `linear`: the weighted mean of the models (mergekit's linear; model soups' uniform soup). */
import { z } from 'zod';
import { linearCombine } from '../combine.ts';
import { registerMergeMethod } from '../method.ts';
import { mergeParameters as p } from '../parameters.ts';

registerMergeMethod({
  name: 'linear',
  description: 'weighted mean of the models: sum_i w_i θ_i, divided by sum_i w_i with normalize',
  options: z.object({ weight: p.weight(), normalize: p.normalize(true) }),
  modelParameters: ['weight'],
  usesBase: false,
  bench: {},
  checkTensors(params) {
    const zeroSums = [...params]
      .filter(([, p]) => p.global.normalize === true && p.models.weight!.reduce((a, b) => a + b, 0) === 0)
      .map(([name]) => `'${name}'`);
    if (zeroSums.length === 0) return [];
    return [
      `the weights sum to 0 for ${zeroSums.join(', ')}: linear with normalize: true would divide by 0 (set normalize: false or change the weights)`,
    ];
  },
  mergeTensor(ctx) {
    const thetas = ctx.entries.map((_, i) => ctx.model(i));
    linearCombine(thetas, ctx.params.models.weight!, ctx.params.global.normalize === true, thetas[0]!);
    return thetas[0]!;
  },
});
