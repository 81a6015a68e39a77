/** Scores from the predictive distributions' entropies H_t: their mean and their maximum. */
import { registerUqScore } from './registry.ts';

registerUqScore({
  name: 'mean_entropy',
  description: 'mean token entropy mean_t H_t',
  compute: (t) => t.entropies.reduce((s, v) => s + v, 0) / t.entropies.length,
});
registerUqScore({
  name: 'max_entropy',
  description: 'maximum token entropy max_t H_t',
  compute: (t) => Math.max(...t.entropies),
});
