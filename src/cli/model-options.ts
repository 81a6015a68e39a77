/** Options and loading shared by commands that run a model (generate, score, eval). */
import { UsageError } from '../errors.ts';
import { type LoadedModel, loadModel } from '../models/index.ts';
import { loadAdapter } from '../peft/index.ts';
import { parseChoice } from './args.ts';

/** --model, --adapter and --dtype. */
export const modelOptions = {
  model: {
    type: 'string',
    description: 'Hub-format model directory (config.json, safetensors, tokenizer)',
    valueName: '<dir>',
  },
  adapter: {
    type: 'string',
    description: 'PEFT adapter directory to apply (adapter_config.json + adapter_model.safetensors)',
    valueName: '<dir>',
  },
  dtype: {
    type: 'string',
    description: 'weight storage: f32 or bf16',
    default: 'f32',
    valueName: '<f32|bf16>',
  },
} as const;

/** Load --model (with --adapter applied) as the flags say. */
export function loadModelFromFlags(
  values: { model?: string; adapter?: string; dtype: string },
  command: string,
): LoadedModel {
  if (!values.model) throw new UsageError(`${command}: --model <dir> is required`);
  const dtype = parseChoice('--dtype', values.dtype, ['f32', 'bf16'] as const);
  const loaded = loadModel(values.model, { dtype });
  if (values.adapter) loadAdapter(loaded.model, values.adapter);
  loaded.model.eval();
  return loaded;
}
