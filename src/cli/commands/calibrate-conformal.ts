/** `attune calibrate conformal`: the confidence threshold below which to abstain, with a guarantee. */
import { existsSync, mkdirSync } from 'node:fs';
import { dirname } from 'node:path';
import { ConfigError } from '../../errors.ts';
import {
  CONFORMAL_GUARANTEES,
  conformalThreshold,
  readPredictions,
  saveThreshold,
  thresholdJSON,
} from '../../uq/index.ts';
import { jsonOption } from '../args.ts';
import { defineCommand } from '../command.ts';

const options = {
  input: {
    type: 'path',
    required: true,
    description: 'calibration predictions, JSONL (e.g. eval predictions.jsonl on held-out data)',
    valueName: '<file.jsonl>',
  },
  label: {
    type: 'string',
    required: true,
    description: 'field that says whether the answer was correct (truthy = correct)',
    valueName: '<field>',
  },
  confidence: {
    type: 'string',
    required: true,
    description: 'field with a confidence in [0, 1] (answer when confidence >= threshold)',
    valueName: '<field>',
  },
  alpha: {
    type: 'number',
    required: true,
    min: 0,
    max: 1,
    exclusiveMin: true,
    exclusiveMax: true,
    description: 'risk level',
    valueName: '<a>',
  },
  guarantee: {
    type: 'choice',
    choices: CONFORMAL_GUARANTEES,
    default: 'marginal',
    description:
      'marginal: E[1{answered and wrong}] <= alpha; selective: P(error among answered <= alpha) >= 1 - delta',
  },
  delta: {
    type: 'number',
    min: 0,
    max: 1,
    exclusiveMin: true,
    exclusiveMax: true,
    default: 0.1,
    description: 'failure probability of the selective guarantee',
    valueName: '<d>',
  },
  out: { type: 'path', description: 'threshold JSON for eval --abstain', valueName: '<thr.json>' },
  overwrite: { type: 'boolean', description: 'replace an existing --out' },
  json: jsonOption,
} as const;

const percent = (x: number | null) => (x === null ? '-' : `${(100 * x).toFixed(1)}%`);

/** `attune calibrate conformal --input P.jsonl --label K --confidence K --alpha A [--guarantee G] [--delta D] [--out thr.json] [--json]`. */
export const calibrateConformalCommand = defineCommand({
  name: 'calibrate conformal',
  summary: 'Choose the confidence threshold for abstaining, with a risk guarantee',
  description: `Reads calibration predictions (label and confidence fields, as uq metrics does) and picks the
threshold t: answer when confidence >= t, abstain below. marginal (default, conformal risk control):
the smallest t with (n R_n(t) + 1) / (n + 1) <= alpha, where R_n(t) is the share of calibration
questions answered and wrong; then E[1{answered and wrong}] <= alpha on exchangeable new data.
selective (Learn-then-Test): the lowest t reached going down from the highest confidence while
each t passes a binomial test (P(Bin(answered, alpha) <= wrong) <= delta); then the error among
answered questions is <= alpha with probability >= 1 - delta. Tied confidences are answered together.
When no threshold passes, the answer is to abstain on everything (threshold null, with a note).
Prints the threshold, the calibration risk, coverage and bound; --out saves it for eval --abstain
(validated, written atomically, never over an existing file without --overwrite).`,
  options,
  examples: [
    'attune calibrate conformal --input preds.jsonl --label correct --confidence confidence --alpha 0.1 --out thr.json --json',
    'attune calibrate conformal --input preds.jsonl --label correct --confidence confidence --alpha 0.1 --guarantee selective --delta 0.05',
  ],
  async run(args, io) {
    const v = args.values;
    if (v.out !== undefined && existsSync(v.out) && !v.overwrite)
      throw new ConfigError(`${v.out} already exists (pass --overwrite to replace it)`);
    const { correct, scores } = readPredictions(v.input, v.label, v.confidence, 'confidence');
    const result = conformalThreshold(scores, correct, {
      alpha: v.alpha,
      guarantee: v.guarantee,
      delta: v.delta,
    });
    const file = thresholdJSON(result, v.confidence);
    const cal = file.calibration;
    const risk = result.guarantee === 'marginal' ? cal.risk : cal.selective_risk;
    io.line(
      result.threshold === null
        ? `abstain on everything: ${result.note}`
        : `threshold ${result.threshold} (${result.guarantee}, alpha ${result.alpha}${result.delta !== null ? `, delta ${result.delta}` : ''}): answers ${cal.answered} of ${cal.n} (coverage ${percent(cal.coverage)}), calibration ${result.guarantee === 'marginal' ? 'risk' : 'error among answered'} ${percent(risk)}, bound ${percent(result.bound)}`,
    );
    if (v.out !== undefined) {
      mkdirSync(dirname(v.out), { recursive: true });
      saveThreshold(v.out, file);
      io.line(`threshold: ${v.out}`);
    }
    if (v.json) io.json({ ...file, ...(v.out !== undefined ? { out: v.out } : {}) });
    return 0;
  },
});
