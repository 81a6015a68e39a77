/**
 * `attune merge` configs: mergekit's YAML shape, validated by one zod schema built for the chosen
 * method from its registry entry (method.ts): which parameters it reads globally and per model,
 * their defaults and ranges, and its own checks. Every problem of a file is reported in one run,
 * each with its line (config/yaml.ts), before any model is opened.
 *
 *   merge_method: ties
 *   base_model: ./base
 *   models:
 *     - model: ./math            # a model dir ...
 *       parameters: {weight: 1.0, density: 0.5}
 *     - model: ./base+./code-lora  # ... or base_dir+adapter_dir (LoRA folded in while streaming)
 *       parameters: {weight: 0.7, density: 0.5}
 *   parameters: {normalize: true, lambda: 1.0}
 *   dtype: bfloat16
 *
 * Paths are relative to the YAML file. Per-model parameters override the global ones, which
 * override the method's defaults (mergekit's lookup order).
 */
import { dirname, resolve } from 'node:path';
import { z } from 'zod';
import { closest } from '../config/suggest.ts';
import { applyOverrides, readYamlMapping, validateWith, type YamlSource } from '../config/yaml.ts';
import {
  type MergeConfigView,
  type MergeMethod,
  mergeMethods,
  UNSUPPORTED_MERGEKIT_METHODS,
} from './method.ts';
import './methods/index.ts';
import { type ModelRef, parseModelReference } from './reference.ts';
import type { Setting } from './settings.ts';

/** Parameters as validated: setting (or boolean / choice) per name. */
export type ParameterSettings = Partial<Record<string, Setting>>;

/** A model entry of a validated config. */
export interface MergeModelEntry {
  ref: ModelRef;
  /** The entry's own parameters as written (no defaults). */
  parameters: ParameterSettings;
}

/** A validated merge config with resolved model references. */
export interface MergeConfig {
  /** The method's name (`merge_method`). */
  method: string;
  /** The method's registry entry. */
  mergeMethod: MergeMethod;
  base: ModelRef | null;
  models: MergeModelEntry[];
  /** Global parameters, the method's defaults filled in. */
  parameters: ParameterSettings;
  /** Output dtype (out_dtype, else dtype), null = keep each tensor's stored dtype. */
  outDtype: 'float32' | 'bfloat16' | 'float16' | null;
  seed: number;
  eval: { data: string; maxLength: number; batchSize: number } | null;
  /** Where the config came from (errors name it). */
  source: string;
}

const dtypeSchema = z.enum(['float32', 'bfloat16', 'float16']);

const evalSchema = z
  .object({
    data: z
      .string()
      .min(1)
      .describe('held-out JSONL file ({text}, {prompt, completion}, {messages}, alpaca)'),
    max_length: z.number().int().positive().default(512).describe('maximum tokens per example'),
    batch_size: z.number().int().positive().default(4).describe('examples per forward pass'),
  })
  .strict();

/** mergekit keys Attune refuses with a reason rather than "unknown key". */
const REFUSED_KEYS: Record<string, string> = {
  slices: "'slices' is not supported: list whole models under 'models' (layer slicing is not implemented)",
  modules: "'modules' is not supported: list whole models under 'models' (layer slicing is not implemented)",
};

// key checks run even when a field failed, so one run reports every problem of the file
const always = { when: () => true } as never;

/** A value's own keys when it is a plain object. */
function keysOf(value: unknown): string[] {
  return value !== null && typeof value === 'object' && !Array.isArray(value) ? Object.keys(value) : [];
}

/** Every parameter name of any registered method. */
function allParameterNames(): Set<string> {
  return new Set(mergeMethods.list().flatMap((m) => Object.keys(m.options.shape)));
}

function withoutDefault(field: z.ZodType): z.ZodType {
  const def = (field as unknown as { def: { type: string; innerType?: z.ZodType } }).def;
  return (def.type === 'default' && def.innerType ? def.innerType : field).optional();
}

/**
 * The schema of one parameters block of `method`: the global block (every option, defaults filled
 * in) or a model's (its per-model options, no defaults). A key the block may not have is reported
 * as what it is: a global parameter set per model, another method's parameter, or an unknown key.
 */
