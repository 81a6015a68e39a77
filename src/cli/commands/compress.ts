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
import { type AlphaSelection, selectCompeftAlpha } from '../../merge/compress-select.ts';
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
  base: {
    type: 'path',
    description: 'base model of --model (or of --adapter with --select-alpha)',
    valueName: '<dir>',
  },
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
  'select-alpha': {
    type: 'boolean',
    description:
      "choose alpha on --data (held-out JSONL) by ComPEFT's rule: lowest held-out loss over a grid",
  },
  data: {
    type: 'path',
    description: 'held-out JSONL for --select-alpha (scored on the --base + adapter)',
    valueName: '<file>',
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
anything is written. Undo with 'attune decompress'. With --select-alpha, alpha is chosen as the
ComPEFT paper does, on held-out data: for each alpha of a grid (0.5 ... 10) the adapter is
compressed, applied to --base and scored on --data (mean NLL of the trained tokens); the lowest
loss wins, and the uncompressed adapter's loss is printed next to it.`,
  options,
  examples: [
    'attune compress --adapter runs/lora/adapter --out runs/lora/compeft',
    'attune compress --model ./full-ft --base ./SmolLM2-135M --density 0.1 --alpha 1 --out ./ft-compeft --json',
    'attune compress --adapter runs/lora/adapter --base ./base --select-alpha --data heldout.jsonl --out runs/lora/compeft',
  ],
  async run(args, io) {
    const v = args.values;
    const fromAdapter = v.adapter !== undefined;
    if (fromAdapter === (v.model !== undefined)) {
      throw new UsageError('compress: give either --adapter <dir> or --model <dir> --base <dir>');
    }
    if (v['select-alpha'] && (!fromAdapter || v.base === undefined || v.data === undefined))
      throw new UsageError(
        'compress: --select-alpha needs --adapter <dir>, its --base <dir> and --data <held-out.jsonl>',
      );
    if (!v['select-alpha'] && v.data !== undefined)
      throw new UsageError('compress: --data goes with --select-alpha');
    if (fromAdapter && v.base !== undefined && !v['select-alpha'])
      throw new UsageError('compress: --base goes with --model (or with --adapter and --select-alpha)');
    if (!fromAdapter && v.base === undefined)
      throw new UsageError('compress: --model needs --base <dir> (the delta is tuned - base)');
    const { density } = v;
    let alpha = v.alpha;
    if (existsSync(v.out) && !v.overwrite)
      throw new UsageError(`compress: ${v.out} exists (pass --overwrite to write into it)`);
    let selection: AlphaSelection | null = null;
    if (v['select-alpha']) {
      selection = selectCompeftAlpha({ adapterDir: v.adapter!, baseDir: v.base!, data: v.data!, density });
      alpha = selection.alpha;
      io.line(`held-out loss: uncompressed ${formatNumber(selection.uncompressedLoss)}`);
      for (const c of selection.candidates)
        io.line(
          `  alpha ${formatNumber(c.alpha)}: ${formatNumber(c.loss)}${c.alpha === alpha ? '  <- chosen' : ''}`,
        );
    }
    const result = fromAdapter
      ? compressAdapter(v.adapter!, v.out, { density, alpha })
      : compressModelDelta(v.model!, v.base!, v.out, { density, alpha });
    for (const line of describeCompression(result)) io.line(line);
    if (v.json) io.json(selection ? { ...result, alpha_selection: selection } : result);
    return 0;
  },
});
