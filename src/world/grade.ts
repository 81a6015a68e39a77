/**
 * Grading answers to the world's questions: exact match of the trimmed first line of the model's
 * continuation against the trimmed expected answer; questions about unknown people are never
 * answered correctly. Also reads eval_*.jsonl files back.
 */
import { readFileSync } from 'node:fs';
import { DataError } from '../errors.ts';
import { RELATIONS } from './generate.ts';
import type { EvalRecord } from './render.ts';

/** The answer in a generated continuation: the text before the first newline, trimmed. */
export function extractAnswer(generated: string): string {
  const newline = generated.indexOf('\n');
  return (newline < 0 ? generated : generated.slice(0, newline)).trim();
}

/**
 * Whether `generated` (the model's continuation of `record.prompt`) answers `record` correctly:
 * `extractAnswer(generated) === record.answer.trim()`, case-sensitive. Always false when
 * `record.answerable` is false (questions about unknown people: any answer is a hallucination).
 */
export function gradeAnswer(record: Pick<EvalRecord, 'answer' | 'answerable'>, generated: string): boolean {
  if (!record.answerable) return false;
  return extractAnswer(generated) === record.answer.trim();
}

const EVAL_SPLITS = new Set(['known', 'taught', 'unknown', 'ood']);
const EVAL_RELATIONS = new Set<string>([...RELATIONS, 'plus', 'minus']);

/** Read an eval_*.jsonl file; a malformed line is a DataError naming the file and line. */
export function readEvalRecords(path: string): EvalRecord[] {
  const lines = readFileSync(path, 'utf8').split('\n');
  const records: EvalRecord[] = [];
  lines.forEach((line, index) => {
    if (line.trim() === '') return;
    let value: unknown;
    try {
      value = JSON.parse(line);
    } catch (error) {
      throw new DataError(path, index + 1, `invalid JSON: ${(error as Error).message}`);
    }
    const r = value as Partial<Record<keyof EvalRecord, unknown>>;
    const strings = ['prompt', 'answer', 'entity', 'paraphrase'] as const;
    for (const key of strings) {
      if (typeof r[key] !== 'string') {
        throw new DataError(path, index + 1, `field '${key}' must be a string, found ${typeof r[key]}`);
      }
    }
    if (typeof r.split !== 'string' || !EVAL_SPLITS.has(r.split)) {
      throw new DataError(path, index + 1, `field 'split' must be known, taught, unknown or ood`);
    }
    if (typeof r.relation !== 'string' || !EVAL_RELATIONS.has(r.relation)) {
      throw new DataError(
        path,
        index + 1,
        `field 'relation' must be one of ${[...EVAL_RELATIONS].join(', ')}`,
      );
    }
    if (typeof r.answerable !== 'boolean') {
      throw new DataError(path, index + 1, `field 'answerable' must be a boolean`);
    }
    records.push(value as EvalRecord);
  });
  return records;
}
