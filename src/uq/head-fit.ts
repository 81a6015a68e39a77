/**
 * Fitting an uncertainty head on held-out data (`attune uq fit-head`): the model answers every
 * `{prompt | messages, answer}` record greedily (as eval does), each answer is graded, and the mean
 * final hidden state of prompt + answer (the pass the head scores read at eval time) is its
 * feature vector. Empty answers are left out (their head scores are 0 at eval time).
 */
import type { Tokenizer } from '../io/index.ts';
import type { CausalLM } from '../models/index.ts';
import { fitHead, type Head, type HeadExample, type HeadFitOptions, type HeadKind } from './heads.ts';
import { answerInternals } from './internals.ts';
import { type EvalRecord, type Prediction, type PredictOptions, predict } from './predict.ts';

/** The graded answers of `records` with their features (the examples a head is fitted on). */
export function headExamplesOf(
  model: CausalLM,
  tokenizer: Tokenizer,
  records: readonly EvalRecord[],
  options: Pick<
    PredictOptions,
    'metric' | 'maxNewTokens' | 'stop' | 'eosTokenIds' | 'chatTemplate' | 'onProgress'
  > = {},
): { examples: HeadExample[]; empty: number } {
  const ids: { promptIds: readonly number[]; answerIds: readonly number[] }[] = [];
  const predictions = predict(model, tokenizer, [...records], {
    ...options,
    onAnswer: (index, pair) => {
      ids[index] = pair;
    },
  });
  return headExamplesFromPredictions(model, predictions, ids);
}

/**
 * The head examples of graded `predictions` whose prompt / answer ids `predict` reported through
 * `onAnswer` (one internals pass per non-empty answer; empty answers are counted and left out).
 */
export function headExamplesFromPredictions(
  model: CausalLM,
  predictions: readonly Prediction[],
  ids: readonly { promptIds: readonly number[]; answerIds: readonly number[] }[],
): { examples: HeadExample[]; empty: number } {
  const wasTraining = model.training;
  model.eval();
  try {
    const examples: HeadExample[] = [];
    let empty = 0;
    predictions.forEach((p, i) => {
      const { promptIds, answerIds } = ids[i]!;
      if (answerIds.length === 0) {
        empty++;
        return;
      }
      const { meanHidden } = answerInternals(model, promptIds, answerIds);
      // the raw exp(mean log-prob), even when a calibrator replaced the confidence
      examples.push({
        features: meanHidden,
        correct: p.correct,
        confidence: p.uncalibratedConfidence ?? p.confidence,
      });
    });
    return { examples, empty };
  } finally {
    model.train(wasTraining);
  }
}

/** Fit a head of `kind` on the graded answers of `records`. */
export function fitHeadOnRecords(
  model: CausalLM,
  tokenizer: Tokenizer,
  records: readonly EvalRecord[],
  kind: HeadKind,
  options: Parameters<typeof headExamplesOf>[3] & { fit?: HeadFitOptions } = {},
): { head: Head; n: number; correct: number; empty: number } {
  const { fit, ...predictOptions } = options;
  const { examples, empty } = headExamplesOf(model, tokenizer, records, predictOptions);
  if (examples.length < 2)
    throw new RangeError(
      `uq fit-head: need at least 2 non-empty answers, found ${examples.length} (${empty} empty of ${records.length})`,
    );
  return {
    head: fitHead(kind, examples, fit),
    n: examples.length,
    correct: examples.filter((e) => e.correct).length,
    empty,
  };
}
