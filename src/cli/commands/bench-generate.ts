/** `attune bench generate`: greedy decode speed against the memory-bandwidth limit. */
import { existsSync } from 'node:fs';
import { runGenerateBench } from '../../bench/generate.ts';
import { TRAIN_PRESETS } from '../../bench/train.ts';
import { UsageError } from '../../errors.ts';
import { TRAIN_PRECISIONS, type TrainPrecision } from '../../train/precision.ts';
import { jsonOption } from '../args.ts';
import { BENCH_OUTPUT_NOTE, printBench } from '../bench.ts';
import { defineCommand } from '../command.ts';

const options = {
  model: {
    type: 'string',
    description: `a model folder, or a preset shape with random weights (${Object.keys(TRAIN_PRESETS).join(', ')})`,
    default: 'smollm2-135m',
    valueName: '<dir|preset>',
  },
  dtype: {
    type: 'choice',
    choices: ['f32', 'bf16', 'int8', 'nf4'],
    description: 'weight storage (int8 / nf4: attention and MLP matrices block-quantised)',
    default: 'f32',
  },
  precision: {
    type: 'choice',
    choices: TRAIN_PRECISIONS as TrainPrecision[],
    description:
      'compute precision: bf16-mixed = weight matrices stored in bf16 (whatever --dtype says), bf16 GEMM inputs with f32 accumulation',
    default: 'f32',
  },
  batch: { type: 'integer', min: 1, description: 'sequences decoded together', default: 1 },
  prompt: { type: 'integer', min: 1, description: 'prompt tokens per sequence (random ids)', default: 32 },
  new: {
    type: 'integer',
    min: 2,
    description: 'tokens generated per sequence (the first by the prefill)',
    default: 64,
  },
  json: jsonOption,
} as const;

/** `attune bench generate [--model DIR|preset] [--dtype f32|bf16] [--precision f32|bf16-mixed] [--batch 1] [--prompt 32] [--new 64] [--json]`. */
export const benchGenerateCommand = defineCommand({
  name: 'bench generate',
  summary: 'Greedy decoding speed (prefill and decode tokens/s) against the memory-bandwidth limit',
  description: `Greedy decoding with the KV cache, as ../shared/anchors/torch_generate_bench.py measures it:
a random prompt of --prompt tokens for each of --batch sequences (prefill), then --new - 1 single-token
steps for all sequences together (decode). limit_tokens_per_s is the weight bytes one decode step
reads divided by the read bandwidth measured here (a 256 MB buffer summed, best of 3), times the
batch; ratio_to_limit is decode / limit. The row also has the load time (load_s; a folder on the
native backend is memory-mapped, not read), the GEMM path (gemm_path) and peak RSS (VmHWM).

${BENCH_OUTPUT_NOTE}`,
  options,
  examples: [
    'attune bench generate --json',
    'attune bench generate --model ./SmolLM2-135M --batch 8 --json',
    'attune bench generate --dtype bf16',
    'attune bench generate --precision bf16-mixed --json',
  ],
  async run(args, io) {
    const v = args.values;
    if (!(v.model in TRAIN_PRESETS) && !existsSync(v.model))
      throw new UsageError(
        `bench generate: --model ${v.model} is neither a folder nor a preset (${Object.keys(TRAIN_PRESETS).join(', ')})`,
      );
    io.note(
      `bench generate: ${v.model} (${v.dtype}, ${v.precision}), batch ${v.batch}, prompt ${v.prompt}, ${v.new} new tokens ...`,
    );
    return printBench(io, v.json, async () =>
      runGenerateBench({
        model: v.model,
        dtype: v.dtype,
        precision: v.precision,
        batch: v.batch,
        prompt: v.prompt,
        new: v.new,
      }),
    );
  },
});
