/** `attune world pretrain`: build a world base from its recipe (the shipped ones were built this way). */
import { resolve } from 'node:path';
import {
  buildWorldBase,
  WORLD_BASE_RECIPES,
  WORLD_BASE_SIZES,
  type WorldBaseSize,
} from '../../world/base.ts';
import { jsonOption } from '../args.ts';
import { defineCommand } from '../command.ts';
import { type Progress, progress } from '../progress.ts';

const options = {
  size: {
    type: 'choice',
    choices: WORLD_BASE_SIZES,
    required: true,
    description: 'which recipe: small (the demo and bench base) or large (the teacher / strong model)',
  },
  out: {
    type: 'path',
    description: 'folder to write (default world-base-<size>)',
    valueName: '<dir>',
  },
  overwrite: { type: 'boolean', description: 'replace an existing --out once the new base is built' },
  json: jsonOption,
} as const;

/** `attune world pretrain --size small|large [--out DIR] [--json]`. */
export const worldPretrainCommand = defineCommand({
  name: 'world pretrain',
  summary: 'Pretrain a world base from its recipe (what world-bases/<size> was built with)',
  description: `Generates the benchmark world of the recipe, writes its word-level tokenizer, pretrains a
Llama from a seeded random init on the world's corpus (full fine-tuning with the Trainer), measures
greedy exact-match accuracy on every known-fact question, records the exact losses of the first steps
on each backend, and writes the model folder with base.json (recipe, sha256 of every file, accuracy,
loss curve). The folder is built under a temporary name and renamed into place; an existing --out
is refused before any work unless --overwrite, and replaced only once the new base is complete. The shipped bases
in world-bases/ are the output of this command; see docs/benchmark.md for the recipes and times.`,
  options,
  examples: [
    'attune world pretrain --size small --out world-bases/small',
    'attune world pretrain --size large --json',
  ],
  async run(args, io) {
    const v = args.values;
    const size = v.size as WorldBaseSize;
    const out = resolve(v.out ?? `world-base-${size}`);
    let bar: Progress | null = null;
    const manifest = buildWorldBase(WORLD_BASE_RECIPES[size], out, {
      overwrite: v.overwrite,
      onNote: (t) => io.note(`world pretrain: ${t}`),
      onPhase: (phase, total) => {
        bar?.stop();
        bar = progress({
          label: phase,
          total,
          stream: { write: (t: string) => io.err(t), isTTY: io.stderrIsTTY },
        });
      },
      onProgress: (done, fields) => (bar as Progress | null)?.update(done, fields),
    });
    (bar as Progress | null)?.stop();
    io.line(
      `${size} world base: ${manifest.parameters} parameters, known-fact accuracy ${manifest.known_accuracy.toFixed(3)} (${manifest.known_questions} questions), ${manifest.built.seconds} s`,
    );
    io.line(`output: ${out}`);
    if (v.json) {
      const { loss_curve: _curve, ...summary } = manifest;
      io.json({ out, ...summary });
    }
    return 0;
  },
});
