/**
 * `attune active CONFIG.yaml`: a training config (the per-round recipe: model, method, loss, train;
 * data.train may be left out, each round trains on its labels) plus the active-learning fields
 * (activeSchema): pool, oracle, strategy, rounds, per_round, seed_labels, mc_dropout, eval, out.
 * The pool and oracle sections are validated here and resolved by the caller (the world's pool and
 * oracle live above this layer: src/world/active-sources.ts).
 */
import { dirname, isAbsolute, resolve } from 'node:path';
import { z } from 'zod';
import { applyOverrides, readYamlMapping, validateWith } from '../../config/yaml.ts';
import { resolveConfigPaths, type TrainConfig, validateTrainConfig } from '../../train/config.ts';
import type { ActiveSpec } from './loop.ts';
import { activeStrategies } from './strategy.ts';

const poolSchema = z.union([
  z
    .object({
      world: z
        .string()
        .min(1)
        .describe("a world folder: its unlabeled question pool (taught people's questions)"),
      seed: z.number().int().default(0).describe("seed of the pool's order"),
    })
    .strict(),
  z
    .object({ file: z.string().min(1).describe('a JSONL of {id?, prompt} (id defaults to the line number)') })
    .strict(),
]);

const oracleSchema = z.union([
  z.object({ name: z.literal('world'), world: z.string().min(1).describe('the world folder') }).strict(),
  z
    .object({ name: z.literal('jsonl'), file: z.string().min(1).describe('a JSONL of {id, answer} labels') })
    .strict(),
]);

/** The active-learning fields of the config. */
export const activeSchema = z
  .object({
    pool: poolSchema.describe('{world: DIR, seed} (the world pool) or {file: pool.jsonl}'),
    oracle: oracleSchema.describe('{name: world, world: DIR} or {name: jsonl, file: labels.jsonl}'),
    strategy: z
      .union([z.string(), z.object({ name: z.string() }).passthrough()])
      .default('star')
      .describe('star | random | entropy | least_confidence, or {name, ...options}'),
    rounds: z.number().int().positive().default(3).describe('query rounds'),
    per_round: z.number().int().positive().default(20).describe('labels asked per query round'),
    seed_labels: z.number().int().min(0).default(20).describe('random labels of round 0 (0 = no seed round)'),
    mc_dropout: z
      .object({
        passes: z.number().int().positive().default(3).describe('MC-dropout passes T (STAR: 3)'),
        p: z.number().gt(0).lt(1).default(0.1).describe('dropout rate forced at every site'),
      })
      .strict()
      .default({ passes: 3, p: 0.1 }),
    eval: z
      .string()
      .nullable()
      .default(null)
      .describe('a JSONL of {prompt, answer}: exact-match accuracy per round'),
    max_new_tokens: z.number().int().positive().default(16).describe('longest greedy answer scored'),
    seed: z.number().int().default(0).describe('seed of the random choices'),
    out: z.string().min(1).describe('output folder: round-<k>/ each round'),
  })
  .strict();

export type ActiveSection = z.output<typeof activeSchema>;

/** A validated active config. */
export interface ActiveConfig {
  train: TrainConfig;
  spec: ActiveSpec;
  pool: ActiveSection['pool'];
  oracle: ActiveSection['oracle'];
  eval: string | null;
}

const KEYS = Object.keys(activeSchema.shape);
const at = (base: string, p: string) => (isAbsolute(p) ? p : resolve(base, p));

/** Validate a parsed active config (train fields plus the active fields); paths relative to `baseDir`. */
export function validateActiveConfig(
  raw: Record<string, unknown>,
  where: string,
  baseDir: string,
): ActiveConfig {
  const activeRaw: Record<string, unknown> = {};
  const trainRaw: Record<string, unknown> = {};
  for (const [k, v] of Object.entries(raw)) (KEYS.includes(k) ? activeRaw : trainRaw)[k] = v;
  const a = validateWith(activeSchema, activeRaw, where);
  const strategy = activeStrategies.parse(a.strategy, `${where}: strategy`);
  const out = at(baseDir, a.out);
  const data = (trainRaw.data ?? {}) as Record<string, unknown>;
  // data.train is replaced each round (the round's labels); the output folder stands in for the schema
  const train = resolveConfigPaths(
    validateTrainConfig({ ...trainRaw, data: { ...data, train: data.train ?? out }, output_dir: out }, where),
    baseDir,
  );
  const pool =
    'world' in a.pool ? { ...a.pool, world: at(baseDir, a.pool.world) } : { file: at(baseDir, a.pool.file) };
  const oracle =
    a.oracle.name === 'world'
      ? { ...a.oracle, world: at(baseDir, a.oracle.world) }
      : { ...a.oracle, file: at(baseDir, a.oracle.file) };
  return {
    train,
    spec: {
      strategy,
      rounds: a.rounds,
      per_round: a.per_round,
      seed_labels: a.seed_labels,
      mc_dropout: a.mc_dropout,
      max_new_tokens: a.max_new_tokens,
      seed: a.seed,
    },
    pool,
    oracle,
    eval: a.eval === null ? null : at(baseDir, a.eval),
  };
}

/** Read an active YAML, apply `--set` overrides, validate and resolve paths. */
export function loadActiveConfig(path: string, overrides: readonly string[] = []): ActiveConfig {
  const source = readYamlMapping(path);
  applyOverrides(source.raw, overrides);
  return validateActiveConfig(source.raw, path, dirname(resolve(path)));
}
