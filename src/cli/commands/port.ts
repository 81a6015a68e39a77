/** `attune port`: PortLLM — apply a LoRA adapter's patch to an evolved base model. */
import { existsSync } from 'node:fs';
import { UsageError } from '../../errors.ts';
import { PORT_RECORD_FILE, portAdapter } from '../../merge/port.ts';
import { jsonOption } from '../args.ts';
import { defineCommand } from '../command.ts';

const options = {
  adapter: {
    type: 'path',
    required: true,
    description: 'LoRA adapter directory trained on the old base',
    valueName: '<dir>',
  },
  'to-base': {
    type: 'path',
    required: true,
    description: 'the new (evolved) base model directory',
    valueName: '<dir>',
  },
  'from-base': {
    type: 'path',
    description: 'the old base, to check that the architectures match',
    defaultText: "the adapter's base_model_name_or_path when it is a local directory",
    valueName: '<dir>',
  },
  out: { type: 'path', required: true, description: 'output model directory', valueName: '<dir>' },
  overwrite: { type: 'boolean', description: 'write into an existing --out directory' },
  json: jsonOption,
} as const;

/** `attune port --adapter DIR --to-base DIR --out DIR [--from-base DIR]`. */
export const portCommand = defineCommand({
  name: 'port',
  summary: 'PortLLM: patch an evolved base with a LoRA trained on the old one, no training',
  description: `Writes --to-base with W + scaling * B A added to every module the adapter targets (scaling
lora_alpha / r, or / sqrt(r) with use_rslora), as a plain model directory, plus ${PORT_RECORD_FILE}
recording the adapter, the bases, the scaling and the tensors patched. Every adapted module must
exist in the new base with the shape of B A (all mismatches are listed), and the old base, when
known, must be the same architecture; otherwise nothing is written.`,
  options,
  examples: [
    'attune port --adapter runs/lora/adapter --to-base ./SmolLM2-135M-v2 --out ./ported',
    'attune port --adapter ./adapter --from-base ./base-v1 --to-base ./base-v2 --out ./ported --json',
  ],
  async run(args, io) {
    const v = args.values;
    if (existsSync(v.out) && !v.overwrite)
      throw new UsageError(`port: ${v.out} exists (pass --overwrite to write into it)`);
    const record = portAdapter({
      adapter: v.adapter,
      toBase: v['to-base'],
      fromBase: v['from-base'],
      out: v.out,
    });
    io.line(
      `wrote ${record.out}: ${record.targets.length} module(s) patched with scaling ${record.scaling} (r ${record.r}, lora_alpha ${record.lora_alpha}${record.use_rslora ? ', rsLoRA' : ''}); see ${PORT_RECORD_FILE}`,
    );
    if (v.json) io.json(record);
    return 0;
  },
});
