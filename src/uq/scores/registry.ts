/**
 * The single-pass uncertainty-score registry (LM-Polygraph definitions; every score is an
 * uncertainty: higher = less sure). A score is computed from the per-token quantities of an answer
 * (log-prob, entropy, top-1 / top-2 log-probs); `attune eval`, the reports and `attune bench
 * methods` report every registered score. A new score is one file with one `registerUqScore` call
 * (imported by scores/index.ts).
 */
import { z } from 'zod';
import { Registry, type RegistryEntry } from '../../config/registry.ts';

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

/** A registered single-pass score. */
export interface UqScore extends RegistryEntry {
  /** The score of a non-empty answer (an empty answer scores 0). */
  compute(t: AnswerTokens): number;
}

/** Every single-pass score, in report order. */
export const uqScores = new Registry<UqScore>('uncertainty score', 'score');

/** Register a single-pass score (no options today). */
export function registerUqScore(score: Omit<UqScore, 'options'>): void {
  uqScores.register({ ...score, options: z.object({}) });
}

/** Quantile (linear interpolation between order statistics, as numpy's default) of `values`. */
export function quantile(values: readonly number[], alpha: number): number {
  if (values.length === 0) return Number.NaN;
  const sorted = [...values].sort((a, b) => a - b);
  const pos = alpha * (sorted.length - 1);
  const lo = Math.floor(pos);
  const hi = Math.ceil(pos);
  return sorted[lo]! + (sorted[hi]! - sorted[lo]!) * (pos - lo);
}
