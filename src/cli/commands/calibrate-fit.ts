/** `attune calibrate fit`: fit a calibrator on held-out data, recording what it was fitted on. */
import { existsSync, mkdirSync } from 'node:fs';
import { dirname } from 'node:path';
import { ConfigError, UsageError } from '../../errors.ts';
import {
  adapterIdentity,
  type Calibrator,
  extraPassScores,
  FIT_METHODS,
  type FittedOn,
  fileSha256,
  fitScoreCalibrator,
  fitTemperatureOnRecords,
  GRADE_METRICS,
  modelIdentity,
  predict,
  readEvalRecords,
  readPredictions,
  SCORE_NAMES,
  saveCalibratorFile,
} from '../../uq/index.ts';
import { jsonOption } from '../args.ts';
import { defineCommand } from '../command.ts';
import {
  loadModelFromFlags,
  modelOptions,
  readChatTemplate,
  requireChatTemplate,
  unescapeStop,
} from '../model-options.ts';
import { progress } from '../progress.ts';

const options = {
  method: { type: 'choice', choices: FIT_METHODS, required: true, description: 'calibrator to fit' },
  out: { type: 'path', required: true, description: 'calibrator JSON to write', valueName: '<cal.json>' },
  model: {
    ...modelOptions.model,
    required: false,
    description: `${modelOptions.model.description}: fit on its answers to --data`,
  },
  adapter: modelOptions.adapter,
  dtype: modelOptions.dtype,
  data: {
    type: 'path',
    description: 'held-out JSONL of {prompt | messages, answer} records (with --model)',
    valueName: '<file>',
  },
  score: {
    type: 'string',
    description: `what a Platt / isotonic calibrator maps (with --model): confidence = exp(mean log-prob), or an uncertainty score (${SCORE_NAMES.join(', ')})`,
    default: 'confidence',
    valueName: '<name>',
  },
  metric: { type: 'choice', choices: GRADE_METRICS, description: 'grading (with --model)', default: 'exact' },
  'max-new-tokens': {
    type: 'integer',
    min: 1,
    description: 'answer length limit (with --model)',
    default: 32,
  },
  stop: {
    type: 'string',
    multiple: true,
    description: 'stop string ending an answer (e.g. "\\n"; with --model)',
    valueName: '<text>',
  },
  'chat-template': {
    type: 'path',
    description: 'Jinja chat template file for {messages} records, for models that ship none',
    valueName: '<file>',
  },
  input: {
    type: 'path',
    description: 'instead of --model: a predictions JSONL (as uq metrics reads)',
    valueName: '<file.jsonl>',
  },
  label: { type: 'string', description: 'with --input: the correctness field', valueName: '<field>' },
  confidence: {
    type: 'string',
    description: 'with --input: a confidence field in [0, 1]',
    valueName: '<field>',
  },
  uncertainty: {
    type: 'string',
    description: 'with --input: an uncertainty field (higher = less sure)',
    valueName: '<field>',
  },
  overwrite: { type: 'boolean', description: 'replace an existing --out' },
  json: jsonOption,
} as const;

function forbid(values: Record<string, unknown>, names: readonly string[], why: string): void {
  const given = names.filter((n) => values[n] !== undefined && values[n] !== false);
  if (given.length > 0)
    throw new UsageError(`calibrate fit: ${given.map((n) => `--${n}`).join(', ')} ${why}`);
}

