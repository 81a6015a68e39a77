/** `attune compress`: ComPEFT-compress a LoRA adapter or a fine-tuned model's delta. */
import { existsSync } from 'node:fs';
import { UsageError } from '../../errors.ts';
import {
  type CompressResult,
  compressAdapter,
  compressModelDelta,
  DEFAULT_COMPEFT_ALPHA,
  DEFAULT_COMPEFT_DENSITY,
} from '../../merge/compress.ts';
import { jsonOption } from '../args.ts';
import { defineCommand } from '../command.ts';
import { formatNumber } from '../table.ts';

const options = {
  adapter: { type: 'path', description: 'PEFT adapter directory to compress', valueName: '<dir>' },
  model: {
    type: 'path',
    description: 'fine-tuned model directory (its delta to --base is compressed)',
    valueName: '<dir>',
  },
  base: { type: 'path', description: 'base model of --model', valueName: '<dir>' },
  // the range of density and alpha is checked by the library (merge/compress.ts), which names it
  density: {
    type: 'number',
    description: 'fraction of the entries kept, in (0, 1]',
    default: DEFAULT_COMPEFT_DENSITY,
    valueName: '<k>',
  },
  alpha: {
    type: 'number',
    description: 'kept entries become alpha * std * sign',
    default: DEFAULT_COMPEFT_ALPHA,
    valueName: '<a>',
  },
  out: {
    type: 'path',
    required: true,
    description: 'output directory (compeft.bin is written there)',
    valueName: '<dir>',
  },
  overwrite: { type: 'boolean', description: 'write into an existing --out directory' },
  json: jsonOption,
} as const;

/** The lines `compress` prints for a result. */
export function describeCompression(r: CompressResult): string[] {
  return [
    `wrote ${r.file} (${r.kind})`,
    `  kept         ${r.kept.toLocaleString('en-US')} of ${r.total.toLocaleString('en-US')} entries (density ${r.density}), scale alpha*std = ${formatNumber(r.alpha)} * ${r.sigma.toExponential(4)}`,
    `  bytes        ${r.bytes_in.toLocaleString('en-US')} in, ${r.bytes_written.toLocaleString('en-US')} written: ratio ${formatNumber(r.ratio)}x`,
    `  error        relative L2 ||tau^ - tau|| / ||tau|| = ${formatNumber(r.reconstruction_error)}`,
  ];
}

/** `attune compress (--adapter DIR | --model DIR --base DIR) [--density K] [--alpha A] --out DIR`. */
export const compressCommand = defineCommand({
  name: 'compress',
  summary: 'ComPEFT: compress an adapter or a fine-tuning delta to sparse ternary values',
  description: `Treats the update as one vector tau (an adapter: every A and B entry; --model: tuned - base
over every tensor), keeps the top --density fraction by |tau| and stores each kept entry as
alpha * std(tau) * sign(tau): positions as Golomb-Rice coded gaps, one sign bit each and one scale
(file format: docs/formats.md). Prints the measured compression ratio (input safetensors bytes /
bytes of the file written) and the relative reconstruction error. Inputs are checked before
anything is written. Undo with 'attune decompress'.`,
  options,
  examples: [
    'attune compress --adapter runs/lora/adapter --out runs/lora/compeft',
    'attune compress --model ./full-ft --base ./SmolLM2-135M --density 0.1 --alpha 1 --out ./ft-compeft --json',
  ],
  async run(args, io) {
    const v = args.values;
    const fromAdapter = v.adapter !== undefined;
    if (fromAdapter === (v.model !== undefined)) {
      throw new UsageError('compress: give either --adapter <dir> or --model <dir> --base <dir>');
    }
    if (fromAdapter && v.base !== undefined)
      throw new UsageError('compress: --base goes with --model, not --adapter');
    if (!fromAdapter && v.base === undefined)
      throw new UsageError('compress: --model needs --base <dir> (the delta is tuned - base)');
    const { density, alpha } = v;
    if (existsSync(v.out) && !v.overwrite)
      throw new UsageError(`compress: ${v.out} exists (pass --overwrite to write into it)`);
    const result = fromAdapter
      ? compressAdapter(v.adapter!, v.out, { density, alpha })
      : compressModelDelta(v.model!, v.base!, v.out, { density, alpha });
    for (const line of describeCompression(result)) io.line(line);
    if (v.json) io.json(result);
    return 0;
  },
});
