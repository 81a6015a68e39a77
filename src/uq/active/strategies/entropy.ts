/** `entropy` (max-entropy): the current model's summed token entropy over its greedy answer. */
import { z } from 'zod';
import { registerStrategy } from '../strategy.ts';

registerStrategy({
  name: 'entropy',
  description: "max-entropy: the current model's summed token entropy of its greedy answer",
  options: z.object({}),
  scores: (ctx) => Float64Array.from(ctx.current.greedy(), (a) => a.entropy),
});
