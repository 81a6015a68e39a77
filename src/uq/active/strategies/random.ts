/** `random`: uniform scores from the round's seed (the passive-learning baseline). */
import { z } from 'zod';
import { Rng } from '../../../tensor/rng.ts';
import { registerStrategy } from '../strategy.ts';

registerStrategy({
  name: 'random',
  description: 'uniformly random labels (the passive baseline)',
  options: z.object({}),
  scores: (ctx) => {
    const rng = new Rng(ctx.seed);
    return Float64Array.from(ctx.candidates, () => rng.uniform());
  },
});
