/**
 * Training configuration: YAML validated by a zod schema into a typed object. Every field has a
 * default and a one-line description (docs/config.md is generated from this schema); `--set k=v`
 * overrides; paths are relative to the config file; an unknown key is an error that suggests the
 * closest valid key.
 */
import { readFileSync } from 'node:fs';
import { dirname, isAbsolute, resolve } from 'node:path';
import { parseDocument, parse as parseYaml } from 'yaml';
import { z } from 'zod';
import { ConfigError } from '../errors.ts';

const lossSpec = z
  .union([z.string(), z.object({ name: z.string() }).catchall(z.unknown())])
  .default('ce')
  .describe("token loss: a name ('ce', 'ua-clm') or {name, ...options}");

const modelSpec = z
  .union([
    z.string(),
    z
      .object({
        config: z.string().describe('config.json of the architecture (random initialisation)'),
        tokenizer: z.string().describe('directory holding tokenizer.json (and tokenizer_config.json)'),
        init_seed: z.number().int().default(0).describe('seed of the random initialisation'),
      })
      .strict(),
  ])
  .describe('a Hub-format model directory, or {config, tokenizer, init_seed} to train from random init');

/** The schema of `attune train` configs. */
export const trainConfigSchema = z
  .object({
    model: modelSpec,
    model_dtype: z
      .enum(['f32', 'bf16'])
      .default('f32')
      .describe(
        'storage of the frozen base weights (bf16 halves their memory; LoRA and other adapters only)',
      ),
    data: z
      .object({
        train: z.string().describe('training JSONL file ({text}, {prompt, completion}, {messages}, alpaca)'),
        eval: z
          .string()
          .nullable()
          .default(null)
          .describe('evaluation JSONL file (eval loss every train.eval_every steps)'),
        train_on: z
          .enum(['auto', 'completion', 'assistant', 'all'])
          .default('auto')
          .describe('which tokens are trained: auto = completion / assistant turns / all text'),
        max_length: z.number().int().positive().default(512).describe('maximum tokens per example'),
        truncation: z
          .enum(['right', 'left', 'error'])
          .default('right')
          .describe('what to do with longer examples'),
        packing: z
          .boolean()
          .default(false)
          .describe('concatenate examples up to max_length (attention crosses examples)'),
        on_bad_record: z
          .enum(['error', 'skip'])
          .default('error')
          .describe('a malformed record stops the run or is skipped (and counted)'),
        append_eos: z.boolean().default(true).describe('append the EOS token to trained text'),
      })
      .strict()
      .describe('training data'),
    method: z.string().default('lora').describe("tuning method: 'lora' or 'full' (see docs/methods.md)"),
    lora: z
      .object({
        r: z.number().int().positive().default(8).describe('LoRA rank'),
        lora_alpha: z.number().positive().default(8).describe('LoRA alpha (scaling alpha / r)'),
        lora_dropout: z.number().min(0).lt(1).default(0).describe('dropout on the LoRA input'),
        target_modules: z
          .union([z.array(z.string()).min(1), z.string()])
          .default(['q_proj', 'v_proj'])
          .describe("PEFT target_modules: names (suffix match), a full-match regex string, or 'all-linear'"),
        use_rslora: z.boolean().default(false).describe('rank-stabilised scaling alpha / sqrt(r)'),
        init: z.enum(['kaiming', 'gaussian']).default('kaiming').describe('A initialisation (B starts at 0)'),
      })
      .strict()
      .default({
        r: 8,
        lora_alpha: 8,
        lora_dropout: 0,
        target_modules: ['q_proj', 'v_proj'],
        use_rslora: false,
        init: 'kaiming',
      })
      .describe('LoRA options (method: lora)'),
    loss: lossSpec,
    train: z
      .object({
        steps: z.number().int().positive().describe('optimizer steps'),
        batch_size: z.number().int().positive().default(4).describe('examples per micro-batch'),
        grad_accum: z.number().int().positive().default(1).describe('micro-batches per optimizer step'),
        lr: z.number().positive().default(1e-4).describe('peak learning rate'),
        optimizer: z.enum(['adamw', 'sgd']).default('adamw').describe('optimizer'),
        weight_decay: z.number().min(0).default(0).describe('decoupled weight decay (AdamW) / L2 (SGD)'),
        betas: z.tuple([z.number(), z.number()]).default([0.9, 0.999]).describe('AdamW betas'),
        adam_eps: z.number().positive().default(1e-8).describe('AdamW epsilon'),
        momentum: z.number().min(0).default(0).describe('SGD momentum'),
        schedule: z
          .enum(['constant', 'linear', 'cosine'])
          .default('constant')
          .describe('learning-rate schedule after warmup'),
        warmup_steps: z.number().int().min(0).default(0).describe('linear warmup steps'),
        min_lr_ratio: z.number().min(0).max(1).default(0).describe('cosine floor as a fraction of lr'),
        max_grad_norm: z.number().min(0).default(1).describe('global gradient-norm clip (0 = off)'),
        seed: z.number().int().default(0).describe('seed of shuffling, dropout and adapter init'),
        log_every: z.number().int().positive().default(1).describe('write metrics.jsonl every N steps'),
        eval_every: z
          .number()
          .int()
          .min(0)
          .default(0)
          .describe('evaluate on data.eval every N steps (0 = at the end only)'),
        eval_batches: z
          .number()
          .int()
          .min(0)
          .default(0)
          .describe('eval batches per evaluation (0 = the whole file)'),
        save_every: z.number().int().min(0).default(0).describe('checkpoint every N steps (0 = final only)'),
        keep_last: z.number().int().positive().default(2).describe('checkpoints kept'),
        residual_dropout: z
          .number()
          .min(0)
          .lt(1)
          .default(0)
          .describe('residual-stream dropout rate during training'),
      })
      .strict()
      .describe('optimisation'),
    output_dir: z.string().describe('run directory (an existing one needs --resume or --overwrite)'),
  })
  .strict();

