/**
 * Teacher-forced scoring: per-token log-prob of each token given its prefix and the entropy of
 * that predictive distribution, through the fused LM head (never full-vocabulary logits for the
 * whole sequence).
 */
import { fromArray, noGrad, scope } from '../tensor/index.ts';
import type { CausalLM } from './causal-lm.ts';

export interface TokenScore {
  id: number;
  /** log p(token | previous tokens); null for the first token. */
  logprob: number | null;
  /** Entropy (nats) of the distribution that predicted this token; null for the first token. */
  entropy: number | null;
  /** log-prob of the most likely token at this position (null for the first). */
  top1Logprob: number | null;
  /** log-prob of the second most likely token (null for the first). */
  top2Logprob: number | null;
  /** Whether the token was the argmax prediction (null for the first). */
  isArgmax: boolean | null;
}

export interface SequenceScore {
  tokens: TokenScore[];
  /** Mean log-prob over scored tokens (0 when fewer than 2 tokens). */
  meanLogprob: number;
  sumLogprob: number;
  meanEntropy: number;
  maxEntropy: number;
}

/** Score `ids` (one sequence) with the model in eval mode. */
export function scoreIds(model: CausalLM, ids: readonly number[]): SequenceScore {
  if (ids.length === 0) throw new RangeError('score: no tokens to score');
  const T = ids.length;
  return noGrad(() =>
    scope(() => {
      const input = fromArray(Int32Array.from(ids), [1, T], { dtype: 'i32' });
      const labels = new Int32Array(T);
      for (let i = 0; i < T; i++) labels[i] = i + 1 < T ? ids[i + 1]! : -100;
      const hidden = model.forwardHidden(input);
      const r = model.scoreTokens(hidden, fromArray(labels, [T], { dtype: 'i32' }));
      const logp = r.logp.data;
      const ent = r.entropy.data;
      const top1 = r.top1.data;
      const top2 = r.top2.data;
      const tokens: TokenScore[] = [
        { id: ids[0]!, logprob: null, entropy: null, top1Logprob: null, top2Logprob: null, isArgmax: null },
      ];
      let sum = 0;
      let entSum = 0;
      let entMax = -Infinity;
      for (let i = 0; i + 1 < T; i++) {
        sum += logp[i]!;
        entSum += ent[i]!;
        entMax = Math.max(entMax, ent[i]!);
        tokens.push({
          id: ids[i + 1]!,
          logprob: logp[i]!,
          entropy: ent[i]!,
          top1Logprob: top1[i]!,
          top2Logprob: top2[i]!,
          isArgmax: r.argmax[i] === ids[i + 1],
        });
      }
      const n = T - 1;
      return {
        tokens,
        meanLogprob: n > 0 ? sum / n : 0,
        sumLogprob: sum,
        meanEntropy: n > 0 ? entSum / n : 0,
        maxEntropy: n > 0 ? entMax : 0,
      };
    }),
  );
}
