/**
 * What the hidden-state and attention scores read of an answer: one teacher-forced pass over
 * prompt + answer (batch 1, no dropout) returning the mean of the final hidden states (after the
 * last norm, as LM-Polygraph's decoder embedding) over every position, and, when asked, each
 * layer's previous-token attention of the answer tokens (models/attention-probe.ts).
 */
import { type CausalLM, createAttentionProbe } from '../models/index.ts';
import { fromArray, noGrad, scope } from '../tensor/index.ts';

/** Hidden states and attention of one answer. */
export interface AnswerInternals {
  /** mean_t h_t over the sequence's positions (final hidden states), f64 [hidden]. */
  meanHidden: Float64Array;
  /**
   * Per layer, [Hq * (n - 1)] by head: the attention of answer token i (i = 1..n-1) on answer
   * token i - 1 (n = answer length). Undefined unless asked for.
   */
  prevTokenAttention?: Float64Array[];
}

/** Mean of the rows of hidden [1, T, d] (or [T, d]) in f64. */
function meanRows(data: ArrayLike<number>, T: number, d: number): Float64Array {
  const mean = new Float64Array(d);
  for (let t = 0; t < T; t++) for (let j = 0; j < d; j++) mean[j]! += data[t * d + j]!;
  for (let j = 0; j < d; j++) mean[j]! /= T;
  return mean;
}

/** The internals of `ids` (a whole sequence): the mean hidden state, attention from `attentionFrom` on. */
export function sequenceInternals(
  model: CausalLM,
  ids: readonly number[],
  options: { attentionFrom?: number } = {},
): AnswerInternals {
  if (ids.length === 0) throw new RangeError('sequenceInternals: the sequence has no tokens');
  const probe =
    options.attentionFrom !== undefined && options.attentionFrom >= 1
      ? createAttentionProbe(options.attentionFrom)
      : undefined;
  const meanHidden = noGrad(() =>
    scope(() => {
      const hidden = model.forwardHidden(fromArray(Int32Array.from(ids), [1, ids.length], { dtype: 'i32' }), {
        attentionProbe: probe,
      });
      return meanRows(hidden.data as Float32Array, ids.length, model.config.hiddenSize);
    }),
  );
  return { meanHidden, ...(probe ? { prevTokenAttention: probe.prevToken } : {}) };
}

/** The internals of `answerIds` after `promptIds` (attention of answer tokens 1..n-1 when `attention`). */
export function answerInternals(
  model: CausalLM,
  promptIds: readonly number[],
  answerIds: readonly number[],
  options: { attention?: boolean } = {},
): AnswerInternals {
  if (promptIds.length === 0) throw new RangeError('answerInternals: the prompt has no tokens');
  const ids = [...promptIds, ...answerIds];
  return sequenceInternals(model, ids, options.attention ? { attentionFrom: promptIds.length + 1 } : {});
}
