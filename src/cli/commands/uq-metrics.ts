/** `attune uq metrics`: uncertainty and calibration metrics of a user's own predictions (JSONL). */
import { UsageError } from '../../errors.ts';
import {
  calibratesLogits,
  checkFittedScore,
  loadCalibratorFile,
  type PredictionMetrics,
  predictionMetricNames,
  predictionMetrics,
  readPredictions,
} from '../../uq/index.ts';
import { jsonOption } from '../args.ts';
import { defineCommand } from '../command.ts';
import { formatTable } from '../table.ts';

/** Re-exported for callers of the command module; the rule lives in uq/predictions-file.ts. */
export { labelIsCorrect, readPredictions } from '../../uq/index.ts';

const options = {
  input: {
    type: 'path',
    required: true,
    description: 'JSONL file, one prediction per line',
    valueName: '<file.jsonl>',
  },
  label: {
    type: 'string',
    required: true,
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
  bins: { type: 'integer', min: 1, description: 'equal-width bins for ECE and MCE', default: 15 },
  calibrator: {
    type: 'path',
    description:
      'Platt or isotonic calibrator JSON (attune calibrate fit) of the score field: report calibrated metrics',
    valueName: '<file>',
  },
  json: jsonOption,
} as const;

/** The metrics as a table: metric, value (`-` when undefined) and the reason when undefined. */
export function formatPredictionMetrics(metrics: PredictionMetrics): string {
  const rows = predictionMetricNames().map((name) => ({
    metric: name,
    value: metrics.values[name] ?? null,
    note: metrics.notes[name] ?? '',
  }));
  return formatTable(rows, ['metric', 'value', 'note']);
}

/** `attune uq metrics --input FILE.jsonl --label FIELD (--uncertainty FIELD | --confidence FIELD) [--bins 15] [--json]`. */
export const uqMetricsCommand = defineCommand({
  name: 'uq metrics',
  summary: 'Uncertainty and calibration metrics of your own predictions (JSONL)',
  usage:
    '--input <file.jsonl> --label <field> (--uncertainty <field> | --confidence <field>) [--bins 15] [--calibrator cal.json] [--json]',
  description: `Reads one prediction per line: a label field (truthy = the answer was correct; the
strings "false" and "0" also count as wrong) and a score field. With --uncertainty (higher = less
sure): auroc and aupr of detecting wrong answers (positive = wrong), prr, aurc, auarc. With
--confidence (in [0, 1]): the same on 1 - confidence, plus ece, mce (equal-width bins), brier and nll.
A metric undefined for the input (one class only, empty input, ...) is null, with the reason in
notes. With --calibrator (Platt or isotonic from attune calibrate fit, fitted on the same score
field; temperature needs logits, so eval) the calibrator's output is scored as a confidence and the
raw score's metrics sit under "uncalibrated". Definitions and conventions (ties, bins, PRR
baseline): docs/uq.md.`,
  options,
  examples: [
    'attune uq metrics --input preds.jsonl --label correct --confidence p --json',
    'attune uq metrics --input preds.jsonl --label is_right --uncertainty entropy',
  ],
  async run(args, io) {
    const v = args.values;
    if ((v.uncertainty === undefined) === (v.confidence === undefined)) {
      throw new UsageError('uq metrics: give exactly one of --uncertainty <field> and --confidence <field>');
    }
    const bins = v.bins;
    const kind = v.confidence !== undefined ? 'confidence' : 'uncertainty';
    const field = (v.confidence ?? v.uncertainty)!;
    const calibrator = v.calibrator !== undefined ? loadCalibratorFile(v.calibrator) : undefined;
    if (calibrator) {
      if (calibratesLogits(calibrator))
        throw new UsageError(
          `uq metrics: ${v.calibrator} is a ${calibrator.calibrator.type} calibrator, which rescales token logits; a predictions file has none (apply it with attune eval --calibrator)`,
        );
      if (calibrator.fittedOn) checkFittedScore(calibrator.fittedOn, v.calibrator!, field);
    }
    const { correct, scores } = readPredictions(v.input, v.label, field, kind);
    const raw = predictionMetrics(
      kind === 'confidence' ? { correct, confidence: scores, bins } : { correct, uncertainty: scores, bins },
    );
    const mapper = calibrator?.calibrator as { apply(x: number): number } | undefined;
    const metrics = mapper
      ? predictionMetrics({ correct, confidence: scores.map((s) => mapper.apply(s)), bins })
      : raw;
    io.out(formatPredictionMetrics(metrics));
    const wrong = correct.filter((c) => !c).length;
    io.line(
      `${metrics.n} predictions (${wrong} wrong), ${kind} from "${field}"${mapper ? `, calibrated by ${v.calibrator}` : ''}${kind === 'confidence' || mapper ? `, ${bins} equal-width bins` : ''}`,
    );
    if (mapper) {
      const rawEce = raw.values.ece;
      io.line(
        `uncalibrated: ECE ${rawEce === null || rawEce === undefined ? '-' : rawEce.toFixed(4)}, Brier ${raw.values.brier?.toFixed(4) ?? '-'}`,
      );
    }
    if (v.json) {
      // one flat object: every registered metric next to n, bins, score and notes
      const { n, bins, score, values, notes } = metrics;
      const uncalibrated = mapper
        ? { uncalibrated: { score: raw.score, ...raw.values, notes: raw.notes } }
        : {};
      io.json({ n, bins, score, ...values, notes, ...uncalibrated });
    }
    return 0;
  },
});
