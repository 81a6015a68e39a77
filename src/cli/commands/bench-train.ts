/** `attune bench train`: tokens/s and peak memory of a training step in SmolLM2-135M's shape. */
import { runTrainBench, TRAIN_PRESETS } from '../../bench/train.ts';
import { tunerNames } from '../../peft/index.ts';
import { jsonOption, parseChoice, parseInteger } from '../args.ts';
import { printBench } from '../bench.ts';
import { defineCommand } from '../command.ts';

const options = {
  preset: {
    type: 'string',
    description: `model shape: ${Object.keys(TRAIN_PRESETS).join(', ')}`,
    default: 'smollm2-135m',
    valueName: '<name>',
  },
  method: {
    type: 'string',
    description: `a registered fine-tuning method with its default options (${tunerNames().join(', ')})`,
    default: 'lora',
    valueName: '<lora|full>',
  },
  dtype: {
    type: 'string',
    description: 'base weight storage (bf16: LoRA only)',
    default: 'f32',
    valueName: '<f32|bf16>',
  },
  batch: { type: 'string', description: 'sequences per step', default: '4', valueName: '<n>' },
  seq: { type: 'string', description: 'tokens per sequence', default: '256', valueName: '<n>' },
  steps: {
    type: 'string',
    description: 'timed steps (after one warm-up step)',
    default: '3',
    valueName: '<n>',
  },
  layers: {
    type: 'string',
    description: "override the preset's layer count (0 = the preset's)",
    default: '0',
    valueName: '<n>',
  },
  json: jsonOption,
} as const;

/** `attune bench train [--preset smollm2-135m] [--method lora|full] [--dtype f32|bf16] ...`. */
export const benchTrainCommand = defineCommand({
  name: 'bench train',
  summary: 'Time a fine-tuning step (tokens/s, s/step, peak RSS) in SmolLM2-135M shape',
  description: `Random weights in the preset's shape, random tokens, AdamW; the same step as the PyTorch
anchor (../shared/anchors/torch_llama_bench.py). Peak RSS is the process's VmHWM, so run one bench
per process. --json prints the bench envelope as the last stdout line.`,
  options,
  examples: [
    'attune bench train --method lora --json',
    'attune bench train --method full --batch 4 --seq 256',
  ],
  async run(args, io) {
    const v = args.values;
    const settings = {
      preset: parseChoice('--preset', v.preset, Object.keys(TRAIN_PRESETS) as (keyof typeof TRAIN_PRESETS)[]),
      method: parseChoice('--method', v.method, tunerNames()),
      dtype: parseChoice('--dtype', v.dtype, ['f32', 'bf16'] as const),
      batch: parseInteger('--batch', v.batch),
      seq: parseInteger('--seq', v.seq),
      steps: parseInteger('--steps', v.steps),
      layers: parseInteger('--layers', v.layers, 0),
    };
    io.note(
      `bench train: ${settings.method} on ${settings.preset} (${settings.dtype}), batch ${settings.batch} x seq ${settings.seq} ...`,
    );
    return printBench(io, v.json, () => runTrainBench(settings));
  },
});
