/**
 * `attune rounds CONFIG.yaml`: a training config (the per-round recipe: model, method, loss,
 * schedule; output_dir is the rounds' root) plus a `rounds:` section (roundsSchema). data.train
 * may be left out: each round trains on the data it built (see rounds.ts).
 *
 * The `rounds:` section is flat: the common fields below plus every registered kind's options
 * (kinds/), so the schema is built from the registry when a config is validated.
 */
import { dirname, isAbsolute, resolve } from 'node:path';
import { z } from 'zod';
import { describeSchema, type SchemaRow } from '../../config/schema-info.ts';
import { applyOverrides, readYamlMapping, validateWith } from '../../config/yaml.ts';
import { ConfigError } from '../../errors.ts';
import { lossOf, resolveConfigPaths, type TrainConfig, validateTrainConfig } from '../config.ts';
import { createLoss } from '../losses/index.ts';
import { roundKinds } from './kinds/index.ts';
import type { RoundsSpec } from './rounds.ts';

/** The common fields of `rounds:` before the kinds' options (kind and labelled: roundsSchema). */
const common = {
  prompts: z.string().min(1).describe('JSONL of {prompt, answer?}: the prompts sampled each round'),
  rounds: z.number().int().positive().default(2).describe('rounds'),
  samples: z.number().int().positive().default(4).describe('samples per prompt (on_policy, upo)'),
  temperature: z
    .number()
    .positive()
    .default(1)
    .describe('sampling temperature (on_policy, upo; list answers greedily)'),
  max_new_tokens: z.number().int().positive().default(24).describe('longest sample'),
  seed: z.number().int().default(0).describe('seed of the sampling'),
  reward: z
    .object({ name: z.string().min(1) })
    .passthrough()
    .nullable()
    .default(null)
    .describe('the reward, {name, ...options}: rule, labels {file}, judge {model?, adapter?, passes, rate}'),
};

/**
 * The `rounds:` section: `kind` (a registered kind), the common fields, every kind's options, and
 * `labelled`; unknown keys are errors. Built from the registry, so kinds registered later count.
 */
export function roundsSchema() {
  const kinds = roundKinds.list();
  const kind = z
    .string()
    .superRefine((name, ctx) => {
      if (!roundKinds.has(name)) ctx.addIssue({ code: 'custom', message: roundKinds.unknownMessage(name) });
    })
    .describe(`what a round builds: ${kinds.map((k) => k.name).join(', ')} (rounds.kind: NAME below)`);
  const labelled = z
    .string()
    .nullable()
    .default(null)
    .describe('list: labelled JSONL trained on with the pseudo-labels every round');
  const shape: Record<string, z.ZodType> = { kind, ...common };
  const owner = new Map<string, string>();
  for (const k of kinds)
    for (const [key, field] of Object.entries(k.options.shape as Record<string, z.ZodType>)) {
      // the section is flat: a kind's option may not reuse a common field or another kind's option
      if (key in shape || key === 'labelled')
        throw new ConfigError(
          `round kind '${k.name}': option '${key}' is already ${owner.has(key) ? `an option of kind '${owner.get(key)}'` : 'a common rounds field'}`,
        );
      shape[key] = field;
      owner.set(key, k.name);
    }
  return z.object({ ...shape, labelled }).strict();
}

/** The rows of the common `rounds:` fields (kind, prompts, ..., labelled), for --help and the docs. */
export function describeRoundsCommon(): SchemaRow[] {
  const kindOptions = new Set(roundKinds.list().flatMap((k) => Object.keys(k.options.shape)));
  return describeSchema(roundsSchema()).filter((r) => !kindOptions.has(r.key));
}

/** Each registered kind with its option rows, for --help and the docs. */
export function describeRoundKinds(): { name: string; description: string; options: SchemaRow[] }[] {
  return roundKinds
    .list()
    .map((k) => ({ name: k.name, description: k.description, options: describeSchema(k.options) }));
}