/** `attune calibrate fit --method M --out cal.json (--model DIR --data FILE | --input FILE --label K --confidence K)`. */
export const calibrateFitCommand = defineCommand({
  name: 'calibrate fit',
  summary: 'Fit a temperature, Platt or isotonic calibrator on held-out data',
  usage:
    '--method temperature|platt|isotonic --out <cal.json> (--model <dir> [--adapter <dir>] --data <file> [--score S] | --input <file.jsonl> --label <field> (--confidence <field> | --uncertainty <field>)) [--json]',
  description: `With --model: answers the held-out --data records as eval does and fits --method on them.
temperature: one T dividing the token logits, minimising the NLL of the reference answers' tokens
(teacher-forced after the prompt; a prompt ending without whitespace is followed by one space);
platt / isotonic: a map from --score (confidence = exp(mean log-prob), or an uncertainty score) to
the probability that the answer is right. With --input: Platt or isotonic on a predictions file's
--confidence or --uncertainty field (temperature needs logits, so --model). The file records what it
was fitted on (method, score, model config sha256 and weights fingerprint, adapter sha256, the data
file's sha256, n); eval, generate and uq metrics refuse it for another model, adapter or score.
Never replaces --out without --overwrite; the file is validated, then written atomically.`,
  options,
  examples: [
    'attune calibrate fit --model ./model --data heldout.jsonl --method temperature --stop "\\n" --out cal.json',
    'attune calibrate fit --input preds.jsonl --label correct --confidence confidence --method isotonic --out iso.json --json',
  ],
  async run(args, io) {
    const v = args.values;
    if ((v.model === undefined) === (v.input === undefined))
      throw new UsageError(
        'calibrate fit: give exactly one of --model (with --data) and --input (a predictions file)',
      );
    if (existsSync(v.out) && !v.overwrite)
      throw new ConfigError(`${v.out} already exists (pass --overwrite to replace it)`);
    let calibrator: Calibrator;
    let fittedOn: FittedOn;
    if (v.input !== undefined) {
      forbid(v, ['adapter', 'data', 'chat-template'], 'go with --model, not --input');
      if (v.method === 'temperature')
        throw new UsageError(
          'calibrate fit: temperature rescales token logits, which a predictions file does not have; fit it with --model <dir> --data <file>',
        );
      if (v.label === undefined) throw new UsageError('calibrate fit: --input needs --label <field>');
      if ((v.confidence === undefined) === (v.uncertainty === undefined))
        throw new UsageError(
          'calibrate fit: with --input give exactly one of --confidence <field> and --uncertainty <field>',
        );
      const kind = v.confidence !== undefined ? 'confidence' : 'uncertainty';
      const field = (v.confidence ?? v.uncertainty)!;
      const { correct, scores } = readPredictions(v.input, v.label, field, kind);
      calibrator = fitScoreCalibrator(v.method, scores, correct, kind);
      fittedOn = {
        method: v.method,
        score: field,
        model: null,
        adapter: null,
        data: { path: v.input, sha256: fileSha256(v.input) },
        n: scores.length,
      };
    } else {
      forbid(v, ['label', 'confidence', 'uncertainty'], 'go with --input, not --model');
      if (v.data === undefined) throw new UsageError('calibrate fit: --model needs --data <held-out.jsonl>');
      if (v.method === 'temperature' && v.score !== 'confidence')
        throw new UsageError(
          `calibrate fit: temperature calibrates the confidence through the logits; --score ${v.score} goes with platt or isotonic`,
        );
      // extra-pass scores (p_true, verbalized, rauq) cost one more pass per record; density ones need a file
      const extraNames = extraPassScores()
        .filter((sc) => sc.requires === undefined)
        .map((sc) => sc.name);
      if (v.score !== 'confidence' && !SCORE_NAMES.includes(v.score) && !extraNames.includes(v.score))
        throw new UsageError(
          `calibrate fit: --score: unknown score ${v.score} (available: confidence, ${[...SCORE_NAMES, ...extraNames].join(', ')})`,
        );
      const records = readEvalRecords(v.data);
      const chatTemplate =
        v['chat-template'] !== undefined ? readChatTemplate(v['chat-template']) : undefined;
      const model = modelIdentity(v.model!);
      const adapter = v.adapter !== undefined ? adapterIdentity(v.adapter) : null;
      const loaded = loadModelFromFlags({ model: v.model!, adapter: v.adapter, dtype: v.dtype });
      if (!loaded.tokenizer) throw new UsageError(`calibrate fit: ${loaded.dir} has no tokenizer.json`);
      if (chatTemplate === undefined && records.some((r) => r.messages !== undefined))
        requireChatTemplate(loaded.tokenizer, `calibrate fit: ${v.data} has {messages} records but`);
      const bar = progress({
        label: 'calibrate',
        total: records.length,
        stream: { write: (t: string) => io.err(t), isTTY: io.stderrIsTTY },
      });
      let tokens: number | undefined;
      let n: number;
      if (v.method === 'temperature') {
        const fit = fitTemperatureOnRecords(loaded.model, loaded.tokenizer, records, {
          chatTemplate,
          onProgress: (done) => bar.update(done),
        });
        calibrator = fit.calibrator;
        tokens = fit.tokens;
        n = fit.records;
      } else {
        const predictions = predict(loaded.model, loaded.tokenizer, records, {
          metric: v.metric,
          maxNewTokens: v['max-new-tokens'],
          stop: v.stop.map(unescapeStop),
          eosTokenIds: loaded.eosTokenIds,
          chatTemplate,
          extra: extraNames.includes(v.score) ? [v.score] : undefined,
          onProgress: (done) => bar.update(done),
        });
        const kind = v.score === 'confidence' ? 'confidence' : 'uncertainty';
        // an answer without a value of the score (an unparseable verbalised confidence) is left out
        const used = predictions.filter((p) => kind === 'confidence' || Number.isFinite(p.scores[v.score]));
        if (used.length === 0)
          throw new UsageError(`calibrate fit: no answer has a value of --score ${v.score}; nothing to fit`);
        const values = used.map((p) => (kind === 'confidence' ? p.confidence : p.scores[v.score]!));
        calibrator = fitScoreCalibrator(
          v.method,
          values,
          used.map((p) => p.correct),
          kind,
        );
        n = used.length;
      }
      bar.stop();
      fittedOn = {
        method: v.method,
        score: v.score,
        model,
        adapter,
        data: { path: v.data, sha256: fileSha256(v.data) },
        n,
        ...(tokens !== undefined ? { tokens } : {}),
      };
    }
    mkdirSync(dirname(v.out), { recursive: true });
    saveCalibratorFile(v.out, calibrator, fittedOn);
    const json = calibrator.toJSON();
    io.line(
      `${json.type} calibrator of "${fittedOn.score}" fitted on ${fittedOn.n} records${fittedOn.tokens !== undefined ? ` (${fittedOn.tokens} reference tokens)` : ''}: ${JSON.stringify(json.params).slice(0, 200)}`,
    );
    io.line(`calibrator: ${v.out}`);
    if (v.json) io.json({ ...json, fitted_on: fittedOn, out: v.out });
    return 0;
  },
});
