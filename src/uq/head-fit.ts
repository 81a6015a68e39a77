/**
 * Fitting an uncertainty head on held-out data (`attune uq fit-head`): the model answers every
 * `{prompt | messages, answer}` record greedily (as eval does), each answer is graded, and the mean
 * final hidden state of prompt + answer (the pass the head scores read at eval time) is its
 * feature vector. Empty answers are left out (their head scores are 0 at eval time).
 */
import type { Tokenizer } from '../io/index.ts';
import { type CausalLM, generateBatch } from '../models/index.ts';
import { type GradeMetric, grade } from './grade.ts';
import { fitHead, type Head, type HeadExample, type HeadFitOptions, type HeadKind } from './heads.ts';
import { answerInternals } from './internals.ts';
import { type EvalRecord, keptAnswer, type Prediction, type PredictOptions, predict } from './predict.ts';

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

/** One tokenized question: its prompt ids and the gold answer's text. */
export interface TokenizedQuestion {
  promptIds: readonly number[];
  reference: string;
}

/**
 * The questions of tokenized training examples (what `attune train` reads): the prompt is every
 * token before the first trained label, the gold answer the decoded trained tokens that follow it
 * (special tokens skipped, trimmed). Examples with nothing trained, or nothing before it, are
 * refused naming their position.
 */
export function questionsOfExamples(
  examples: readonly { inputIds: Int32Array; labels: Int32Array }[],
  tokenizer: Pick<Tokenizer, 'decode'>,
): TokenizedQuestion[] {
  return examples.map((e, i) => {
    const first = e.labels.findIndex((l) => l !== -100);
    if (first < 1)
      throw new RangeError(
        `example ${i + 1}: ${first < 0 ? 'has no answer tokens' : 'has no prompt before its answer'} (a head is fitted on {prompt, completion} or {messages} records)`,
      );
    let end = first;
    while (end < e.labels.length && e.labels[end] !== -100) end++;
    const reference = tokenizer.decode(e.inputIds.subarray(first, end), { skipSpecialTokens: true }).trim();
    return { promptIds: Array.from(e.inputIds.subarray(0, first)), reference };
  });
}

/**
 * The graded greedy answers of `questions` with their features, as `headExamplesOf` does for eval
 * records: `batch` prompts decoded together, each answer graded against its reference by `metric`,
 * features = the mean final hidden state of prompt + answer; empty answers are counted and left out.
 */
export function headExamplesOfQuestions(
  model: CausalLM,
  tokenizer: Tokenizer,
  questions: readonly TokenizedQuestion[],
  options: {
    metric?: GradeMetric;
    maxNewTokens?: number;
    stop?: readonly string[];
    batch?: number;
    onProgress?: (done: number, total: number) => void;
  } = {},
): { examples: HeadExample[]; empty: number; correct: number } {
  const wasTraining = model.training;
  model.eval();
  try {
    const batch = options.batch ?? 8;
    const examples: HeadExample[] = [];
    let empty = 0;
    let correct = 0;
    for (let start = 0; start < questions.length; start += batch) {
      const chunk = questions.slice(start, start + batch);
      const answers = generateBatch(
        model,
        chunk.map((q) => ({ promptIds: [...q.promptIds] })),
        {
          maxNewTokens: options.maxNewTokens ?? 32,
          eosTokenIds: tokenizer.eosTokenIds,
          stopStrings: options.stop ?? [],
          tokenizer,
          returnStats: true,
          temperature: 0,
        },
      );
      answers.forEach((g, k) => {
        const q = chunk[k]!;
        const kept = keptAnswer(g);
        if (kept.ids.length === 0) {
          empty++;
          return;
        }
        const right = grade(kept.text, q.reference, options.metric ?? 'exact');
        if (right) correct++;
        examples.push({
          features: answerInternals(model, q.promptIds, kept.ids).meanHidden,
          correct: right,
          // exp(mean log-prob), as predict's raw confidence
          confidence: Math.exp(kept.logprobs.reduce((a, v) => a + v, 0) / kept.logprobs.length),
        });
      });
      options.onProgress?.(Math.min(start + batch, questions.length), questions.length);
    }
    return { examples, empty, correct };
  } finally {
    model.train(wasTraining);
  }
}
