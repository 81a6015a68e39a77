/** `attune data corrupt`: the taught facts of a world with a seeded fraction of wrong answers and malformed records. */
import { existsSync } from 'node:fs';
import { ConfigError } from '../../errors.ts';
import {
  type QaWordings,
  readWorldDir,
  renderCorruptedFinetuneSet,
  truthPathFor,
  writeCorruptedSet,
} from '../../world/index.ts';
import { jsonOption } from '../args.ts';
import { defineCommand } from '../command.ts';

const options = {
  world: {
    type: 'path',
    required: true,
    description: 'a folder written by attune world (its world.json)',
    valueName: '<dir>',
  },
  out: {
    type: 'path',
    required: true,
    description: 'the noisy JSONL to write (the truth goes beside it, .truth.jsonl)',
    valueName: '<file>',
  },
  fraction: {
    type: 'number',
    min: 0,
    max: 1,
    default: 0.3,
    description: 'fraction of records with a wrong answer',
    valueName: '<f>',
  },
  malformed: {
    type: 'number',
    min: 0,
    max: 1,
    default: 0,
    description: 'fraction of malformed records',
    valueName: '<f>',
  },
  wordings: {
    type: 'choice',
    choices: ['canonical', 'training'],
    default: 'canonical',
    description: 'the canonical question only (the bench file) or every training wording',
  },
  seed: { type: 'integer', min: 0, default: 0, description: 'seed of which records are corrupted and how' },
  overwrite: { type: 'boolean', description: 'replace --out and its truth file if they exist' },
  json: jsonOption,
} as const;

/** `attune data corrupt --world DIR --out noisy.jsonl [--fraction 0.3] [--malformed 0.05] [--seed S] [--json]`. */
export const dataCorruptCommand = defineCommand({
  name: 'data corrupt',
  summary:
    'Write the taught facts of a world with seeded wrong answers and malformed records, plus the truth',
  description: `Renders the world's taught facts as {prompt, completion} pairs and replaces the answer of
--fraction of them with a wrong value of the same relation drawn from the world (another city, year,
employer, ...), and makes --malformed of them malformed (empty prompt, missing or non-string
completion, truncated JSON). Writes --out and, beside it, <name>.truth.jsonl: per line its status
(clean, corrupted, malformed), the world's answer and the given one. See docs/world.md.`,
  options,
  examples: ['attune data corrupt --world ./world --out noisy.jsonl --fraction 0.3 --malformed 0.05'],
  async run(args, io) {
    const v = args.values;
    const truth = truthPathFor(v.out);
    const existing = [v.out, truth].filter((p) => existsSync(p));
    if (existing.length > 0 && !v.overwrite)
      throw new ConfigError(`${existing.join(' and ')} already exist (pass --overwrite to replace them)`);
    const world = readWorldDir(v.world);
    const set = renderCorruptedFinetuneSet(
      world,
      { seed: v.seed, corruptFraction: v.fraction, malformedFraction: v.malformed },
      v.wordings as QaWordings,
    );
    const written = writeCorruptedSet(set, v.out);
    const count = (s: string) => set.truth.filter((t) => t.status === s).length;
    const counts = {
      records: set.lines.length,
      clean: count('clean'),
      corrupted: count('corrupted'),
      malformed: count('malformed'),
    };
    io.line(
      `${counts.records} records: ${counts.clean} clean, ${counts.corrupted} corrupted, ${counts.malformed} malformed`,
    );
    io.line(`output: ${written.data}, truth: ${written.truth}`);
    if (v.json) io.json({ out: written.data, truth: written.truth, counts });
    return 0;
  },
});
