/** `attune export --model DIR --adapter DIR --merge --out DIR`: fold an adapter into a plain model dir. */
import { existsSync } from 'node:fs';
import { UsageError } from '../../errors.ts';
import { type CausalLM, loadModel, saveModel } from '../../models/index.ts';
import { loadAdapter } from '../../peft/index.ts';
import { jsonOption } from '../args.ts';
import { defineCommand } from '../command.ts';

const options = {
  model: { type: 'path', required: true, description: 'base model directory', valueName: '<dir>' },
  adapter: {
    type: 'path',
    required: true,
    description: 'adapter directory (PEFT layout)',
    valueName: '<dir>',
  },
  merge: {
    type: 'boolean',
    description: 'merge the adapter into the base weights (required: the output is a plain model)',
  },
  out: {
    type: 'path',
    required: true,
    description: 'output model directory (must not exist unless --overwrite)',
    valueName: '<dir>',
  },
  overwrite: { type: 'boolean', description: 'write into an existing --out directory' },
  json: jsonOption,
} as const;

/** `attune export --model DIR --adapter DIR --merge --out DIR`. */
export const exportCommand = defineCommand({
  name: 'export',
  summary: 'Merge an adapter into its base model and write a plain Hub-format model dir',
  description: `Loads --model in f32, applies --adapter, folds it into the weights (W + scaling * B A) and
writes a directory transformers loads as a plain model (config.json, model.safetensors, tokenizer
files, generation_config.json).`,
  options,
  examples: ['attune export --model ./base --adapter runs/quickstart/adapter --merge --out ./merged'],
  async run(args, io) {
    const v = args.values;
    if (!v.merge)
      throw new UsageError('export: pass --merge (the only export Attune does is a merged plain model)');
    if (existsSync(v.out) && !v.overwrite)
      throw new UsageError(`export: ${v.out} exists (pass --overwrite to write into it)`);
    const loaded = loadModel(v.model);
    const adapter = loadAdapter(loaded.model, v.adapter);
    const merged = adapter.mergeAndUnload() as CausalLM;
    saveModel(merged, v.out, {
      tokenizerFrom: loaded.tokenizer ? v.model : undefined,
      generationConfig: loaded.generationConfig,
    });
    io.line(`wrote ${v.out} (${adapter.method} adapter merged into ${v.model})`);
    if (v.json) io.json({ out: v.out, method: adapter.method });
    return 0;
  },
});
