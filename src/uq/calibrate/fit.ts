/**
 * Fitting a calibrator for `attune calibrate fit`: Platt or isotonic on a score and correctness,
 * temperature on the token logits of the reference answers of held-out records.
 */
import { continuationIds } from '../../data/continuation.ts';
import type { Tokenizer } from '../../io/index.ts';
import type { CausalLM } from '../../models/index.ts';
import { UqInputError } from '../metrics/result.ts';
import { type EvalRecord, promptIdsOf } from '../predict.ts';
import { answerLogits } from './apply.ts';
import { fitIsotonic } from './isotonic.ts';
import { fitPlatt } from './platt.ts';
import type { Calibrator } from './serialize.ts';
import { fitTemperature, type TemperatureCalibrator } from './temperature.ts';

/** The calibrator kinds `calibrate fit --method` accepts. */
export const FIT_METHODS = ['temperature', 'platt', 'isotonic'] as const;
export type FitMethod = (typeof FIT_METHODS)[number];

/**
 * Fit Platt or isotonic regression of `correct` on `scores`. `kind` says which way the score runs:
 * 'confidence' (higher = surer) or 'uncertainty' (higher = less sure; isotonic then fits a
 * non-increasing map, Platt a negative slope).
 */
export function fitScoreCalibrator(
  method: 'platt' | 'isotonic',
  scores: ArrayLike<number>,
  correct: ArrayLike<boolean>,
  kind: 'confidence' | 'uncertainty',
): Calibrator {
  return method === 'platt'
    ? fitPlatt(scores, correct)
    : fitIsotonic(scores, correct, { increasing: kind === 'confidence' });
}

/**
 * The text whose tokens are scored as the reference answer of `record`: for a prompt that ends
 * without whitespace, one space and the answer (the `Q: ...\nA: answer` convention); for chat
 * messages (the template's generation prompt ends the prompt), the answer as is.
 */
export function referenceContinuation(record: EvalRecord): string {
  if (record.messages !== undefined) return record.answer;
  const prompt = record.prompt ?? '';
  return /\s$/.test(prompt) || /^\s/.test(record.answer) ? record.answer : ` ${record.answer}`;
}

/** A fitted temperature and how many records and reference tokens it was fitted on. */
export interface TemperatureFit {
  calibrator: TemperatureCalibrator;
  records: number;
  tokens: number;
}

/**
 * Fit a temperature on held-out records: each reference answer (`referenceContinuation`) is
 * teacher-forced after its prompt, and T minimises the mean NLL of its tokens under
 * softmax(logits / T) (`fitTemperature`). Records whose reference has no tokens are skipped.
 */
export function fitTemperatureOnRecords(
  model: CausalLM,
  tokenizer: Tokenizer,
  records: readonly EvalRecord[],
  options: { chatTemplate?: string; onProgress?: (done: number, total: number) => void } = {},
): TemperatureFit {
  const chunks: Float32Array[] = [];
  const labels: number[] = [];
  let vocabSize = 0;
  let used = 0;
  records.forEach((record, index) => {
    const { ids: promptIds, text } = promptIdsOf(record, tokenizer, options.chatTemplate);
    const contextIds = tokenizer.encode(text, { addSpecialTokens: false });
    const { ids: answerIds } = continuationIds(tokenizer, text, contextIds, referenceContinuation(record));
    if (answerIds.length > 0) {
      const logits = answerLogits(model, promptIds, answerIds);
      vocabSize = logits.vocabSize;
      chunks.push(logits.data);
      labels.push(...answerIds);
      used++;
    }
    options.onProgress?.(index + 1, records.length);
  });
  if (labels.length === 0) throw new UqInputError('fitTemperature: no reference answer has any token');
  const data = new Float32Array(labels.length * vocabSize);
  let offset = 0;
  for (const chunk of chunks) {
    data.set(chunk, offset);
    offset += chunk.length;
  }
  return { calibrator: fitTemperature({ data, vocabSize }, labels), records: used, tokens: labels.length };
}
