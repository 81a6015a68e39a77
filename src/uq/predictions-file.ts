/**
 * Prediction files (JSONL, one prediction per line): writing `attune eval`'s predictions.jsonl, and
 * reading a label and a score field from anyone's predictions for `attune uq metrics`.
 */
import { existsSync, readFileSync } from 'node:fs';
import { ConfigError, DataError, FormatError } from '../errors.ts';
import { writeTextAtomic } from '../io/index.ts';
import type { Prediction } from './predict.ts';

/** The file `attune eval` writes into its output folder. */
export const PREDICTIONS_FILE = 'predictions.jsonl';

/**
 * One line of predictions.jsonl: prompt, reference, answer, correct, confidence (calibrated when a
 * calibrator was applied, the raw one then in `uncalibrated.confidence`), every score, the record's
 * extra fields.
 */
export function predictionLine(p: Prediction): Record<string, unknown> {
  return {
    prompt: p.prompt,
    reference: p.reference,
    answer: p.answer,
    correct: p.correct,
    confidence: p.confidence,
    ...(p.uncalibratedConfidence !== undefined
      ? { uncalibrated: { confidence: p.uncalibratedConfidence } }
      : {}),
    ...p.scores,
    ...p.extra,
  };
}

/**
 * Throws a ConfigError when `path` exists and `overwrite` is not set (check it before the work
 * that produces the file).
 */
export function checkPredictionsWritable(path: string, overwrite: boolean): void {
  if (existsSync(path) && !overwrite) {
    throw new ConfigError(`${path} already exists (pass --overwrite to replace it)`);
  }
}

/** Write `predictions` to `path` atomically (refused when it exists, unless `overwrite`). */
export function writePredictionsFile(
  path: string,
  predictions: readonly Prediction[],
  options: { overwrite?: boolean } = {},
): void {
  checkPredictionsWritable(path, options.overwrite ?? false);
  writeTextAtomic(path, `${predictions.map((p) => JSON.stringify(predictionLine(p))).join('\n')}\n`);
}

/**
 * Whether a label value means "correct": JavaScript truthiness (false, 0, "", null are wrong), except
 * that the strings "false" and "0" are wrong too.
 */
export function labelIsCorrect(value: unknown): boolean {
  if (value === 'false' || value === '0') return false;
  return Boolean(value);
}

function describeValue(value: unknown): string {
  if (value === null) return 'null';
  if (Array.isArray(value)) return 'an array';
  if (typeof value === 'string')
    return `a string (${JSON.stringify(value.length > 40 ? `${value.slice(0, 40)}...` : value)})`;
  return `${typeof value === 'object' ? 'an' : 'a'} ${typeof value}`;
}

/** How a prediction file's score field is read: an uncertainty (any number) or a confidence in [0, 1]. */
export type ScoreKind = 'uncertainty' | 'confidence';

/** Correctness and one score per non-blank line of a JSONL file; any bad line is a DataError naming file:line. */
export function readPredictions(
  path: string,
  labelField: string,
  scoreField: string,
  scoreKind: ScoreKind,
): { correct: boolean[]; scores: number[] } {
  let text: string;
  try {
    text = readFileSync(path, 'utf8');
  } catch (error) {
    const code = (error as NodeJS.ErrnoException).code;
    throw new FormatError(
      path,
      code === 'ENOENT' ? 'file not found' : `cannot read: ${(error as Error).message}`,
    );
  }
  const correct: boolean[] = [];
  const scores: number[] = [];
  if (text.charCodeAt(0) === 0xfeff) text = text.slice(1);
  text.split('\n').forEach((line, i) => {
    if (line.trim() === '') return;
    let record: unknown;
    try {
      record = JSON.parse(line);
    } catch (error) {
      throw new DataError(path, i + 1, `invalid JSON: ${(error as Error).message.split('\n')[0]}`);
    }
    if (typeof record !== 'object' || record === null || Array.isArray(record)) {
      throw new DataError(path, i + 1, `expected a JSON object, found ${describeValue(record)}`);
    }
    const fields = record as Record<string, unknown>;
    for (const field of [labelField, scoreField]) {
      if (!(field in fields)) {
        throw new DataError(
          path,
          i + 1,
          `missing field "${field}" (the record has: ${Object.keys(fields).join(', ') || 'no fields'})`,
        );
      }
    }
    const score = fields[scoreField];
    if (typeof score !== 'number' || !Number.isFinite(score)) {
      throw new DataError(
        path,
        i + 1,
        `field "${scoreField}": expected a number, found ${describeValue(score)}`,
      );
    }
    if (scoreKind === 'confidence' && (score < 0 || score > 1)) {
      throw new DataError(
        path,
        i + 1,
        `field "${scoreField}": expected a confidence in [0, 1], found ${score}`,
      );
    }
    correct.push(labelIsCorrect(fields[labelField]));
    scores.push(score);
  });
  return { correct, scores };
}
