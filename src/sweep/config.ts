/**
 * The sweep file (`attune sweep SWEEP.yaml`): a base training config, a search space over its
 * fields (grid, random or bayes: AutoPEFT's Bayesian search, see bayes/optimizer.ts), seeds, one objective or several (a Pareto front),
 * the executor and the output folder. Validated by a zod schema like every YAML of Attune; paths are
 * relative to the sweep file.
 */
import { availableParallelism } from 'node:os';
import { dirname, isAbsolute, resolve } from 'node:path';
import { z } from 'zod';
import { loadPlugins, resolvePlugins } from '../config/plugins.ts';
import { readYamlMapping, validateWith } from '../config/yaml.ts';
import { ConfigError } from '../errors.ts';
import { worldMetricNames } from './world-metrics.ts';

/** Metrics every finished trial records (result.json `metrics`). */
export const TRIAL_METRICS = ['eval_loss', 'final_loss', 'trainable_params'] as const;

const objectiveSchema = z
  .object({
    metric: z.string().describe(`a trial metric: ${TRIAL_METRICS.join(', ')}`),
    goal: z.enum(['min', 'max']).default('min').describe('whether smaller or larger is better'),
  })
  .strict();

/** One random-search dimension: a list of choices, or a range. */
const dimensionSchema = z.union([
  z.array(z.unknown()).min(1),
  z.object({ uniform: z.tuple([z.number(), z.number()]) }).strict(),
  z.object({ log_uniform: z.tuple([z.number().positive(), z.number().positive()]) }).strict(),
  z.object({ int: z.tuple([z.number().int(), z.number().int()]) }).strict(),
]);

export type Dimension = z.infer<typeof dimensionSchema>;

const searchBranches = [
  z
    .object({
      grid: z
        .record(z.string(), z.array(z.unknown()).min(1))
        .describe('field path -> values; every combination is a trial'),
    })
    .strict(),
  z
    .object({
      random: z
        .object({
          trials: z.number().int().positive().describe('how many configurations to draw'),
          seed: z.number().int().default(0).describe('seed of the draws'),
          space: z.record(z.string(), dimensionSchema).describe('field path -> choices or a range'),
        })
        .strict(),
    })
    .strict(),
  z
    .object({
      bayes: z
        .object({
          trials: z
            .number()
            .int()
            .positive()
            .describe('configurations to try in all (initial ones included)'),
          initial: z
            .number()
            .int()
            .positive()
            .default(4)
            .describe('random configurations before the first proposal'),
          seed: z.number().int().default(0).describe('seed of the initial draws and the candidates'),
          batch: z
            .number()
            .int()
            .positive()
            .optional()
            .describe('configurations proposed at a time (default: the local workers; 1 on bullmq)'),
          space: z.record(z.string(), dimensionSchema).describe('field path -> choices or a range'),
        })
        .strict(),
    })
    .strict(),
] as const;

const searchSchema = z.union(searchBranches);

// discriminated by `name`, so an error names the field of the chosen executor, not 'Invalid input'
const executorSchema = z.discriminatedUnion('name', [
  z
    .object({
      name: z.literal('local'),
      workers: z
        .number()
        .int()
        .positive()
        .optional()
        .describe('parallel trial processes (default: cores / threads)'),
    })
    .strict(),
  z
    .object({
      name: z.literal('bullmq'),
      url: z.string().describe('redis://host:port of the queue'),
      artifacts: z.string().describe('a directory every worker can reach'),
    })
    .strict(),
]);

/** The schema of sweep files. */
export const sweepSchema = z
  .object({
    base: z.string().describe('the training config every trial starts from'),
    search: searchSchema,
    seeds: z
      .array(z.number().int())
      .min(1)
      .optional()
      .describe("train.seed of each trial (default: the base's)"),
    objective: z.union([objectiveSchema, z.array(objectiveSchema).min(1)]),
    executor: executorSchema.default({ name: 'local' }),
    out: z.string().describe('sweep folder: one sub-folder per trial, results.json, report.html'),
    eval_world: z
      .union([z.string(), z.array(z.string()).min(1)], {
        error: (issue) =>
          `expected a world eval file or a non-empty list of them, found ${JSON.stringify(issue.input)}`,
      })
      .optional()
      .describe(
        'a world eval file of attune world, or a list of them (e.g. [eval_mixed.jsonl, eval_ood.jsonl]): each trial also answers their questions (accuracy, accuracy_<split>, retention, ... docs/sweeps.md)',
      ),
    threads_per_trial: z
      .number()
      .int()
      .positive()
      .default(1)
      .describe('kernel threads of every trial, on every executor'),
    imports: z
      .array(z.string())
      .default([])
      .describe(
        'plug-in module files (registering methods, losses, ...: docs/extending.md) this sweep and every trial process import first',
      ),
  })
  .strict();

export type SweepSearch = z.infer<typeof searchSchema>;
export type Objective = z.infer<typeof objectiveSchema>;

