/**
 * Divergences of the predictive distributions from uniform (LM-Polygraph's RenyiNeg and FisherRao,
 * at its temperature 2: q_t = softmax(logits_t / 2), V the vocabulary, S_t = sum_i sqrt(q_t,i)):
 *   Rényi (alpha 1/2)  D_t = 1/(alpha - 1) log sum_i q_i^alpha (1/V)^(1 - alpha) = log V - 2 log S_t
 *   Fisher-Rao         F_t = (2/pi) arccos(S_t / sqrt V)   (the geodesic distance, scaled to [0, 1])
 * Both grow as q_t gets peaked, so the scores (uncertainties, higher = less sure) are their negated
 * means over the answer tokens; LM-Polygraph reports mean_t D_t - 2 log V and mean_t F_t as they are.
 */
import { type AnswerTokens, registerUqScore } from './registry.ts';

const mean = (xs: readonly number[]) => xs.reduce((s, v) => s + v, 0) / xs.length;

/** Rényi divergence of order 1/2 from uniform, from S = sum sqrt(q) and the vocabulary size. */
export function renyiHalfFromUniform(sqrtMass: number, vocabSize: number): number {
  return Math.log(vocabSize) - 2 * Math.log(sqrtMass);
}

/** Fisher-Rao distance from uniform scaled to [0, 1], from S = sum sqrt(q) and the vocabulary size. */
export function fisherRaoFromUniform(sqrtMass: number, vocabSize: number): number {
  // the Bhattacharyya coefficient, clamped against rounding just above 1
  return (2 / Math.PI) * Math.acos(Math.min(1, sqrtMass / Math.sqrt(vocabSize)));
}

const perToken = (t: AnswerTokens, f: (s: number, v: number) => number) =>
  t.sqrtMass!.map((s) => f(s, t.vocabSize!));

registerUqScore({
  name: 'renyi_divergence',
  description: '-mean_t D_1/2(q_t || uniform), q_t = softmax(logits_t / 2): near-uniform = unsure',
  needsDistribution: true,
  compute: (t) => -mean(perToken(t, renyiHalfFromUniform)),
});
registerUqScore({
  name: 'fisher_rao',
  description: '-mean_t (2/pi) arccos(sum_i sqrt(q_t,i / V)), q_t = softmax(logits_t / 2)',
  needsDistribution: true,
  compute: (t) => -mean(perToken(t, fisherRaoFromUniform)),
});
