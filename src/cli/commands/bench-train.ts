/** `attune bench train`: tokens/s and peak memory of a training step in SmolLM2-135M's shape. */
import { runTrainBench, TRAIN_PRESETS } from '../../bench/train.ts';
import { UsageError } from '../../errors.ts';
import { fineTuningMethodNames } from '../../peft/index.ts';
import { TRAIN_PRECISIONS, type TrainPrecision } from '../../train/precision.ts';
import { jsonOption } from '../args.ts';
import { BENCH_OUTPUT_NOTE, printBench } from '../bench.ts';
import { defineCommand } from '../command.ts';

const options = {
  preset: {
    type: 'choice',
    choices: Object.keys(TRAIN_PRESETS) as (keyof typeof TRAIN_PRESETS)[],
    description: 'model shape',
    default: 'smollm2-135m',
  },
  method: {
    type: 'choice',
    choices: fineTuningMethodNames(),
    description: 'a registered fine-tuning method (trained with its standard options)',
    default: 'lora',
  },
  dtype: {
    type: 'choice',
    choices: ['f32', 'bf16', 'int8', 'nf4'],
    description:
      'base weight storage (bf16: LoRA only; int8 / nf4: attention and MLP matrices block-quantised, dequantised inside the GEMM, LoRA-family only)',
    default: 'f32',
  },
  precision: {
    type: 'choice',
    choices: TRAIN_PRECISIONS as TrainPrecision[],
    description:
      'compute precision: bf16-mixed = bf16 GEMM inputs with f32 accumulation, frozen base stored in bf16',
    default: 'f32',
  },
  batch: { type: 'integer', min: 1, description: 'sequences per step', default: 4 },
  seq: { type: 'integer', min: 1, description: 'tokens per sequence', default: 256 },
  steps: { type: 'integer', min: 1, description: 'timed steps (after one warm-up step)', default: 3 },
  layers: {
    type: 'integer',
    min: 0,
    description: "override the preset's layer count (0 = the preset's)",
    default: 0,
  },
  'activation-checkpointing': {
    type: 'boolean',
    description: 'recompute each decoder layer in backward instead of keeping its activations',
    default: false,
  },
  'target-modules': {
    type: 'string',
    description:
      "the method's target_modules instead of its default: comma-separated module names, or all-linear (methods with a target_modules option)",
  },
  'run-step': {
    type: 'integer',
    min: 0,
    description:
      "call the method's step hooks as in a --run-steps run whose warm-up is this step and whose timed steps follow it (sparse_ft from 1: regrowth-accumulation steps); 0 = no hooks",
    default: 0,
  },
  'run-steps': { type: 'integer', min: 1, description: 'the run length the hooks are told', default: 100 },
  json: jsonOption,
} as const;

/** `--target-modules a,b` -> ['a', 'b']; `all-linear` stays a string (PEFT's rule); absent -> null. */
export function parseTargetModules(value: string | undefined): string[] | string | null {
  if (value === undefined) return null;
  if (value.trim() === 'all-linear') return 'all-linear';
  const names = value.split(',').map((n) => n.trim());
  if (names.some((n) => n === ''))
    throw new UsageError(
      `--target-modules: expected comma-separated module names or all-linear, found '${value}'`,
    );
  return names;
}

/** `attune bench train [--preset smollm2-135m] [--method lora|full] [--dtype f32|bf16] [--precision f32|bf16-mixed] ...`. */
export const benchTrainCommand = defineCommand({
  name: 'bench train',
  summary: 'Time a fine-tuning step (tokens/s, s/step, peak RSS) in SmolLM2-135M shape',
  description: `Random weights in the preset's shape, random tokens, AdamW; the same step as the PyTorch
anchor (../shared/anchors/torch_llama_bench.py). Peak RSS is the process's VmHWM, so run one bench
per process. --precision bf16-mixed runs the Linear GEMMs with bf16 inputs and f32 accumulation (AMX
or AVX512-BF16 where the CPU has them; the row's gemm_path names the path that ran) and, for LoRA,
builds the frozen base in bf16 (the row's dtype). --activation-checkpointing keeps only each decoder
layer's input and recomputes the layer in backward (train.activation_checkpointing).
--target-modules sets the method's target_modules (e.g. LoRA on all-linear, as sparse FT's default)
so that methods are compared on the same matrices; the row's target_modules names it. --run-step
calls the method's step hooks (beginStep, afterBackward, afterStep) as in a --run-steps run: the
warm-up is that step, the timed steps the ones after it (sparse FT from 1: regrowth-accumulation
steps with the dense gradient; GreenTrainer from 1: its reselection step, then steps on the
selected set); without it no hook runs and a method trains as its apply left it. --json
prints the bench envelope as the last stdout line.

${BENCH_OUTPUT_NOTE}`,
  options,
  examples: [
    'attune bench train --method lora --json',
    'attune bench train --method full --batch 4 --seq 256',
    'attune bench train --method lora --precision bf16-mixed --json',
    'attune bench train --preset qwen2.5-0.5b --dtype bf16 --activation-checkpointing --json',
    'attune bench train --method lora --target-modules all-linear --json',
    'attune bench train --method sparse_ft --run-step 1 --json',
  ],
  async run(args, io) {
    const v = args.values;
    const { preset, method, dtype, precision, batch, seq, steps, layers } = v;
    const activationCheckpointing = v['activation-checkpointing'];
    const targetModules = parseTargetModules(v['target-modules']);
    const settings = {
      ...{ preset, method, dtype, precision, batch, seq, steps, layers, activationCheckpointing },
      targetModules,
      runStep: v['run-step'],
      runSteps: v['run-steps'],
    };
    io.note(
      `bench train: ${settings.method} on ${settings.preset} (${settings.dtype}, ${settings.precision}), batch ${settings.batch} x seq ${settings.seq} ...`,
    );
    return printBench(io, v.json, () => runTrainBench(settings));
  },
});
