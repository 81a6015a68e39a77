/** `attune decompress`: a ComPEFT file back to a PEFT adapter or a model directory. */
import { existsSync } from 'node:fs';
import { UsageError } from '../../errors.ts';
import { decompress } from '../../merge/compress-decode.ts';
import { jsonOption } from '../args.ts';
import { defineCommand } from '../command.ts';

const options = {
  compressed: {
    type: 'path',
    required: true,
    description: "directory written by 'attune compress' (or its compeft.bin)",
    valueName: '<dir>',
  },
  base: {
    type: 'path',
    description: 'for a model delta: the base model it was compressed against',
    valueName: '<dir>',
  },
  out: { type: 'path', required: true, description: 'output adapter or model directory', valueName: '<dir>' },
  overwrite: { type: 'boolean', description: 'write into an existing --out directory' },
  json: jsonOption,
} as const;

/** `attune decompress --compressed DIR --out DIR [--base DIR]`. */
export const decompressCommand = defineCommand({
  name: 'decompress',
  summary: 'Rebuild the adapter or model a ComPEFT file describes',
  description: `An adapter comes back as a PEFT adapter directory (the original adapter_config.json and an
F32 adapter_model.safetensors whose entries are +-alpha*std or 0). A model delta needs --base, the
same base it was compressed against (checked by a fingerprint), and comes back as a model
directory holding base + delta in F32, the tuned model's config.json and the base's tokenizer
files.`,
  options,
  examples: [
    'attune decompress --compressed runs/lora/compeft --out runs/lora/adapter-compeft',
    'attune decompress --compressed ./ft-compeft --base ./SmolLM2-135M --out ./ft-restored --json',
  ],
  async run(args, io) {
    const v = args.values;
    if (existsSync(v.out) && !v.overwrite)
      throw new UsageError(`decompress: ${v.out} exists (pass --overwrite to write into it)`);
    const result = decompress(v.compressed, v.out, { base: v.base });
    io.line(
      `wrote ${result.out} (${result.kind === 'lora-adapter' ? 'PEFT adapter' : 'model'}: ${result.tensors} tensors, ${result.kept.toLocaleString('en-US')} of ${result.total.toLocaleString('en-US')} entries non-zero)`,
    );
    if (v.json) io.json(result);
    return 0;
  },
});