export type TrainConfig = z.infer<typeof trainConfigSchema>;

/** Levenshtein distance (for "did you mean"). */
function distance(a: string, b: string): number {
  const row = Array.from({ length: b.length + 1 }, (_, j) => j);
  for (let i = 1; i <= a.length; i++) {
    let prev = row[0]!;
    row[0] = i;
    for (let j = 1; j <= b.length; j++) {
      const cur = row[j]!;
      row[j] = Math.min(row[j]! + 1, row[j - 1]! + 1, prev + (a[i - 1] === b[j - 1] ? 0 : 1));
      prev = cur;
    }
  }
  return row[b.length]!;
}

/** The known key closest to `key`, when reasonably close. */
export function closestKey(key: string, known: readonly string[]): string | null {
  let best: string | null = null;
  let bestD = Infinity;
  for (const k of known) {
    const d = distance(key, k);
    if (d < bestD) {
      bestD = d;
      best = k;
    }
  }
  return best !== null && bestD <= Math.max(2, Math.floor(key.length / 2)) ? best : null;
}

type AnySchema = z.ZodType & { def: Record<string, unknown> };

/** Strip default/optional/nullable wrappers. */
function unwrap(schema: AnySchema): AnySchema {
  let s = schema;
  for (;;) {
    const type = s.def.type;
    if (
      (type === 'default' || type === 'optional' || type === 'nullable' || type === 'prefault') &&
      s.def.innerType
    ) {
      s = s.def.innerType as AnySchema;
    } else return s;
  }
}

