/**
 * `token_weight` (token-weighted SFT, TL-Training style): per-token loss weights by a rule. The
 * rule here weights the first `leading_tokens` trained tokens of each example (the answer's first
 * tokens, which decide it) by `leading_weight` and every other trained token by `weight`. Weights
 * reach the loss as `TokenTerms.weights`; `ce` computes -(1/N) sum_i w_i log p_i (N = trained tokens
 * of the step, so all-ones weights are plain CE). Several weight transforms multiply.
 */
import { z } from 'zod';
import { type BatchTransform, registerBatchTransform } from './registry.ts';

export interface TokenWeightOptions {
  weight: number;
  leading_tokens: number;
  leading_weight: number;
}

/** The rule-based token weighting transform. */
export function tokenWeight(options: TokenWeightOptions): BatchTransform {
  return {
    name: 'token_weight',
    setsWeights: true,
    apply(batch) {
      const { labels, exampleOf, positionOf } = batch;
      const n = labels.length;
      const weights = batch.weights ?? new Float32Array(n).fill(1);
      // first trained position of each example in this batch (an example never spans rows)
      const first = new Map<number, number>();
      for (let i = 0; i < n; i++) {
        if (labels[i]! === -100 || exampleOf[i]! < 0 || positionOf[i]! <= 0) continue;
        const e = exampleOf[i]!;
        const p = positionOf[i]!;
        if (!first.has(e) || p < first.get(e)!) first.set(e, p);
      }
      for (let i = 0; i < n; i++) {
        if (labels[i]! === -100 || exampleOf[i]! < 0 || positionOf[i]! <= 0) continue;
        const k = positionOf[i]! - first.get(exampleOf[i]!)!;
        weights[i] = weights[i]! * (k < options.leading_tokens ? options.leading_weight : options.weight);
      }
      batch.weights = weights;
    },
  };
}

registerBatchTransform({
  name: 'token_weight',
  description: 'token-weighted SFT: per-token loss weights by rule (the first response tokens vs the rest)',
  options: z.object({
    weight: z.number().nonnegative().default(1).describe('loss weight of a trained token'),
    leading_tokens: z
      .number()
      .int()
      .nonnegative()
      .default(0)
      .describe('how many first trained tokens of each example get leading_weight'),
    leading_weight: z.number().nonnegative().default(1).describe('loss weight of those first tokens'),
  }),
  create: (o) => tokenWeight(o),
});
