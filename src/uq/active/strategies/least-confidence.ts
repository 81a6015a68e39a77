/** `least_confidence`: 1 - the current model's sequence probability of its greedy answer. */
import { z } from 'zod';
import { registerStrategy } from '../strategy.ts';

registerStrategy({
  name: 'least_confidence',
  description: "least confidence: 1 - the current model's probability of its greedy answer",
  options: z.object({}),
  scores: (ctx) => Float64Array.from(ctx.current.greedy(), (a) => 1 - Math.exp(-a.nll)),
});