function parametersSchema(method: MergeMethod | null, perModel: boolean): z.ZodType {
  if (!method) return z.record(z.string(), z.unknown());
  const all = method.options.shape as Record<string, z.ZodType>;
  const keys = perModel ? method.modelParameters : Object.keys(all);
  const shape = Object.fromEntries(keys.map((k) => [k, perModel ? withoutDefault(all[k]!) : all[k]!]));
  return z
    .object(shape)
    .loose()
    .superRefine((value, ctx) => {
      const known = allParameterNames();
      for (const key of keysOf(value)) {
        if (key in shape) continue;
        if (perModel && key in all) {
          ctx.addIssue({
            code: 'custom',
            path: [key],
            params: { bare: true },
            message: `'${key}' is a global parameter of ${method.name}; set it in the top-level 'parameters'`,
          });
        } else if (known.has(key)) {
          const what = perModel ? 'per-model parameters' : 'its parameters';
          ctx.addIssue({
            code: 'custom',
            path: [key],
            params: { bare: true },
            message: `${method.name} has no parameter '${key}' (${what}: ${keys.join(', ') || 'none'})`,
          });
        } else {
          ctx.addIssue({
            code: 'unrecognized_keys',
            keys: [key],
            input: value,
            message: `unknown key '${key}'`,
          });
        }
      }
    }, always);
}

function methodNameSchema() {
  return z.string().superRefine((name, ctx) => {
    if (mergeMethods.has(name)) return;
    const supported = mergeMethods.names().join(', ');
    const guess = closest(name, mergeMethods.names());
    const message = UNSUPPORTED_MERGEKIT_METHODS.includes(name)
      ? `merge_method '${name}' (mergekit) is not supported by Attune (supported: ${supported})`
      : `unknown merge_method '${name}'${guess ? ` (did you mean '${guess}'?)` : ''} (supported: ${supported})`;
    ctx.addIssue({ code: 'custom', message, params: { bare: 'message' } });
  });
}

type Problem = (message: string, path?: readonly (string | number)[]) => void;

/** Checks across fields: the base, duplicate models, eval, and the method's own `check`. */
function checkConfig(method: MergeMethod, data: RawConfig, baseDir: string, problem: Problem): void {
  const base = data.base_model ? parseModelReference(data.base_model, baseDir) : null;
  if (method.usesBase && !base)
    problem(`${method.name} needs 'base_model' (task vectors are taken relative to it)`, ['base_model']);
  const refs = data.models.map((m) => parseModelReference(m.model, baseDir));
  const seen = new Set<string>();
  refs.forEach((ref, i) => {
    if (seen.has(ref.key) && ref.key !== base?.key)
      problem(`models[${i}]: '${ref.text}' is listed twice`, ['models', i, 'model']);
    seen.add(ref.key);
  });
  if (data.eval && !method.usesEval) {
    const users = mergeMethods
      .list()
      .filter((m) => m.usesEval)
      .map((m) => m.name);
    problem(`'eval' is only used by ${users.join(', ') || 'no method'}, not ${method.name}`, ['eval']);
  }
  const others = base ? refs.filter((r) => r.key !== base.key).length : refs.length;
  const view: MergeConfigView = {
    parameters: data.parameters ?? {},
    models: data.models.map((m) => ({ parameters: (m.parameters ?? {}) as Record<string, unknown> })),
    others,
    hasEval: data.eval !== undefined,
  };
  let reported = 0;
  method.check?.(view, (message, path) => {
    reported++;
    problem(message, path);
  });
  if (method.usesBase && base && others === 0 && reported === 0)
    problem(`${method.name}: every model is the base; list at least one other model`, ['models']);
}