/** A validated sweep, paths absolute. */
export interface SweepConfig {
  /** The sweep file (for messages). */
  path: string;
  base: string;
  search:
    | { kind: 'grid'; grid: Record<string, unknown[]> }
    | {
        kind: 'random';
        trials: number;
        seed: number;
        space: Record<string, Dimension>;
      }
    | {
        kind: 'bayes';
        trials: number;
        initial: number;
        seed: number;
        batch: number;
        space: Record<string, Dimension>;
      };
  seeds: number[] | null;
  objectives: Objective[];
  /** The world eval files every trial answers (accuracy metrics), or null. */
  evalWorld: string[] | null;
  executor: { name: 'local'; workers: number } | { name: 'bullmq'; url: string; artifacts: string };
  out: string;
  threadsPerTrial: number;
  /** Plug-in files (real absolute paths) the sweep and every trial process import first. */
  imports: string[];
}

function absolute(baseDir: string, p: string): string {
  return isAbsolute(p) ? p : resolve(baseDir, p);
}

/** Validate a parsed sweep mapping (`where` names it in errors; relative paths resolve against `baseDir`). */
export function validateSweep(raw: unknown, where: string, baseDir: string): SweepConfig {
  // a search of one kind is checked against that kind alone: its error names the field, where the
  // union's would only say 'Invalid input'
  const rawSearch = (raw as { search?: unknown } | null)?.search;
  const kind = rawSearch && typeof rawSearch === 'object' ? Object.keys(rawSearch) : [];
  const branch = searchBranches.find((b) => kind.length === 1 && kind[0]! in b.shape);
  if (branch) validateWith(z.object({ search: branch }).passthrough(), raw, where);
  const s = validateWith(sweepSchema, raw, where);
  const objectives = Array.isArray(s.objective) ? s.objective : [s.objective];
  const world = worldMetricNames();
  const metrics = [...TRIAL_METRICS, ...(s.eval_world ? world : [])];
  for (const o of objectives)
    if (!metrics.includes(o.metric))
      throw new ConfigError(
        `${where}: objective.metric '${o.metric}': expected one of ${metrics.join(', ')}${s.eval_world || !world.includes(o.metric) ? '' : ' (accuracy, retention, ece, brier, wrong_auroc_<score> and ood_auroc_<score> need eval_world: a world eval file)'}`,
      );
  const threads = s.threads_per_trial;
  const executor: SweepConfig['executor'] =
    s.executor.name === 'local'
      ? {
          name: 'local',
          workers: s.executor.workers ?? Math.max(1, Math.floor(availableParallelism() / threads)),
        }
      : { ...s.executor, artifacts: absolute(baseDir, s.executor.artifacts) };
  const search: SweepConfig['search'] =
    'grid' in s.search
      ? { kind: 'grid', grid: s.search.grid }
      : 'random' in s.search
        ? { kind: 'random', ...s.search.random }
        : {
            kind: 'bayes',
            ...s.search.bayes,
            batch: s.search.bayes.batch ?? (executor.name === 'local' ? executor.workers : 1),
          };
  if (search.kind === 'bayes' && objectives.length > 2)
    throw new ConfigError(
      `${where}: objective: search.bayes optimises one objective (expected improvement) or two (expected hypervolume improvement), found ${objectives.length}`,
    );
  const fields = searchFields(search);
  if (fields.length === 0) throw new ConfigError(`${where}: search: expected at least one field to search`);
  for (const f of fields) {
    if (f === 'output_dir' || f.startsWith('output_dir.'))
      throw new ConfigError(`${where}: search field '${f}': each trial's output_dir is set by the sweep`);
    if (f === 'train.seed' && s.seeds)
      throw new ConfigError(
        `${where}: search field 'train.seed': the seeds list sets it; search one or the other`,
      );
  }
  if (search.kind !== 'grid')
    for (const [f, d] of Object.entries(search.space))
      if (!Array.isArray(d)) {
        const [lo, hi] = Object.values(d)[0] as [number, number];
        if (!(lo <= hi))
          throw new ConfigError(
            `${where}: search.${search.kind}.space '${f}': expected low <= high, found [${lo}, ${hi}]`,
          );
      }
  return {
    path: where,
    base: absolute(baseDir, s.base),
    search,
    seeds: s.seeds ?? null,
    objectives,
    evalWorld:
      s.eval_world === undefined
        ? null
        : (Array.isArray(s.eval_world) ? s.eval_world : [s.eval_world]).map((p) => absolute(baseDir, p)),
    executor,
    out: absolute(baseDir, s.out),
    threadsPerTrial: threads,
    imports: resolvePlugins(s.imports, baseDir, `${where}: imports`),
  };
}

/** The searched field paths, in the search's order. */
export function searchFields(search: SweepConfig['search']): string[] {
  return Object.keys(search.kind === 'grid' ? search.grid : search.space);
}

/** Read and validate a sweep file (its plug-ins' registrations are known only once loaded: see loadSweepFile). */
export function loadSweepConfig(path: string): SweepConfig {
  const source = readYamlMapping(path, 'the sweep file');
  return validateSweep(source.raw, path, dirname(resolve(path)));
}

/**
 * Read a sweep file, import its plug-ins, then validate it: an objective may name what a plug-in
 * registers (a score's wrong_auroc_<score>). A bad `imports` is reported by the validation.
 */
export async function loadSweepFile(path: string): Promise<SweepConfig> {
  const source = readYamlMapping(path, 'the sweep file');
  const imports = (source.raw as { imports?: unknown }).imports;
  if (Array.isArray(imports) && imports.every((i) => typeof i === 'string'))
    await loadPlugins(
      resolvePlugins(imports, dirname(resolve(path)), `${path}: imports`),
      `${path}: imports`,
    );
  return validateSweep(source.raw, path, dirname(resolve(path)));
}
