/** `attune world select`: the pre-fine-tuning data-selection task of a world (candidate pool, target sample, target eval). */
import { existsSync, mkdirSync } from 'node:fs';
import { join } from 'node:path';
import { ConfigError } from '../../errors.ts';
import {
  CANDIDATE_KINDS,
  readWorldDir,
  renderSelectionTask,
  SELECTION_FILES,
  writeSelectionTask,
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
    description: 'folder to write the task files into (created if missing)',
    valueName: '<dir>',
  },
  'target-fraction': {
    type: 'number',
    min: 0,
    max: 1,
    default: 1 / 3,
    description: 'fraction of the taught people that are the target domain',
    valueName: '<f>',
  },
  general: {
    type: 'number',
    min: 0,
    default: 0.5,
    description: 'general-corpus documents per target record',
    valueName: '<r>',
  },
  noise: {
    type: 'number',
    min: 0,
    default: 0.25,
    description: 'noise records (letter soup, shuffled questions) per target record',
    valueName: '<r>',
  },
  seed: {
    type: 'integer',
    min: 0,
    default: 0,
    description: 'seed of the target people, the sample and the order',
  },
  overwrite: { type: 'boolean', description: 'replace task files already in --out' },
  json: jsonOption,
} as const;

/** `attune world select --world DIR --out DIR [--target-fraction F] [--seed S] [--json]`. */
export const worldSelectCommand = defineCommand({
  name: 'world select',
  summary: 'Write a data-selection task of a world: candidate pool, target sample, target-domain questions',
  description: `Draws a target domain (a seeded --target-fraction of the taught people) and writes into --out:
candidates.jsonl (every training wording of every taught fact, on and off target, plus general
corpus documents and noise, shuffled), candidates.truth.jsonl (per line its kind: target,
off_target, general, noise), target.jsonl (one {prompt, completion} per target person: the small
target-domain sample) and eval_target.jsonl (every relation of every target person). Feed the
first two to attune data select. The same world, seed and ratios give byte-identical files. See
docs/world.md.`,
  options,
  examples: [
    'attune world select --world ./world --out ./select',
    'attune world select --world ./w --out ./s --seed 2 --json',
  ],
  async run(args, io) {
    const v = args.values;
    const existing = Object.values(SELECTION_FILES).filter((f) => existsSync(join(v.out, f)));
    if (existing.length > 0 && !v.overwrite)
      throw new ConfigError(
        `${v.out} already holds ${existing.join(', ')} (pass --overwrite to replace them)`,
      );
    if (!(v['target-fraction'] > 0 && v['target-fraction'] < 1))
      throw new ConfigError(`--target-fraction: expected a number in (0, 1), got ${v['target-fraction']}`);
    const world = readWorldDir(v.world);
    const task = renderSelectionTask(world, {
      seed: v.seed,
      targetFraction: v['target-fraction'],
      generalRatio: v.general,
      noiseRatio: v.noise,
    });
    mkdirSync(v.out, { recursive: true });
    const paths = writeSelectionTask(task, v.out);
    const counts = Object.fromEntries(
      CANDIDATE_KINDS.map((k) => [k, task.truth.filter((t) => t.kind === k).length]),
    );
    io.line(
      `${task.candidates.length} candidates (${CANDIDATE_KINDS.map((k) => `${counts[k]} ${k}`).join(', ')}); ${task.target.length} target samples; ${task.eval.length} target questions`,
    );
    io.line(`output: ${v.out}`);
    if (v.json)
      io.json({
        out: v.out,
        files: paths,
        counts,
        target: task.target.length,
        eval: task.eval.length,
        targetPeople: task.targetPeople,
      });
    return 0;
  },
});