/** The object keys the schema allows at `path` (objects inside unions included). */
function keysAt(path: readonly PropertyKey[]): string[] {
  let cur: AnySchema[] = [trainConfigSchema as unknown as AnySchema];
  for (const p of path) {
    const next: AnySchema[] = [];
    for (const s of cur.map(unwrap)) {
      const options = s.def.type === 'union' ? (s.def.options as AnySchema[]).map(unwrap) : [s];
      for (const o of options) {
        const shape = (o as unknown as { shape?: Record<string, AnySchema> }).shape;
        if (o.def.type === 'object' && shape && typeof p === 'string' && shape[p]) next.push(shape[p]!);
      }
    }
    cur = next;
  }
  const keys: string[] = [];
  for (const s of cur.map(unwrap)) {
    const options = s.def.type === 'union' ? (s.def.options as AnySchema[]).map(unwrap) : [s];
    for (const o of options) {
      const shape = (o as unknown as { shape?: Record<string, AnySchema> }).shape;
      if (o.def.type === 'object' && shape) keys.push(...Object.keys(shape));
    }
  }
  return keys;
}

function formatPath(path: readonly PropertyKey[]): string {
  return path.map(String).join('.');
}

/** Validate a parsed config object; `where` names the source in errors. */
export function validateTrainConfig(raw: unknown, where: string): TrainConfig {
  const result = trainConfigSchema.safeParse(raw);
  if (result.success) return result.data;
  const messages = result.error.issues.map((issue) => {
    if (issue.code === 'unrecognized_keys') {
      const known = keysAt(issue.path);
      return issue.keys
        .map((k) => {
          const full = formatPath([...issue.path, k]);
          const guess = closestKey(k, known);
          return `unknown key '${full}'${guess ? ` (did you mean '${formatPath([...issue.path, guess])}'?)` : ` (valid: ${known.join(', ')})`}`;
        })
        .join('; ');
    }
    const at = formatPath(issue.path) || '(top level)';
    if (issue.code === 'invalid_type' && issue.message.includes('received undefined'))
      return `missing required field '${at}'`;
    return `field '${at}': ${issue.message}`;
  });
  throw new ConfigError(`${where}: ${messages.join('; ')}`);
}

/** Set `value` at a dotted path in a plain object tree (creating objects on the way). */
function setPath(obj: Record<string, unknown>, path: string, value: unknown): void {
  const parts = path.split('.');
  let cur = obj;
  for (const part of parts.slice(0, -1)) {
    const next = cur[part];
    if (next === undefined || next === null || typeof next !== 'object' || Array.isArray(next))
      cur[part] = {};
    cur = cur[part] as Record<string, unknown>;
  }
  cur[parts.at(-1)!] = value;
}

/** Apply `key=value` overrides (values parsed as YAML scalars / flow collections). */
export function applyOverrides(raw: Record<string, unknown>, overrides: readonly string[]): void {
  for (const o of overrides) {
    const eq = o.indexOf('=');
    if (eq <= 0) throw new ConfigError(`--set '${o}': expected key=value (e.g. train.lr=2e-4)`);
    const key = o.slice(0, eq).trim();
    const text = o.slice(eq + 1);
    let value: unknown;
    try {
      value = parseYaml(text);
    } catch {
      value = text;
    }
    setPath(raw, key, value ?? null);
  }
}

function resolvePath(base: string, p: string): string {
  return isAbsolute(p) ? p : resolve(base, p);
}

/** Make every path of the config absolute, relative to `baseDir`. */
export function resolveConfigPaths(config: TrainConfig, baseDir: string): TrainConfig {
  const model =
    typeof config.model === 'string'
      ? resolvePath(baseDir, config.model)
      : {
          ...config.model,
          config: resolvePath(baseDir, config.model.config),
          tokenizer: resolvePath(baseDir, config.model.tokenizer),
        };
  return {
    ...config,
    model,
    data: {
      ...config.data,
      train: resolvePath(baseDir, config.data.train),
      eval: config.data.eval === null ? null : resolvePath(baseDir, config.data.eval),
    },
    output_dir: resolvePath(baseDir, config.output_dir),
  };
}

