/**
 * `masked_thought` (Masked Thought, Chen et al. 2024): each *response* token of the input is
 * replaced, with probability `ratio`, by a mask id (default: the pad id, as the released code's
 * `mask_target_tokens` allows), while the labels stay unchanged — the model must predict the next
 * gold token from a partly masked reasoning prefix. Response tokens are those whose label is trained
 * (label != -100), the prompt is never masked; the first token of an example is never masked (it
 * has no predecessor in the example; with prompt masking it is the prompt's first token anyway).
 * Draws are keyed by (train.seed, step, example, position), so resume is exact.
 */
import { z } from 'zod';
import { ConfigError } from '../../errors.ts';
import { type BatchTransform, registerBatchTransform, tokenUniform } from './registry.ts';

export interface MaskedThoughtOptions {
  ratio: number;
  mask_token_id: number | null;
}

/** The Masked Thought transform with `options`. */
export function maskedThought(options: MaskedThoughtOptions): BatchTransform {
  const { ratio } = options;
  if (!(ratio >= 0 && ratio < 1))
    throw new ConfigError(`data.transforms masked_thought: ratio must be in [0, 1), found ${ratio}`);
  return {
    name: 'masked_thought',
    apply(batch, context) {
      const maskId = options.mask_token_id ?? context.padTokenId;
      const { inputIds, labels, exampleOf, positionOf } = batch;
      for (let i = 0; i < inputIds.length; i++) {
        if (labels[i]! === -100 || exampleOf[i]! < 0 || positionOf[i]! <= 0) continue;
        if (tokenUniform(context.seed, context.step, exampleOf[i]!, positionOf[i]!) < ratio)
          inputIds[i] = maskId;
      }
    },
  };
}

registerBatchTransform({
  name: 'masked_thought',
  description:
    'Masked Thought: replace a random fraction of response tokens in the input with a mask id; labels unchanged',
  options: z.object({
    ratio: z
      .number()
      .min(0)
      .lt(1)
      .default(0.2)
      .describe('probability that each response token of the input is masked'),
    mask_token_id: z
      .number()
      .int()
      .nonnegative()
      .nullable()
      .default(null)
      .describe('id written over masked tokens (default: the pad id, else EOS)'),
  }),
  create: (o) => maskedThought(o),
});
