/**
 * `attune merge` configs: mergekit's YAML shape, validated by a zod schema (strict: an unknown key
 * names the closest valid one) and then per method (which parameters it reads, their ranges), so
 * every mistake is reported before any file is read or written.
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
import { readFileSync } from 'node:fs';
import { dirname, resolve } from 'node:path';
import { parseDocument } from 'yaml';
import { z } from 'zod';
import { ConfigError } from '../errors.ts';
import { closestKey } from '../train/config.ts';
import {
  isMergeMethod,
  MERGE_METHODS,
  METHOD_SPECS,
  type MergeMethodName,
  type MethodSpec,
  PARAMETER_NAMES,
  UNSUPPORTED_MERGEKIT_METHODS,
} from './methods.ts';
import { type ModelRef, parseModelReference } from './reference.ts';
import { isScalarSetting, type Setting, settingNumbers } from './settings.ts';

const gradient = z.array(z.number()).min(1);
const condition = z
  .object({ filter: z.string().nullable().optional(), value: z.union([z.number(), gradient]) })
  .strict();
const numericSetting = z
  .union([z.number(), gradient, condition, z.array(condition).min(1)])
  .describe('a number, a gradient [a, b, ...] over the layers, or [{filter, value}, ...] by tensor name');

const parametersSchema = z
  .object({
    weight: numericSetting.optional().describe('weight of a model (default 1)'),
    density: numericSetting.optional().describe('fraction of each task vector kept, in (0, 1] (default 1)'),
    gamma: numericSetting
      .optional()
      .describe('breadcrumbs: fraction of the largest entries removed (default 0.01)'),
    normalize: z.boolean().optional().describe('divide by the sum of the weights (default per method)'),
    lambda: numericSetting.optional().describe('scale of the merged task vector (default 1)'),
    rescale: z
      .union([z.enum(['l1', 'inverse_density', 'none']), z.boolean()])
      .optional()
      .describe('rescale kept entries: l1 (mergekit), inverse_density (paper/PEFT) or none; true = l1'),
    scope: z
      .enum(['tensor', 'global', 'row'])
      .optional()
      .describe('magnitude ranking over a tensor, the whole model or each row'),
    divisor: z
      .enum(['weights', 'count'])
      .optional()
      .describe('TIES: divide by the agreeing weights (mergekit) or their count (paper/PEFT)'),
    int8_mask: z.boolean().optional().describe('accepted for mergekit configs; no effect on the result'),
    t: numericSetting.optional().describe('slerp: interpolation factor from base (0) to the other model (1)'),
    filter_wise: z.boolean().optional().describe('model_stock: one ratio per row instead of per tensor'),
  })
  .strict();

const modelEntrySchema = z
  .object({
    model: z.string().min(1).describe('a model dir, or base_dir+adapter_dir'),
    parameters: parametersSchema.nullable().optional(),
  })
  .strict();

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

/** The schema of `attune merge` configs (before per-method checks). */
export const mergeConfigSchema = z
  .object({
    merge_method: z.string().describe(`one of ${MERGE_METHODS.join(', ')}`),
    base_model: z
      .string()
      .min(1)
      .nullable()
      .optional()
      .describe('the base model (task vectors are relative to it)'),
    models: z.array(modelEntrySchema).min(1).describe('the models to merge'),
    parameters: parametersSchema
      .nullable()
      .optional()
      .describe('global parameters (defaults for every model)'),
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
    eval: evalSchema.optional().describe('greedy_soup: the held-out data'),
  })
  .strict();

type RawConfig = z.infer<typeof mergeConfigSchema>;

/** Parameters as written in a config: setting per name. */
export type ParameterSettings = Partial<Record<string, Setting>>;

/** A model entry of a validated config. */
export interface MergeModelEntry {
  ref: ModelRef;
  parameters: ParameterSettings;
}

/** A validated merge config with resolved model references. */
export interface MergeConfig {
  method: MergeMethodName;
  spec: MethodSpec;
  base: ModelRef | null;
  models: MergeModelEntry[];
  parameters: ParameterSettings;
  /** Output dtype (out_dtype, else dtype), null = keep each tensor's stored dtype. */
  outDtype: 'float32' | 'bfloat16' | 'float16' | null;
  seed: number;
  eval: { data: string; maxLength: number; batchSize: number } | null;
  /** Where the config came from (errors name it). */
  source: string;
}

const KEYS_AT: Record<string, readonly string[]> = {
  '': Object.keys(mergeConfigSchema.shape),
  parameters: PARAMETER_NAMES,
  models: Object.keys(modelEntrySchema.shape),
  'models.parameters': PARAMETER_NAMES,
  eval: Object.keys(evalSchema.shape),
};

