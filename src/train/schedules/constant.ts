/** `constant`: the peak learning rate after warmup (get_constant_schedule_with_warmup). */
import { z } from 'zod';
import { registerSchedule, warmupFactor, warmupSteps } from './registry.ts';

registerSchedule({
  name: 'constant',
  description: 'constant learning rate after linear warmup',
  needsTotalSteps: false,
  options: z.object({ warmup_steps: warmupSteps }),
  factor: (step, _total, o) => warmupFactor(step, o.warmup_steps) ?? 1,
});
