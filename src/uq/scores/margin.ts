/** `margin`: 1 - mean_t (p1_t - p2_t), the top-1 minus top-2 probability gap turned into an uncertainty. */
import { registerUqScore } from './registry.ts';

registerUqScore({
  name: 'margin',
  description: '1 - mean_t (p1_t - p2_t): small gaps between the top two tokens = unsure',
  compute(t) {
    let gap = 0;
    for (let i = 0; i < t.top1.length; i++) gap += Math.exp(t.top1[i]!) - Math.exp(t.top2[i]!);
    return 1 - gap / t.top1.length;
  },
});
