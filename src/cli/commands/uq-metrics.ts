/** `attune uq metrics`: uncertainty and calibration metrics of a user's own predictions (JSONL). */
import { readFileSync } from 'node:fs';
import { DataError, FormatError, UsageError } from '../../errors.ts';
import { PREDICTION_METRIC_NAMES, type PredictionMetrics, predictionMetrics } from '../../uq/index.ts';
import { jsonOption, parseInteger } from '../args.ts';
import { defineCommand } from '../command.ts';
import { formatTable } from '../table.ts';

const options = {
  input: { type: 'string', description: 'JSONL file, one prediction per line', valueName: '<file.jsonl>' },
  label: {
    type: 'string',
    description: 'field that says whether the answer was correct (truthy = correct)',
    valueName: '<field>',
  },
  uncertainty: {
    type: 'string',
    description: 'field with an uncertainty score (higher = less sure): ranking metrics',
    valueName: '<field>',
  },
  confidence: {
    type: 'string',
    description: 'field with a confidence in [0, 1]: ranking and calibration metrics',
    valueName: '<field>',
  },
  bins: { type: 'string', description: 'equal-width bins for ECE and MCE', default: '15', valueName: '<n>' },
  json: jsonOption,
} as const;

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

/** Correctness and one score per non-blank line of a JSONL file; any bad line is a DataError naming file:line. */
export function readPredictions(
  path: string,
  labelField: string,
  scoreField: string,
  scoreKind: 'uncertainty' | 'confidence',
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

/** The metrics as a table: metric, value (`-` when undefined) and the reason when undefined. */
export function formatPredictionMetrics(metrics: PredictionMetrics): string {
  const rows = PREDICTION_METRIC_NAMES.map((name) => ({
    metric: name,
    value: metrics[name],
    note: metrics.notes[name] ?? '',
  }));
  return formatTable(rows, ['metric', 'value', 'note']);
}

/** `attune uq metrics --input FILE.jsonl --label FIELD (--uncertainty FIELD | --confidence FIELD) [--bins 15] [--json]`. */
export const uqMetricsCommand = defineCommand({
  name: 'uq metrics',
  summary: 'Uncertainty and calibration metrics of your own predictions (JSONL)',
  usage:
    '--input <file.jsonl> --label <field> (--uncertainty <field> | --confidence <field>) [--bins 15] [--json]',
  description: `Reads one prediction per line: a label field (truthy = the answer was correct; the
strings "false" and "0" also count as wrong) and a score field. With --uncertainty (higher = less
sure): auroc and aupr of detecting wrong answers (positive = wrong), prr, aurc, auarc. With
--confidence (in [0, 1]): the same on 1 - confidence, plus ece, mce (equal-width bins), brier and nll.
A metric undefined for the input (one class only, empty input, ...) is null, with the reason in
notes. Definitions and conventions (ties, bins, PRR baseline): docs/uq.md.`,
  options,
  examples: [
    'attune uq metrics --input preds.jsonl --label correct --confidence p --json',
    'attune uq metrics --input preds.jsonl --label is_right --uncertainty entropy',
  ],
  async run(args, io) {
    const v = args.values;
    if (v.input === undefined) throw new UsageError('uq metrics: --input <file.jsonl> is required');
    if (v.label === undefined) throw new UsageError('uq metrics: --label <field> is required');
    if ((v.uncertainty === undefined) === (v.confidence === undefined)) {
      throw new UsageError('uq metrics: give exactly one of --uncertainty <field> and --confidence <field>');
    }
    const bins = parseInteger('bins', v.bins);
    const kind = v.confidence !== undefined ? 'confidence' : 'uncertainty';
    const field = (v.confidence ?? v.uncertainty)!;
    const { correct, scores } = readPredictions(v.input, v.label, field, kind);
    const metrics = predictionMetrics(
      kind === 'confidence' ? { correct, confidence: scores, bins } : { correct, uncertainty: scores, bins },
    );
    io.out(formatPredictionMetrics(metrics));
    const wrong = correct.filter((c) => !c).length;
    io.line(
      `${metrics.n} predictions (${wrong} wrong), ${kind} from "${field}"${kind === 'confidence' ? `, ${bins} equal-width bins` : ''}`,
    );
    if (v.json) io.json(metrics);
    return 0;
  },
});
