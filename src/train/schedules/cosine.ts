/**
 * `cosine`: cosine decay to the floor after warmup (get_cosine_schedule_with_warmup, with
 * min_lr_rate as get_cosine_with_min_lr_schedule_with_warmup): max(0, 0.5 (1 + cos(pi * cycles * 2 *
 * progress))), progress = (step - warmup) / max(1, total - warmup); held after the end (HF's would
 * rise again).
 */
import { z } from 'zod';
import { minLrRatio, registerSchedule, warmupFactor, warmupSteps } from './registry.ts';

registerSchedule({
  name: 'cosine',
  description: 'cosine decay from lr to lr * min_lr_ratio after warmup',
  needsTotalSteps: true,
  options: z.object({
    warmup_steps: warmupSteps,
    min_lr_ratio: minLrRatio,
    num_cycles: z
      .number()
      .positive()
      .default(0.5)
      .describe('cosine waves over the decay (0.5: one half-wave)'),
  }),
  factor(step, total, o) {
    const warm = warmupFactor(step, o.warmup_steps);
    if (warm !== null) return warm;
    const s = Math.min(step, Math.max(total, o.warmup_steps));
    const progress = (s - o.warmup_steps) / Math.max(1, total - o.warmup_steps);
    const f = Math.max(0, 0.5 * (1 + Math.cos(Math.PI * o.num_cycles * 2 * progress)));
    return f * (1 - o.min_lr_ratio) + o.min_lr_ratio;
  },
});
