/**
 * RAUQ, "Uncertainty-Aware Attention Heads: Efficient Unsupervised Uncertainty Quantification for
 * LLMs" (Vazhentsev et al. 2025), as LM-Polygraph's RAUQ estimator computes it. With l_i the
 * log-prob of answer token i and a^{l,h}_i the attention of answer token i on token i - 1 in head
 * h of layer l:
 *   h_l     = argmax_h mean_i a^{l,h}_i                      (the layer's uncertainty-aware head)
 *   c_l(0)  = exp(l_0)
 *   c_l(i)  = alpha exp(l_i) + (1 - alpha) a^{l,h_l}_i c_l(i - 1)
 *   u_l     = 1 - mean_i log c_l(i)
 *   RAUQ    = max_l u_l over the middle layers floor(L/3) .. ceil(2L/3) (clipped to L - 1)
 * alpha = 0.2 (LM-Polygraph's default for base models). LM-Polygraph's constant 1 is kept (it does
 * not change any ranking). The attention comes from one teacher-forced pass over prompt + answer
 * with the models' opt-in previous-token attention output.
 */
import { registerExtraPassScore } from './registry.ts';

/** RAUQ's alpha (probability weight of the recurrence), LM-Polygraph's default for base models. */
export const RAUQ_ALPHA = 0.2;

/** The layers RAUQ reads of an L-layer model: floor(L/3) .. ceil(2L/3), at most L - 1. */
export function rauqLayers(numLayers: number): number[] {
  const last = Math.min(Math.ceil((numLayers / 3) * 2), numLayers - 1);
  const out: number[] = [];
  for (let l = Math.floor(numLayers / 3); l <= last; l++) out.push(l);
  return out;
}

/**
 * RAUQ of an answer: `logprobs` (n), and per layer the [Hq * (n - 1)] previous-token attention of
 * answer tokens 1..n-1 by head (prevTokenAttention of uq/internals.ts).
 */
export function rauq(
  logprobs: readonly number[],
  prevTokenAttention: readonly Float64Array[],
  alpha = RAUQ_ALPHA,
): number {
  const n = logprobs.length;
  if (n === 0) return 0;
  let best = -Infinity;
  for (const layer of rauqLayers(prevTokenAttention.length)) {
    const a = prevTokenAttention[layer]!;
    const m = n - 1;
    const heads = m > 0 ? a.length / m : 1;
    let head = 0;
    let headMean = -Infinity;
    for (let h = 0; h < heads && m > 0; h++) {
      let s = 0;
      for (let i = 0; i < m; i++) s += a[h * m + i]!;
      if (s / m > headMean) {
        headMean = s / m;
        head = h;
      }
    }
    let c = Math.exp(logprobs[0]!);
    let logSum = Math.log(Math.max(c, Number.MIN_VALUE));
    for (let i = 1; i < n; i++) {
      c = alpha * Math.exp(logprobs[i]!) + (1 - alpha) * a[head * m + i - 1]! * c;
      logSum += Math.log(Math.max(c, Number.MIN_VALUE));
    }
    best = Math.max(best, 1 - logSum / n);
  }
  return best;
}

registerExtraPassScore({
  name: 'rauq',
  description: `max over middle layers of 1 - mean_i log c_i, c_i = alpha p_i + (1 - alpha) a_{i,i-1} c_{i-1} in the head attending most to the previous token (alpha ${RAUQ_ALPHA})`,
  needsAttention: true,
  computeExtra: (ctx) => rauq(ctx.tokens.logprobs, ctx.internals().prevTokenAttention!),
});