/** A validated `rounds:` section: the common fields plus every kind's options (defaults filled in). */
export type RoundsSection = Record<string, unknown> & {
  kind: string;
  prompts: string;
  rounds: number;
  samples: number;
  temperature: number;
  max_new_tokens: number;
  seed: number;
  reward: ({ name: string } & Record<string, unknown>) | null;
  labelled: string | null;
};

/** A validated rounds config. */
export interface RoundsConfig {
  train: TrainConfig;
  spec: RoundsSpec;
  prompts: string;
  labelled: string | null;
  reward: ({ name: string } & Record<string, unknown>) | null;
}

const at = (base: string, p: string) => (isAbsolute(p) ? p : resolve(base, p));

/** Validate a parsed rounds config (`raw`: train fields plus `rounds`); paths relative to `baseDir`. */
export function validateRoundsConfig(
  raw: Record<string, unknown>,
  where: string,
  baseDir: string,
): RoundsConfig {
  const { rounds: rawRounds, ...rest } = raw;
  if (rawRounds === undefined)
    throw new ConfigError(`${where}: rounds: missing; a rounds config needs rounds: {kind, prompts, ...}`);
  const section = validateWith(roundsSchema(), rawRounds, `${where}: rounds`) as RoundsSection;
  const kind = roundKinds.get(section.kind);
  const prompts = at(baseDir, section.prompts);
  const data = (rest.data ?? {}) as Record<string, unknown>;
  // data.train is replaced each round; the prompts file stands in for the schema
  const train = resolveConfigPaths(
    validateTrainConfig({ ...rest, data: { ...data, train: data.train ?? prompts } }, where),
    baseDir,
  );
  const { name: loss, options: lossOptions } = lossOf(train);
  // pair-trained losses declare it through their data (groupSize 2), not by name
  const onPairs = createLoss(loss, lossOptions).data?.groupSize === 2;
  if (kind.trainsOn === 'pairs' && !onPairs)
    throw new ConfigError(
      `${where}: loss: rounds.kind '${kind.name}' trains on ${kind.rowsName ?? 'pairs'} with loss 'dpo', found '${loss}'`,
    );
  if (kind.trainsOn === 'records' && onPairs)
    throw new ConfigError(
      `${where}: loss: rounds.kind '${kind.name}' trains on ${kind.rowsName ?? 'records'} (e.g. 'ce'), found the preference-pair loss '${loss}'`,
    );
  if (kind.needsReward && !section.reward)
    throw new ConfigError(
      `${where}: rounds.reward: kind '${kind.name}' needs a reward ({name: rule|labels|judge, ...})`,
    );
  const reward = section.reward ? { ...section.reward } : null;
  for (const k of ['file', 'model', 'adapter'])
    if (reward && typeof reward[k] === 'string') reward[k] = at(baseDir, reward[k] as string);
  kind.validate?.({ where, section, reward });
  const spec = Object.fromEntries(
    Object.entries(section).filter(([k]) => !['prompts', 'reward', 'labelled'].includes(k)),
  ) as Record<string, unknown>;
  // each kind's options as its spec holds them (mcts nests its mcts_* fields)
  for (const k of roundKinds.list()) {
    const keys = Object.keys(k.options.shape);
    if (!k.toSpec) continue;
    const options = Object.fromEntries(keys.map((key) => [key, section[key]]));
    for (const key of keys) delete spec[key];
    Object.assign(spec, k.toSpec(options));
  }
  const labelled = section.labelled;
  return {
    train,
    spec: spec as unknown as RoundsSpec,
    prompts,
    labelled: labelled ? at(baseDir, labelled) : null,
    reward,
  };
}

/** Read a rounds YAML, apply `--set` overrides, validate and resolve paths. */
export function loadRoundsConfig(path: string, overrides: readonly string[] = []): RoundsConfig {
  const source = readYamlMapping(path);
  applyOverrides(source.raw, overrides);
  return validateRoundsConfig(source.raw, path, dirname(resolve(path)));
}
