/** `attune uq fit-density`: fit the hidden-state Gaussian the mahalanobis scores read. */
import { existsSync, mkdirSync } from 'node:fs';
import { dirname } from 'node:path';
import { ConfigError, UsageError } from '../../errors.ts';
import {
  adapterIdentity,
  DEFAULT_DENSITY_RIDGE,
  type DensityFile,
  fileSha256,
  fitDensityOnSequences,
  modelIdentity,
  readDensityRecords,
  saveDensityFile,
} from '../../uq/index.ts';
import { jsonOption } from '../args.ts';
import { defineCommand } from '../command.ts';
import { loadModelFromFlags, modelOptions, readChatTemplate } from '../model-options.ts';
import { progress } from '../progress.ts';

const options = {
  ...modelOptions,
  data: {
    type: 'path',
    required: true,
    description:
      'training JSONL ({text}, {prompt, completion | answer} or {messages}): the in-domain Gaussian',
    valueName: '<file>',
  },
  background: {
    type: 'path',
    description: 'general-purpose JSONL (same shapes) for the background Gaussian of relative_mahalanobis',
    valueName: '<file>',
  },
  ridge: {
    type: 'number',
    min: 0,
    exclusiveMin: true,
    description:
      'relative ridge: Sigma + ridge * trace(Sigma) / d * I (a singular covariance stays invertible)',
    default: DEFAULT_DENSITY_RIDGE,
    valueName: '<r>',
  },
  'max-tokens': {
    type: 'integer',
    min: 1,
    description: 'tokens of each record used (the first ones)',
    default: 256,
    valueName: '<N>',
  },
  'chat-template': {
    type: 'path',
    description: 'Jinja chat template file for {messages} records, for models that ship none',
    valueName: '<file>',
  },
  out: { type: 'path', required: true, description: 'density JSON to write', valueName: '<density.json>' },
  overwrite: { type: 'boolean', description: 'replace an existing --out' },
  json: jsonOption,
} as const;

/** `attune uq fit-density --model DIR [--adapter DIR] --data train.jsonl [--background bg.jsonl] --out density.json`. */
export const uqFitDensityCommand = defineCommand({
  name: 'uq fit-density',
  summary: 'Fit the hidden-state density of the mahalanobis scores on training data',
  description: `Passes every --data record (encoded whole, the first --max-tokens tokens) through the model
once and fits a Gaussian to the mean final hidden states: eval --density FILE then reports
mahalanobis = sqrt((h - mu)^T Sigma^-1 (h - mu)) of each answer's prompt + answer (LM-Polygraph's
MD). With --background a second Gaussian on general data gives relative_mahalanobis = MD - MD_0
(RMD). The covariance gets a relative ridge (see --ridge), so fewer records than hidden dimensions
are fine. The file records the model (config sha256, weights fingerprint), adapter and data sha256;
eval refuses it for another model or adapter. Never replaces --out without --overwrite.`,
  options,
  examples: [
    'attune uq fit-density --model ./model --adapter runs/x/adapter --data train.jsonl --background corpus.jsonl --out density.json',
  ],
  async run(args, io) {
    const v = args.values;
    if (existsSync(v.out) && !v.overwrite)
      throw new ConfigError(`${v.out} already exists (pass --overwrite to replace it)`);
    const chatTemplate = v['chat-template'] !== undefined ? readChatTemplate(v['chat-template']) : undefined;
    const model = modelIdentity(v.model);
    const adapter = v.adapter !== undefined ? adapterIdentity(v.adapter) : null;
    const loaded = loadModelFromFlags(v);
    if (!loaded.tokenizer) throw new UsageError(`uq fit-density: ${loaded.dir} has no tokenizer.json`);
    const read = (path: string) =>
      readDensityRecords(path, loaded.tokenizer!, { chatTemplate, maxTokens: v['max-tokens'] });
    const inDomainIds = read(v.data);
    const backgroundIds = v.background !== undefined ? read(v.background) : null;
    const fit = (ids: number[][], label: string) => {
      const bar = progress({
        label,
        total: ids.length,
        stream: { write: (t: string) => io.err(t), isTTY: io.stderrIsTTY },
      });
      const g = fitDensityOnSequences(loaded.model, ids, {
        ridge: v.ridge,
        onProgress: (d) => bar.update(d),
      });
      bar.stop();
      return g;
    };
    const density: DensityFile = {
      type: 'gaussian-density',
      version: 1,
      hiddenSize: loaded.model.config.hiddenSize,
      ridge: v.ridge,
      inDomain: fit(inDomainIds, 'density'),
      background: backgroundIds ? fit(backgroundIds, 'background') : null,
      fittedOn: {
        method: 'mahalanobis',
        score: 'hidden_mean',
        model,
        adapter,
        data: { path: v.data, sha256: fileSha256(v.data) },
        n: inDomainIds.length,
      },
      backgroundData:
        v.background !== undefined ? { path: v.background, sha256: fileSha256(v.background) } : null,
    };
    mkdirSync(dirname(v.out), { recursive: true });
    saveDensityFile(v.out, density, { overwrite: v.overwrite });
    io.line(
      `density of ${density.hiddenSize}-dim mean hidden states fitted on ${inDomainIds.length} records${backgroundIds ? ` (background: ${backgroundIds.length})` : ''}, ridge ${v.ridge}`,
    );
    io.line(`density: ${v.out}`);
    if (v.json)
      io.json({
        out: v.out,
        hidden_size: density.hiddenSize,
        ridge: v.ridge,
        n: inDomainIds.length,
        background_n: backgroundIds?.length ?? null,
        fitted_on: density.fittedOn,
      });
    return 0;
  },
});
