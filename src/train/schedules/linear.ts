/**
 * `linear`: linear decay to the floor after warmup (get_linear_schedule_with_warmup):
 * max(0, (total - step) / max(1, total - warmup)), then f (1 - floor) + floor; held after the end.
 */
import { z } from 'zod';
import { minLrRatio, registerSchedule, warmupFactor, warmupSteps } from './registry.ts';

registerSchedule({
  name: 'linear',
  description: 'linear decay from lr to lr * min_lr_ratio after warmup',
  needsTotalSteps: true,
  options: z.object({ warmup_steps: warmupSteps, min_lr_ratio: minLrRatio }),
  factor(step, total, o) {
    const warm = warmupFactor(step, o.warmup_steps);
    if (warm !== null) return warm;
    const s = Math.min(step, Math.max(total, o.warmup_steps));
    const f = Math.max(0, (total - s) / Math.max(1, total - o.warmup_steps));
    return f * (1 - o.min_lr_ratio) + o.min_lr_ratio;
  },
});
