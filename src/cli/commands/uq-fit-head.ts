/** `attune uq fit-head`: fit a learned uncertainty head (evidential, deup, bayescap) on held-out answers. */
import { existsSync } from 'node:fs';
import { join } from 'node:path';
import { ConfigError, UsageError } from '../../errors.ts';
import {
  adapterIdentity,
  fileSha256,
  fitHeadOnRecords,
  GRADE_METRICS,
  HEAD_CONFIG_FILE,
  HEAD_KINDS,
  type HeadFile,
  modelIdentity,
  readEvalRecords,
  saveHeadFile,
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
  ...modelOptions,
  kind: { type: 'choice', choices: HEAD_KINDS, required: true, description: 'head to fit' },
  data: {
    type: 'path',
    required: true,
    description:
      'held-out JSONL of {prompt | messages, answer} records (not the training data: DEUP needs out-of-sample errors)',
    valueName: '<file>',
  },
  metric: { type: 'choice', choices: GRADE_METRICS, description: 'grading of the answers', default: 'exact' },
  'max-new-tokens': { type: 'integer', min: 1, description: 'answer length limit', default: 32 },
  stop: {
    type: 'string',
    multiple: true,
    description: 'stop string ending an answer (e.g. "\\n")',
    valueName: '<text>',
  },
  steps: { type: 'integer', min: 0, description: 'full-batch Adam steps', default: 300 },
  lr: { type: 'number', min: 0, exclusiveMin: true, description: 'Adam learning rate', default: 0.01 },
  l2: { type: 'number', min: 0, description: 'L2 penalty on the head weights', default: 1e-3 },
  'chat-template': {
    type: 'path',
    description: 'Jinja chat template file for {messages} records, for models that ship none',
    valueName: '<file>',
  },
  out: {
    type: 'path',
    required: true,
    description: `head folder to write (${HEAD_CONFIG_FILE} + head.safetensors)`,
    valueName: '<dir>',
  },
  overwrite: { type: 'boolean', description: 'replace a head already in --out' },
  json: jsonOption,
} as const;

/** `attune uq fit-head --model DIR [--adapter DIR] --kind K --data heldout.jsonl --out DIR`. */
export const uqFitHeadCommand = defineCommand({
  name: 'uq fit-head',
  summary: 'Fit a learned uncertainty head (evidential, deup, bayescap) on held-out graded answers',
  description: `The model answers every --data record greedily; each answer is graded (--metric) and the mean
final hidden state of prompt + answer is its feature vector. A small linear head is fitted on them
(full-batch Adam, deterministic): evidential (Dirichlet evidence over correct / wrong, score
evidential_vacuity = K / S), deup (regressor of the 0/1 error minus the aleatoric 1 - confidence,
score deup) or bayescap (identity cap on the confidence with a predicted sigma, score bayescap).
eval --head DIR then reports the score. The folder records the model (config sha256, weights
fingerprint), adapter and data sha256; eval refuses it for another model or adapter. Never
replaces --out without --overwrite.`,
  options,
  examples: [
    'attune uq fit-head --model ./model --adapter runs/x/adapter --kind evidential --data heldout.jsonl --out heads/evidential',
  ],
  async run(args, io) {
    const v = args.values;
    if (existsSync(join(v.out, HEAD_CONFIG_FILE)) && !v.overwrite)
      throw new ConfigError(`${v.out} already holds a head (pass --overwrite to replace it)`);
    const records = readEvalRecords(v.data);
    const chatTemplate = v['chat-template'] !== undefined ? readChatTemplate(v['chat-template']) : undefined;
    const model = modelIdentity(v.model);
    const adapter = v.adapter !== undefined ? adapterIdentity(v.adapter) : null;
    const loaded = loadModelFromFlags(v);
    if (!loaded.tokenizer) throw new UsageError(`uq fit-head: ${loaded.dir} has no tokenizer.json`);
    if (chatTemplate === undefined && records.some((r) => r.messages !== undefined))
      requireChatTemplate(loaded.tokenizer, `uq fit-head: ${v.data} has {messages} records but`);
    const bar = progress({
      label: 'fit-head',
      total: records.length,
      stream: { write: (t: string) => io.err(t), isTTY: io.stderrIsTTY },
    });
    let fit: ReturnType<typeof fitHeadOnRecords>;
    try {
      fit = fitHeadOnRecords(loaded.model, loaded.tokenizer, records, v.kind, {
        metric: v.metric,
        maxNewTokens: v['max-new-tokens'],
        stop: v.stop.map(unescapeStop),
        eosTokenIds: loaded.eosTokenIds,
        chatTemplate,
        onProgress: (done) => bar.update(done),
        fit: { steps: v.steps, lr: v.lr, l2: v.l2 },
      });
    } catch (error) {
      if (error instanceof RangeError) throw new UsageError(`${error.message} (in ${v.data})`);
      throw error;
    } finally {
      bar.stop();
    }
    const file: HeadFile = {
      type: 'uq-head',
      version: 1,
      head: fit.head,
      fittedOn: {
        method: v.kind,
        score: 'hidden_mean',
        model,
        adapter,
        data: { path: v.data, sha256: fileSha256(v.data) },
        n: fit.n,
      },
    };
    saveHeadFile(v.out, file, { overwrite: v.overwrite });
    io.line(
      `${v.kind} head on ${fit.head.dim}-dim mean hidden states fitted on ${fit.n} answers (${fit.correct} correct${fit.empty > 0 ? `, ${fit.empty} empty left out` : ''}), final loss ${fit.head.loss.toFixed(6)}`,
    );
    io.line(`head: ${v.out}`);
    if (v.json)
      io.json({
        out: v.out,
        kind: v.kind,
        hidden_size: fit.head.dim,
        n: fit.n,
        correct: fit.correct,
        empty: fit.empty,
        loss: fit.head.loss,
        fitted_on: file.fittedOn,
      });
    return 0;
  },
});
