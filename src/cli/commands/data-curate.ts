/** `attune data curate`: CLEAR curation of a fine-tuning JSONL (filter and auto-correct by BSDetector confidence). */
import { existsSync } from 'node:fs';
import { ConfigError, UsageError } from '../../errors.ts';
import { BSDETECTOR_DEFAULTS, CLEAR_CORRECT_THRESHOLD, curateFile } from '../../uq/index.ts';
import { jsonOption } from '../args.ts';
import { defineCommand } from '../command.ts';
import { loadModelFromFlags, modelOptions } from '../model-options.ts';
import { type Progress, progress } from '../progress.ts';

const options = {
  ...modelOptions,
  data: {
    type: 'path',
    required: true,
    description: 'the fine-tuning JSONL to curate (never modified)',
    valueName: '<file>',
  },
  out: { type: 'path', required: true, description: 'the curated JSONL to write', valueName: '<file>' },
  report: {
    type: 'path',
    description: 'per-record report JSON (confidence, action keep|remove|correct, why)',
    valueName: '<file>',
  },
  k: {
    type: 'integer',
    min: 1,
    default: BSDETECTOR_DEFAULTS.k,
    description: 'sampled answers per record',
    valueName: '<n>',
  },
  temperature: {
    type: 'number',
    min: 0,
    default: BSDETECTOR_DEFAULTS.temperature,
    description: 'sampling temperature of the k answers',
    valueName: '<t>',
  },
  alpha: {
    type: 'number',
    min: 0,
    max: 1,
    default: BSDETECTOR_DEFAULTS.alpha,
    description: 'weight of normalised vs exact agreement',
    valueName: '<a>',
  },
  beta: {
    type: 'number',
    min: 0,
    max: 1,
    default: BSDETECTOR_DEFAULTS.beta,
    description: 'weight of observed consistency vs self-reflection',
    valueName: '<b>',
  },
  reflection: {
    type: 'choice',
    choices: ['choices', 'none'],
    default: 'choices',
    description: "self-reflection: the paper's A/B/C questions, or none (confidence = consistency)",
  },
  threshold: {
    type: 'number',
    min: 0,
    max: 1,
    description: 'remove responses below this confidence (default: below the median)',
    valueName: '<c>',
  },
  'correct-threshold': {
    type: 'number',
    min: 0,
    max: 1,
    default: CLEAR_CORRECT_THRESHOLD,
    description: "replace a response by the model's answer when that answer's confidence exceeds this",
    valueName: '<c>',
  },
  'max-new-tokens': {
    type: 'integer',
    min: 1,
    default: 24,
    description: 'answer length limit in tokens',
    valueName: '<n>',
  },
  seed: { type: 'integer', min: 0, default: 0, description: 'seed of the sampled answers' },
  'on-bad-record': {
    type: 'choice',
    choices: ['error', 'skip'],
    default: 'error',
    description: 'a malformed line: stop with its file:line error, or remove it (listed in the report)',
  },
  overwrite: { type: 'boolean', description: 'replace --out and --report if they exist' },
  json: jsonOption,
} as const;

/** `attune data curate --model M [--adapter A] --data in.jsonl --out curated.jsonl [--report R.json] [--k 5] [--json]`. */
export const dataCurateCommand = defineCommand({
  name: 'data curate',
  summary: 'Curate fine-tuning data with CLEAR: remove low-confidence responses, auto-correct confident ones',
  description: `For every {prompt, completion} record, measures the BSDetector confidence of the completion
with the model (and adapter): observed consistency of k sampled answers (alpha * normalised match +
(1 - alpha) * exact match) weighted beta against the self-reflection certainty (the probabilities of
(A) Correct / (B) Incorrect / (C) not sure). Records whose confidence is below the median (or
--threshold) are removed; a record whose model answer differs and is more confident than
--correct-threshold is corrected to that answer; {text} records are kept. Writes --out (the curated
JSONL) and --report; the input is validated before any output is created and never modified. CLEAR
scores with the model fine-tuned on the noisy data (pass it as --adapter). See docs/data.md.`,
  options,
  examples: [
    'attune data curate --model world-bases/small --adapter run/adapter --data noisy.jsonl --out curated.jsonl --report report.json',
    'attune data curate --model ./model --data train.jsonl --out clean.jsonl --k 8 --threshold 0.5 --json',
  ],
  async run(args, io) {
    const v = args.values;
    const existing = [v.out, v.report].filter((p): p is string => p !== undefined && existsSync(p));
    if (existing.length > 0 && !v.overwrite)
      throw new ConfigError(`${existing.join(' and ')} already exist (pass --overwrite to replace them)`);
    const loaded = loadModelFromFlags(v);
    if (!loaded.tokenizer) throw new UsageError(`data curate: ${loaded.dir} has no tokenizer.json`);
    let bar: Progress | null = null;
    const report = curateFile(loaded.model, loaded.tokenizer, {
      data: v.data,
      out: v.out,
      report: v.report,
      k: v.k,
      temperature: v.temperature,
      alpha: v.alpha,
      beta: v.beta,
      reflection: v.reflection as 'choices' | 'none',
      filter: v.threshold ?? 'median',
      correctThreshold: v['correct-threshold'],
      maxNewTokens: v['max-new-tokens'],
      seed: v.seed,
      eosTokenIds: loaded.eosTokenIds,
      onBadRecord: v['on-bad-record'] as 'error' | 'skip',
      onProgress: (done, total) => {
        bar ??= progress({
          label: 'curate',
          total,
          stream: { write: (t: string) => io.err(t), isTTY: io.stderrIsTTY },
        });
        bar.update(done);
      },
    });
    (bar as Progress | null)?.stop();
    const s = report.summary;
    io.line(
      `curated ${s.records} records: ${s.kept} kept, ${s.removed} removed (${s.malformed} malformed), ${s.corrected} corrected; cut ${report.settings.cut.toFixed(3)}`,
    );
    io.line(`output: ${v.out}${v.report ? `, report: ${v.report}` : ''}`);
    if (v.json) io.json({ out: v.out, report: v.report ?? null, settings: report.settings, summary: s });
    return 0;
  },
});
