/**
 * Applying a calibrator file to one answer: a confidence calibrator maps the score it was fitted on
 * ("confidence" = exp mean log-prob, or a named uncertainty score); temperature recomputes the
 * confidence from the answer tokens' logits divided by T.
 */
import { UsageError } from '../../errors.ts';
import type { CausalLM } from '../../models/index.ts';
import { fromArray, noGrad, scope, slice } from '../../tensor/index.ts';
import { calibrators } from './registry.ts';
import type { Calibrator, CalibratorFile } from './serialize.ts';
import type { TemperatureCalibrator } from './temperature.ts';

/** Token logits of the answer: `tokens` rows of `vocabSize` values (row t predicts answer token t). */
export interface AnswerLogits {
  data: Float32Array;
  vocabSize: number;
}

/** The score a calibrator file maps ("confidence" when the file does not say). */
export function calibratorScore(file: CalibratorFile): string {
  return file.fittedOn?.score ?? 'confidence';
}

/**
 * Full logits at the answer positions of `promptIds + answerIds` (one teacher-forced pass, no grad):
 * row t is the distribution that predicts answerIds[t].
 */
export function answerLogits(
  model: CausalLM,
  promptIds: readonly number[],
  answerIds: readonly number[],
): AnswerLogits {
  const P = promptIds.length;
  if (P === 0) throw new RangeError('answerLogits: the prompt has no tokens');
  const ids = [...promptIds, ...answerIds];
  const A = answerIds.length;
  if (A === 0) return { data: new Float32Array(0), vocabSize: model.config.vocabSize };
  return noGrad(() =>
    scope(() => {
      const hidden = model.forwardHidden(fromArray(Int32Array.from(ids), [1, ids.length], { dtype: 'i32' }));
      const logits = model.logits(slice(hidden, 1, P - 1, P - 1 + A));
      const data = Float32Array.from(logits.data as ArrayLike<number>);
      return { data, vocabSize: data.length / A };
    }),
  );
}

/** exp(mean_t log softmax(z_t / T)[a_t]): the confidence of `answerIds` under temperature T (1 when empty). */
export function temperatureConfidence(
  calibrator: TemperatureCalibrator,
  logits: AnswerLogits,
  answerIds: readonly number[],
): number {
  const V = logits.vocabSize;
  const A = answerIds.length;
  if (A === 0) return 1;
  let total = 0;
  for (let t = 0; t < A; t++) {
    const p = calibrator.apply(logits.data.subarray(t * V, (t + 1) * V));
    total += Math.log(p[answerIds[t]!]!);
  }
  return Math.exp(total / A);
}

/** What one answer offers a calibrator: its raw confidence, its scores, and (lazily) its logits. */
export interface AnswerForCalibration {
  /** exp(mean log-prob) of the answer tokens. */
  confidence: number;
  scores: Record<string, number>;
  answerIds: readonly number[];
  /** The answer tokens' logits (computed only for temperature). */
  logits: () => AnswerLogits;
}

/**
 * The calibrated confidence of one answer. A confidence calibrator of score "confidence" maps the
 * raw confidence; of another score, maps that score (a UsageError when the answer has no such score,
 * listing those it has); temperature rescales the logits.
 */
export function calibratedConfidence(file: CalibratorFile, answer: AnswerForCalibration): number {
  const c: Calibrator = file.calibrator;
  if (c.type === 'temperature') return temperatureConfidence(c, answer.logits(), answer.answerIds);
  const score = calibratorScore(file);
  const value = score === 'confidence' ? answer.confidence : answer.scores[score];
  if (value === undefined) {
    throw new UsageError(
      `${file.path}: this calibrator maps the score "${score}", which is not computed here (available: confidence, ${Object.keys(answer.scores).join(', ')})`,
    );
  }
  return c.apply(value);
}

/** Whether the calibrator rescales logits (and so needs the model, not a predictions file). */
export function calibratesLogits(file: CalibratorFile): boolean {
  return calibrators.get(file.calibrator.type).input === 'logits';
}

/**
 * Refuse (UsageError) a confidence calibrator whose score is not among `available` (checked before
 * any work; a temperature calibrator needs no score). `hint` ends the message (e.g. how to get more).
 */
export function checkCalibratorScore(file: CalibratorFile, available: readonly string[], hint = ''): void {
  if (calibratesLogits(file)) return;
  const score = calibratorScore(file);
  if (!available.includes(score)) {
    throw new UsageError(
      `${file.path}: this calibrator maps the score "${score}", which is not computed here (available: ${available.join(', ')})${hint}`,
    );
  }
}
