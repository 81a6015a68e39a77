/**
 * Uncertainty scores of an answer from one teacher-forced pass (LM-Polygraph definitions). Every
 * score is an uncertainty: higher means less sure.
 *   msp              -sum_t l_t            (negative sequence log-prob; l_t = log p of answer token t)
 *   log_perplexity   -mean_t l_t
 *   mean_entropy     mean_t H_t            (entropy of the predictive distribution at token t)
 *   max_entropy      max_t H_t
 *   margin           1 - mean_t (p1_t - p2_t)   (top-1 minus top-2 probability)
 *   logprob_q<a>     -quantile_a(l_t)      (a = 0 is the least likely token: -min l_t)
 * The confidence used for calibration metrics is exp(mean_t l_t) (geometric-mean token probability).
 */
import { type CausalLM, scoreNextTokens } from '../models/index.ts';
import { fromArray, noGrad, scope } from '../tensor/index.ts';

/** Per-token quantities of the answer tokens. */
export interface AnswerTokens {
  /** log p of each answer token given everything before it. */
  logprobs: number[];
  /** Entropy (nats) of each predictive distribution. */
  entropies: number[];
  /** log-prob of the most likely token at each position. */
  top1: number[];
  /** log-prob of the second most likely token. */
  top2: number[];
}

/** Names of the single-pass scores, in report order. */
export const SCORE_NAMES = [
  'msp',
  'log_perplexity',
  'mean_entropy',
  'max_entropy',
  'margin',
  'logprob_q0',
  'logprob_q25',
  'logprob_q50',
] as const;
export type ScoreName = (typeof SCORE_NAMES)[number];

/** Quantile (linear interpolation between order statistics, as numpy's default) of `values`. */
export function quantile(values: readonly number[], alpha: number): number {
  if (values.length === 0) return Number.NaN;
  const sorted = [...values].sort((a, b) => a - b);
  const pos = alpha * (sorted.length - 1);
  const lo = Math.floor(pos);
  const hi = Math.ceil(pos);
  return sorted[lo]! + (sorted[hi]! - sorted[lo]!) * (pos - lo);
}

/**
 * Teacher-forced per-token quantities of `answerIds` given `promptIds` (one pass, fused head;
 * eval mode unless dropout is forced on the model).
 */
export function answerTokens(
  model: CausalLM,
  promptIds: readonly number[],
  answerIds: readonly number[],
): AnswerTokens {
  const ids = [...promptIds, ...answerIds];
  const T = ids.length;
  const P = promptIds.length;
  if (P === 0) throw new RangeError('answerTokens: the prompt has no tokens');
  return noGrad(() =>
    scope(() => {
      // only the answer tokens are scored (predicted from positions P-1 .. T-2)
      const labels = Int32Array.from(ids, (id, t) => (t < P ? -100 : id));
      const { result: r } = scoreNextTokens(
        model,
        fromArray(Int32Array.from(ids), [1, T], { dtype: 'i32' }),
        fromArray(labels, [1, T], { dtype: 'i32' }),
      );
      const pick = (a: ArrayLike<number>) => Array.from({ length: answerIds.length }, (_, i) => a[i]!);
      return {
        logprobs: pick(r.logp.data),
        entropies: pick(r.entropy.data),
        top1: pick(r.top1.data),
        top2: pick(r.top2.data),
      };
    }),
  );
}

/** The single-pass scores of an answer (all NaN-free for a non-empty answer; empty answer: 0). */
export function sequenceScores(t: AnswerTokens): Record<ScoreName, number> {
  const n = t.logprobs.length;
  if (n === 0) {
    return {
      msp: 0,
      log_perplexity: 0,
      mean_entropy: 0,
      max_entropy: 0,
      margin: 0,
      logprob_q0: 0,
      logprob_q25: 0,
      logprob_q50: 0,
    };
  }
  const sum = t.logprobs.reduce((s, v) => s + v, 0);
  const meanEntropy = t.entropies.reduce((s, v) => s + v, 0) / n;
  let marginSum = 0;
  for (let i = 0; i < n; i++) marginSum += Math.exp(t.top1[i]!) - Math.exp(t.top2[i]!);
  return {
    msp: -sum,
    log_perplexity: -sum / n,
    mean_entropy: meanEntropy,
    max_entropy: Math.max(...t.entropies),
    margin: 1 - marginSum / n,
    logprob_q0: -quantile(t.logprobs, 0),
    logprob_q25: -quantile(t.logprobs, 0.25),
    logprob_q50: -quantile(t.logprobs, 0.5),
  };
}

/** Confidence for calibration metrics: exp(mean log-prob) of the answer tokens (1 for an empty answer). */
export function sequenceConfidence(t: AnswerTokens): number {
  const n = t.logprobs.length;
  if (n === 0) return 1;
  return Math.exp(t.logprobs.reduce((s, v) => s + v, 0) / n);
}