function formatPath(path: readonly PropertyKey[]): string {
  let out = '';
  for (const p of path) out += typeof p === 'number' ? `[${p}]` : out === '' ? String(p) : `.${String(p)}`;
  return out;
}

function unknownKeyMessage(path: readonly PropertyKey[], key: string): string {
  const schemaPath = path.filter((p) => typeof p === 'string').join('.');
  const known = KEYS_AT[schemaPath] ?? [];
  const full = formatPath([...path, key]);
  if (schemaPath === '' && (key === 'slices' || key === 'modules')) {
    return `'${key}' is not supported: list whole models under 'models' (layer slicing is not implemented)`;
  }
  const guess = closestKey(key, known);
  return `unknown key '${full}'${guess ? ` (did you mean '${formatPath([...path, guess])}'?)` : ` (valid: ${known.join(', ')})`}`;
}

function zodMessages(error: z.ZodError): string[] {
  return error.issues.map((issue) => {
    if (issue.code === 'unrecognized_keys')
      return issue.keys.map((k) => unknownKeyMessage(issue.path, k)).join('; ');
    const at = formatPath(issue.path) || '(top level)';
    if (issue.code === 'invalid_type' && issue.message.includes('received undefined'))
      return `missing required field '${at}'`;
    return `field '${at}': ${issue.message}`;
  });
}

const RANGES: Record<string, { test: (v: number) => boolean; text: string }> = {
  density: { test: (v) => v > 0 && v <= 1, text: 'outside (0, 1]' },
  gamma: { test: (v) => v >= 0 && v <= 1, text: 'outside [0, 1]' },
  weight: { test: Number.isFinite, text: 'not finite' },
  lambda: { test: Number.isFinite, text: 'not finite' },
  t: { test: Number.isFinite, text: 'not finite' },
};

/** Per-method checks of one parameters block (`where` is its path); messages appended to `problems`. */
function checkParameters(
  spec: MethodSpec,
  block: ParameterSettings,
  where: string,
  perModel: boolean,
  problems: string[],
): void {
  for (const [name, setting] of Object.entries(block)) {
    if (setting === undefined) continue;
    const isModelParam = (spec.modelParameters as readonly string[]).includes(name);
    const isGlobalParam = (spec.globalParameters as readonly string[]).includes(name);
    if (perModel && !isModelParam) {
      problems.push(
        isGlobalParam
          ? `${where}.${name}: '${name}' is a global parameter of ${spec.name}; set it in the top-level 'parameters'`
          : `${where}.${name}: ${spec.name} has no parameter '${name}' (per-model parameters: ${spec.modelParameters.join(', ') || 'none'})`,
      );
      continue;
    }
    if (!perModel && !isModelParam && !isGlobalParam) {
      const all = [...spec.modelParameters, ...spec.globalParameters];
      problems.push(
        `${where}.${name}: ${spec.name} has no parameter '${name}' (its parameters: ${all.join(', ') || 'none'})`,
      );
      continue;
    }
    const range = RANGES[name];
    if (range) {
      for (const v of settingNumbers(setting)) {
        if (!range.test(v)) problems.push(`${where}.${name}: ${v} is ${range.text}`);
      }
    }
    if (name === 'scope' && !spec.scopes.includes(setting as never)) {
      problems.push(
        `${where}.scope: ${spec.name} supports scope ${spec.scopes.join(' | ')}, found '${String(setting)}'`,
      );
    }
  }
}

function methodOf(raw: RawConfig, problems: string[]): MergeMethodName | null {
  const name = raw.merge_method;
  if (isMergeMethod(name)) return name;
  if (UNSUPPORTED_MERGEKIT_METHODS.includes(name)) {
    problems.push(
      `merge_method '${name}' (mergekit) is not supported by Attune (supported: ${MERGE_METHODS.join(', ')})`,
    );
  } else {
    const guess = closestKey(name, MERGE_METHODS);
    problems.push(
      `unknown merge_method '${name}'${guess ? ` (did you mean '${guess}'?)` : ''} (supported: ${MERGE_METHODS.join(', ')})`,
    );
  }
  return null;
}

