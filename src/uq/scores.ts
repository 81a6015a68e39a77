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
import { type CausalLM, scoreNextTokens, type TokenStats } from '../models/index.ts';
import { fromArray, noGrad, scope } from '../tensor/index.ts';
import { type AnswerTokens, singlePassScores } from './scores/index.ts';

export { type AnswerTokens, quantile } from './scores/index.ts';

/** Names of the single-pass scores, in report order (the registry's). */
export function scoreNames(): string[] {
  return singlePassScores().map((s) => s.name);
}

/** The built-in single-pass score names (from the registry when this module loads). */
export const SCORE_NAMES: readonly string[] = scoreNames();

/** A score name. */
export type ScoreName = string;

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

/**
 * Every registered single-pass score of an answer (all NaN-free for a non-empty answer; empty
 * answer: 0); the divergence-from-uniform scores only when the answer carries sqrtMass.
 */
export function sequenceScores(t: AnswerTokens): Record<ScoreName, number> {
  const empty = t.logprobs.length === 0;
  const scores = singlePassScores().filter((s) => !s.needsDistribution || t.sqrtMass !== undefined);
  return Object.fromEntries(scores.map((s) => [s.name, empty ? 0 : s.compute(t)]));
}

/** The AnswerTokens of generated tokens' statistics (generate's tokenStats). */
export function tokensFromStats(stats: readonly TokenStats[]): AnswerTokens {
  return {
    logprobs: stats.map((s) => s.logprob),
    entropies: stats.map((s) => s.entropy),
    top1: stats.map((s) => s.top1),
    top2: stats.map((s) => s.top2),
    sqrtMass: stats.map((s) => s.sqrtMass),
    vocabSize: stats[0]?.vocabSize ?? 0,
  };
}

/** Confidence for calibration metrics: exp(mean log-prob) of the answer tokens (1 for an empty answer). */
export function sequenceConfidence(t: AnswerTokens): number {
  const n = t.logprobs.length;
  if (n === 0) return 1;
  return Math.exp(t.logprobs.reduce((s, v) => s + v, 0) / n);
}
