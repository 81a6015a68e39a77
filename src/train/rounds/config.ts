/**
 * `attune rounds CONFIG.yaml`: a training config (the per-round recipe: model, method, loss,
 * schedule; output_dir is the rounds' root) plus a `rounds:` section (roundsSchema). data.train
 * may be left out: each round trains on the data it built (see rounds.ts).
 */
import { dirname, isAbsolute, resolve } from 'node:path';
import { z } from 'zod';
import { applyOverrides, readYamlMapping, validateWith } from '../../config/yaml.ts';
import { ConfigError } from '../../errors.ts';
import { lossOf, resolveConfigPaths, type TrainConfig, validateTrainConfig } from '../config.ts';
import { createLoss } from '../losses/index.ts';
import { MCTS_DEFAULTS, type RoundsSpec } from './rounds.ts';

/** The `rounds:` section. */
export const roundsSchema = z
  .object({
    kind: z
      .enum(['on_policy', 'upo', 'list', 'mcts'])
      .describe(
        'on_policy: graded on-policy pairs + DPO; upo: judge pairs filtered by MC-dropout confidence + DPO; list: confident pseudo-labels + CE; mcts: step-level pairs from a tree search + DPO',
      ),
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
      .describe(
        'the reward, {name, ...options}: rule, labels {file}, judge {model?, adapter?, passes, rate}',
      ),
    upo_threshold: z
      .number()
      .min(0)
      .max(1)
      .default(0.8)
      .describe("upo (upo_mode 'filter'): keep pairs whose judge confidence is at least this"),
    upo_mode: z
      .enum(['filter', 'weight'])
      .default('filter')
      .describe(
        "upo: 'filter' keeps pairs of confidence >= upo_threshold; 'weight' keeps all, each weighted by its confidence in the dpo loss",
      ),
    list_threshold: z
      .number()
      .min(0)
      .max(1)
      .default(0)
      .describe('list: keep pseudo-labels of mean token probability at least this'),
    list_top_fraction: z
      .number()
      .gt(0)
      .max(1)
      .default(1)
      .describe('list: then keep this most confident fraction'),
    mcts_iterations: z
      .number()
      .int()
      .positive()
      .default(MCTS_DEFAULTS.iterations)
      .describe('mcts: search iterations per prompt (select, expand, evaluate, back up)'),
    mcts_expand: z
      .number()
      .int()
      .min(2)
      .default(MCTS_DEFAULTS.expand)
      .describe('mcts: candidate steps sampled per expansion'),
    mcts_c_puct: z.number().min(0).default(MCTS_DEFAULTS.c_puct).describe('mcts: PUCT exploration constant'),
    mcts_margin: z
      .number()
      .gt(0)
      .default(MCTS_DEFAULTS.margin)
      .describe('mcts: a node pairs its best and worst child when their Q differ by at least this'),
    mcts_max_depth: z
      .number()
      .int()
      .positive()
      .default(MCTS_DEFAULTS.max_depth)
      .describe('mcts: deepest node expanded (deeper: a leaf valued by a rollout)'),
    mcts_step_tokens: z
      .number()
      .int()
      .positive()
      .default(MCTS_DEFAULTS.step_tokens)
      .describe('mcts: longest step in tokens'),
    mcts_time_s: z
      .number()
      .positive()
      .default(MCTS_DEFAULTS.time_s)
      .describe("mcts: wall-time budget of one prompt's search, seconds"),
    mcts_delimiter: z.string().min(1).default(MCTS_DEFAULTS.delimiter).describe('mcts: what ends a step'),
    labelled: z
      .string()
      .nullable()
      .default(null)
      .describe('list: labelled JSONL trained on with the pseudo-labels every round'),
  })
  .strict();

export type RoundsSection = z.output<typeof roundsSchema>;

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
  const section = validateWith(roundsSchema, rawRounds, `${where}: rounds`);
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
  if (section.kind !== 'list' && !onPairs)
    throw new ConfigError(
      `${where}: loss: rounds.kind '${section.kind}' trains on pairs with loss 'dpo', found '${loss}'`,
    );
  if (section.kind === 'list' && onPairs)
    throw new ConfigError(
      `${where}: loss: rounds.kind 'list' trains on pseudo-labels (e.g. 'ce'), found the preference-pair loss '${loss}'`,
    );
  if (section.kind !== 'list' && !section.reward)
    throw new ConfigError(
      `${where}: rounds.reward: kind '${section.kind}' needs a reward ({name: rule|labels|judge, ...})`,
    );
  const reward = section.reward ? { ...section.reward } : null;
  for (const k of ['file', 'model', 'adapter'])
    if (reward && typeof reward[k] === 'string') reward[k] = at(baseDir, reward[k] as string);
  if (section.kind === 'upo' && reward?.name !== 'judge')
    throw new ConfigError(
      `${where}: rounds.reward: upo needs the MC-dropout 'judge' reward (per-pass scores), found '${reward?.name}'`,
    );
  const {
    prompts: _p,
    reward: _r,
    labelled,
    mcts_iterations,
    mcts_expand,
    mcts_c_puct,
    mcts_margin,
    mcts_max_depth,
    mcts_step_tokens,
    mcts_time_s,
    mcts_delimiter,
    ...common
  } = section;
  const spec: RoundsSpec = {
    ...common,
    mcts: {
      iterations: mcts_iterations,
      expand: mcts_expand,
      c_puct: mcts_c_puct,
      margin: mcts_margin,
      max_depth: mcts_max_depth,
      step_tokens: mcts_step_tokens,
      time_s: mcts_time_s,
      delimiter: mcts_delimiter,
    },
  };
  return { train, spec, prompts, labelled: labelled ? at(baseDir, labelled) : null, reward };
}

/** Read a rounds YAML, apply `--set` overrides, validate and resolve paths. */
export function loadRoundsConfig(path: string, overrides: readonly string[] = []): RoundsConfig {
  const source = readYamlMapping(path);
  applyOverrides(source.raw, overrides);
  return validateRoundsConfig(source.raw, path, dirname(resolve(path)));
}