/** Method-level checks: base model, number of models, required and scalar-only parameters. */
function checkMethod(config: Omit<MergeConfig, 'spec'> & { spec: MethodSpec }, problems: string[]): void {
  const { spec, base, models } = config;
  if (spec.needsBase && !base)
    problems.push(`${spec.name} needs 'base_model' (task vectors are taken relative to it)`);
  const keys = models.map((m) => m.ref.key);
  const seen = new Set<string>();
  keys.forEach((key, i) => {
    if (seen.has(key) && key !== base?.key)
      problems.push(`models[${i}]: '${models[i]!.ref.text}' is listed twice`);
    seen.add(key);
  });
  const others = base ? models.filter((m) => m.ref.key !== base.key) : models;
  if (spec.needsBase && base) {
    if (spec.kind === 'slerp' && others.length !== 1) {
      problems.push(
        `slerp merges the base with exactly one other model; found ${others.length} other model(s)`,
      );
    } else if (spec.kind === 'model_stock' && others.length < 2) {
      problems.push(`model_stock needs at least two models besides the base; found ${others.length}`);
    } else if (others.length === 0) {
      problems.push(`${spec.name}: every model is the base; list at least one other model`);
    }
  }
  if (spec.kind === 'slerp' && config.parameters.t === undefined)
    problems.push("slerp needs the global parameter 't'");
  if (spec.name === 'greedy_soup' && !config.eval)
    problems.push(
      "greedy_soup needs 'eval: {data: FILE.jsonl}' (the held-out data that orders and accepts ingredients)",
    );
  if (spec.name !== 'greedy_soup' && config.eval)
    problems.push(`'eval' is only used by greedy_soup, not ${spec.name}`);
  const scope = config.parameters.scope;
  if (scope === 'global') {
    for (const name of ['density', 'gamma'] as const) {
      if (!(spec.modelParameters as readonly string[]).includes(name)) continue;
      const global = config.parameters[name];
      if (global !== undefined && !isScalarSetting(global))
        problems.push(`parameters.${name}: scope: global needs a single number, not a per-tensor setting`);
      models.forEach((m, i) => {
        const own = m.parameters[name];
        if (own !== undefined && !isScalarSetting(own))
          problems.push(
            `models[${i}].parameters.${name}: scope: global needs a single number, not a per-tensor setting`,
          );
      });
    }
  }
}

/**
 * Validate a parsed config object. `where` names it in errors; model references and `eval.data` are
 * resolved relative to `baseDir`. Every problem found is reported in one ConfigError.
 */
export function validateMergeConfig(raw: unknown, where: string, baseDir: string): MergeConfig {
  const parsed = mergeConfigSchema.safeParse(raw);
  if (!parsed.success) throw new ConfigError(`${where}: ${zodMessages(parsed.error).join('; ')}`);
  const data = parsed.data;
  const problems: string[] = [];
  const method = methodOf(data, problems);
  if (method === null) throw new ConfigError(`${where}: ${problems.join('; ')}`);
  const spec = METHOD_SPECS[method];
  const parameters = (data.parameters ?? {}) as ParameterSettings;
  checkParameters(spec, parameters, 'parameters', false, problems);
  const models: MergeModelEntry[] = data.models.map((entry, i) => {
    const own = (entry.parameters ?? {}) as ParameterSettings;
    checkParameters(spec, own, `models[${i}].parameters`, true, problems);
    return { ref: parseModelReference(entry.model, baseDir), parameters: own };
  });
  const base = data.base_model ? parseModelReference(data.base_model, baseDir) : null;
  const config: MergeConfig = {
    method,
    spec,
    base,
    models,
    parameters,
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
  checkMethod(config, problems);
  if (problems.length > 0) throw new ConfigError(`${where}: ${problems.join('; ')}`);
  return config;
}

/** Read and validate a YAML merge config; paths in it are relative to its folder. */
export function loadMergeConfig(path: string): MergeConfig {
  let text: string;
  try {
    text = readFileSync(path, 'utf8');
  } catch (err) {
    throw new ConfigError(
      `${path}: cannot read the merge config (${(err as NodeJS.ErrnoException).code ?? (err as Error).message})`,
    );
  }
  const doc = parseDocument(text);
  if (doc.errors.length > 0) {
    const e = doc.errors[0]!;
    const line = e.linePos?.[0]?.line;
    throw new ConfigError(`${path}${line ? `:${line}` : ''}: invalid YAML: ${e.message.split('\n')[0]}`);
  }
  let raw: unknown;
  try {
    // Unresolved aliases and alias bombs surface here (the yaml library throws a ReferenceError).
    raw = doc.toJS() ?? {};
  } catch (err) {
    throw new ConfigError(`${path}: invalid YAML: ${(err as Error).message.split('\n')[0]}`);
  }
  if (typeof raw !== 'object' || Array.isArray(raw))
    throw new ConfigError(`${path}: the merge config must be a YAML mapping`);
  try {
    return validateMergeConfig(raw, path, dirname(resolve(path)));
  } catch (err) {
    // A complex YAML key (`? {...}`) is named as its multi-line rendering: keep the error one line.
    if (err instanceof ConfigError) throw new ConfigError(err.message.replace(/\s*\n\s*/g, ' '));
    throw err;
  }
}
