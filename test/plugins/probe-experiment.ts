/**
 * A toy bench experiment registered from outside src/, as docs/extending.md shows: per seed, a
 * LoRA r=2 run (its own training config override) evaluated as the row `lora-r2+ce`, with an
 * experiment-specific measurement `seed_value` (the seed itself, so its spread is known).
 */
import { registerExperiment } from '../../src/bench/experiment.ts';

/** How many times the probe trained (a rerun must reuse its runs). */
export const probeCalls = { train: 0 };

registerExperiment({
  name: 'probe',
  description: 'LoRA r=2 as its own row, with an extra measurement',
  run(ctx) {
    return [
      ctx.seeds.map((seed) => {
        probeCalls.train++;
        const trained = ctx.train('lora-r2', seed, { method: { name: 'lora', r: 2 } });
        return ctx.evaluate({ method: 'lora-r2', loss: 'ce' }, seed, trained, trained.cost, () => ({
          seed_value: seed,
        }));
      }),
    ];
  },
  headlines: [
    {
      paper: 'A probe',
      claim: 'the extra measurement grows with the seed',
      metric: 'extra.seed_value',
      sign: 1,
      kind: 'better',
      baseline: { method: 'lora-r2', loss: 'ce' },
      treatment: { method: 'lora-r2', loss: 'ce' },
    },
  ],
});