/** Read, override, validate and resolve a YAML training config file. */
export function loadTrainConfig(path: string, overrides: readonly string[] = []): TrainConfig {
  let text: string;
  try {
    text = readFileSync(path, 'utf8');
  } catch (err) {
    throw new ConfigError(
      `${path}: cannot read the config (${(err as NodeJS.ErrnoException).code ?? (err as Error).message})`,
    );
  }
  const doc = parseDocument(text);
  if (doc.errors.length > 0) {
    const e = doc.errors[0]!;
    const line = e.linePos?.[0]?.line;
    throw new ConfigError(`${path}${line ? `:${line}` : ''}: invalid YAML: ${e.message.split('\n')[0]}`);
  }
  let raw: Record<string, unknown>;
  try {
    // Unresolved aliases and alias bombs surface here (the yaml library throws a ReferenceError).
    raw = (doc.toJS() ?? {}) as Record<string, unknown>;
  } catch (err) {
    throw new ConfigError(`${path}: invalid YAML: ${(err as Error).message.split('\n')[0]}`);
  }
  if (typeof raw !== 'object' || Array.isArray(raw))
    throw new ConfigError(`${path}: the config must be a YAML mapping`);
  applyOverrides(raw, overrides);
  let config: TrainConfig;
  try {
    config = validateTrainConfig(raw, path);
  } catch (err) {
    // A complex YAML key (`? {...}`) is named as its multi-line rendering: keep the error one line.
    if (err instanceof ConfigError) throw new ConfigError(err.message.replace(/\s*\n\s*/g, ' '));
    throw err;
  }
  return resolveConfigPaths(config, dirname(resolve(path)));
}

/** The loss name and options of a config's `loss` field. */
export function lossOf(config: TrainConfig): { name: string; options: Record<string, unknown> } {
  if (typeof config.loss === 'string') return { name: config.loss, options: {} };
  const { name, ...options } = config.loss;
  return { name, options };
}

export interface SchemaRow {
  key: string;
  type: string;
  default: string;
  description: string;
}

function typeName(s: AnySchema): string {
  const u = unwrap(s);
  switch (u.def.type) {
    case 'enum':
      return Object.values(u.def.entries as Record<string, string>).join(' \\| ');
    case 'union':
      return (u.def.options as AnySchema[]).map(typeName).join(' \\| ');
    case 'array':
      return `${typeName(u.def.element as AnySchema)}[]`;
    case 'tuple':
      return `[${(u.def.items as AnySchema[]).map(typeName).join(', ')}]`;
    default:
      return String(u.def.type);
  }
}

function defaultOf(s: AnySchema): string {
  let cur = s;
  for (;;) {
    if (cur.def.type === 'default') {
      const v = cur.def.defaultValue;
      return JSON.stringify(typeof v === 'function' ? (v as () => unknown)() : v);
    }
    if ((cur.def.type === 'optional' || cur.def.type === 'nullable') && cur.def.innerType)
      cur = cur.def.innerType as AnySchema;
    else return 'required';
  }
}

/** Every documented field of the schema (for docs/config.md and `attune train --help`). */
export function describeTrainConfig(): SchemaRow[] {
  const rows: SchemaRow[] = [];
  const visit = (schema: AnySchema, prefix: string) => {
    const shape = (unwrap(schema) as unknown as { shape?: Record<string, AnySchema> }).shape;
    if (!shape) return;
    for (const [key, field] of Object.entries(shape)) {
      const full = prefix ? `${prefix}.${key}` : key;
      const inner = unwrap(field);
      const isObject = inner.def.type === 'object';
      rows.push({
        key: full,
        type: isObject ? 'object' : typeName(field),
        default: isObject ? '' : defaultOf(field),
        description: field.description ?? '',
      });
      if (isObject) visit(inner, full);
    }
  };
  visit(trainConfigSchema as unknown as AnySchema, '');
  return rows;
}
