/**
 * Scores from the answer tokens' log-probs l_t: MSP uncertainty -sum_t l_t, log-perplexity
 * -mean_t l_t, and the quantiles -quantile_a(l_t) (a = 0 is the least likely token: -min l_t).
 */
import { quantile, registerUqScore } from './registry.ts';

const sum = (xs: readonly number[]) => xs.reduce((s, v) => s + v, 0);

registerUqScore({
  name: 'msp',
  description: 'negative sequence log-prob -sum_t l_t',
  compute: (t) => -sum(t.logprobs),
});
registerUqScore({
  name: 'log_perplexity',
  description: 'negative mean token log-prob -mean_t l_t',
  compute: (t) => -sum(t.logprobs) / t.logprobs.length,
});
for (const q of [0, 25, 50]) {
  registerUqScore({
    name: `logprob_q${q}`,
    description: `-quantile_${q / 100}(l_t)${q === 0 ? ' (the least likely token)' : ''}`,
    compute: (t) => -quantile(t.logprobs, q / 100),
  });
}