/** The schema of a merge config for `method` (null: the method is not registered; only its name is reported). */
function configSchema(method: MergeMethod | null, baseDir: string) {
  const shape = {
    merge_method: methodNameSchema().describe('the merge method (docs/merge.md lists them)'),
    base_model: z
      .string()
      .min(1)
      .nullable()
      .optional()
      .describe('the base model (task vectors are relative to it)'),
    parameters: parametersSchema(method, false)
      .nullish()
      .transform((block) => block ?? (method ? parametersSchema(method, false).parse({}) : {}))
      .describe('global parameters (defaults for every model)'),
    models: z
      .array(
        z
          .object({
            model: z.string().min(1).describe('a model dir, or base_dir+adapter_dir'),
            parameters: parametersSchema(method, true).nullable().optional(),
          })
          .strict(),
      )
      .min(1)
      .describe('the models to merge'),
    dtype: dtypeSchema
      .nullable()
      .optional()
      .describe("output dtype (default: each tensor keeps the base model's)"),
    out_dtype: dtypeSchema
      .nullable()
      .optional()
      .describe('output dtype; overrides dtype (computation is always f32)'),
    seed: z.number().int().optional().describe("seed of DARE's random drops (default 0)"),
    tokenizer_source: z
      .literal('base')
      .nullable()
      .optional()
      .describe("only 'base': tokenizer files are copied from the base"),
    eval: evalSchema.optional().describe('the held-out data of methods that evaluate (greedy_soup)'),
  };
  return z
    .object(shape)
    .loose()
    .superRefine((value, ctx) => {
      for (const key of keysOf(value)) {
        if (key in shape) continue;
        const refused = REFUSED_KEYS[key];
        if (refused)
          ctx.addIssue({ code: 'custom', path: [key], params: { bare: 'message' }, message: refused });
        else
          ctx.addIssue({
            code: 'unrecognized_keys',
            keys: [key],
            input: value,
            message: `unknown key '${key}'`,
          });
      }
    }, always)
    .superRefine((data, ctx) => {
      if (!method) return;
      checkConfig(method, data as RawConfig, baseDir, (message, path = []) =>
        ctx.addIssue({ code: 'custom', path: [...path], params: { bare: 'message' }, message }),
      );
    });
}

interface RawConfig {
  merge_method: string;
  base_model?: string | null;
  parameters?: ParameterSettings | null;
  models: { model: string; parameters?: ParameterSettings | null }[];
  dtype?: 'float32' | 'bfloat16' | 'float16' | null;
  out_dtype?: 'float32' | 'bfloat16' | 'float16' | null;
  seed?: number;
  eval?: { data: string; max_length: number; batch_size: number };
}

/**
 * Validate a parsed config object. `where` names it in errors (with `source`, each problem gets its
 * line); model references and `eval.data` are resolved relative to `baseDir`. Every problem found
 * is reported in one ConfigError.
 */
export function validateMergeConfig(
  raw: unknown,
  where: string,
  baseDir: string,
  source?: Pick<YamlSource, 'lineOf'>,
): MergeConfig {
  const name = (raw as { merge_method?: unknown } | null)?.merge_method;
  const method = typeof name === 'string' && mergeMethods.has(name) ? mergeMethods.get(name) : null;
  const data = validateWith(configSchema(method, baseDir), raw, where, source) as RawConfig;
  // the schema reported an unknown method, so here it is registered
  const mergeMethod = method!;
  return {
    method: mergeMethod.name,
    mergeMethod,
    base: data.base_model ? parseModelReference(data.base_model, baseDir) : null,
    models: data.models.map((entry) => ({
      ref: parseModelReference(entry.model, baseDir),
      parameters: { ...(entry.parameters ?? {}) },
    })),
    parameters: { ...(data.parameters ?? {}) },
    outDtype: data.out_dtype ?? data.dtype ?? null,
    seed: data.seed ?? 0,
    eval: data.eval
      ? {
          data: resolve(baseDir, data.eval.data),
          maxLength: data.eval.max_length,
          batchSize: data.eval.batch_size,
        }
      : null,
    source: where,
  };
}

/**
 * Read, override (`--set key=value`, e.g. `parameters.lambda=0.8` or `models.1.parameters.weight=0.3`)
 * and validate a YAML merge config; paths in it are relative to its folder.
 */
export function loadMergeConfig(path: string, overrides: readonly string[] = []): MergeConfig {
  const source = readYamlMapping(path, 'the merge config');
  applyOverrides(source.raw, overrides);
  return validateMergeConfig(source.raw, path, dirname(resolve(path)), source);
}
