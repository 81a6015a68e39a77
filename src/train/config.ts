/**
 * Training configuration: YAML validated by a zod schema into a typed object. Every field has a
 * default and a one-line description (docs/config.md is generated from this schema and from the
 * registries); `--set k=v` overrides; paths are relative to the config file; every problem of a
 * file is reported in one error with its line, and an unknown key suggests the closest valid one.
 *
 * The method, loss, optimizer and schedule are each `{name, ...options}` (or just the name), their
 * options declared by the registered entry (src/peft, src/train/losses, optim, schedules). The 0.1
 * form (`method: lora` + a `lora:` block, `train.optimizer` / `betas` / `adam_eps` / `momentum` /
 * `weight_decay`, `train.schedule` / `warmup_steps` / `min_lr_ratio`) is still read, with a
 * one-line deprecation note.
 */
import { dirname, isAbsolute, resolve } from 'node:path';
import { z } from 'zod';
import { resolveOptionPaths } from '../config/option-paths.ts';
import type { MethodChoice } from '../config/registry.ts';
import { describeSchema, type SchemaRow } from '../config/schema-info.ts';
import { applyOverrides, readYamlMapping, validateWith, type YamlSource } from '../config/yaml.ts';
import { batchTransforms } from '../data/transforms/index.ts';
import { tuners } from '../peft/index.ts';
import { losses } from './losses/index.ts';
import { optimizers } from './optim/index.ts';
import { schedules } from './schedules/index.ts';

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
      .enum(['f32', 'bf16', 'int8', 'nf4'])
      .default('f32')
      .describe(
        "storage of the frozen base weights (bf16 halves their memory; LoRA and other adapters only); precision bf16-mixed stores them in bf16 unless int8 / nf4. int8 / nf4: the attention and MLP matrices block-quantised (64 values per f32 absmax; NF4 is QLoRA's 4-bit NormalFloat), dequantised inside the GEMM; embeddings, norms and the LM head stay bf16 / f32; only for methods that train no base matrix (LoRA)",
      ),
    precision: z
      .enum(['f32', 'bf16-mixed'])
      .default('f32')
      .describe(
        'compute precision: bf16-mixed runs the Linear GEMMs on bf16 inputs with f32 accumulation (AMX / AVX512-BF16 where the CPU has them) and stores frozen base matrices in bf16; trainable weights, optimizer state, norms, softmax and losses stay f32',
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
        chat_template: z
          .string()
          .nullable()
          .default(null)
          .describe(
            "chat template for {messages} records: a .jinja file, or a named template of the tokenizer (default: the tokenizer's own)",
          ),
        transforms: z
          .array(batchTransforms.schema())
          .default([])
          .describe(
            "batch transforms applied in order before each training forward pass: [{name, ...options}]; see 'Data transforms' below",
          ),
      })
      .strict()
      .describe('training data'),
    method: tuners
      .schema('lora')
      .describe("fine-tuning method: {name, ...options} or a name; see 'Methods' below"),
    loss: losses.schema('ce').describe("token loss: {name, ...options} or a name; see 'Losses' below"),
    optimizer: optimizers
      .schema('adamw')
      .describe("optimizer: {name, ...options} or a name; see 'Optimizers' below"),
    schedule: schedules
      .schema('constant')
      .describe("learning-rate schedule: {name, ...options} or a name; see 'Schedules' below"),
    train: z
      .object({
        steps: z.number().int().positive().describe('optimizer steps'),
        batch_size: z.number().int().positive().default(4).describe('examples per micro-batch'),
        grad_accum: z.number().int().positive().default(1).describe('micro-batches per optimizer step'),
        lr: z.number().positive().default(1e-4).describe('peak learning rate'),
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
        activation_checkpointing: z
          .boolean()
          .default(false)
          .describe(
            'recompute each decoder layer in backward instead of keeping its activations (less memory, about one more forward of compute; gradients identical)',
          ),
      })
      .strict()
      .describe('optimisation'),
    output_dir: z.string().describe('run directory (an existing one needs --resume or --overwrite)'),
    init_adapter: z
      .string()
      .nullable()
      .default(null)
      .describe(
        "start from this saved adapter's weights (PEFT layout); its adapter_config.json must agree with the method options, field by field (a difference is refused, naming the field)",
      ),
  })
  .strict();

export type TrainConfig = z.infer<typeof trainConfigSchema>;

/** Where a 0.1 `train.` key moved: [old key, new block, new key]. */
const MOVED_TRAIN_KEYS: [string, 'optimizer' | 'schedule', string][] = [
  ['betas', 'optimizer', 'betas'],
  ['adam_eps', 'optimizer', 'eps'],
  ['momentum', 'optimizer', 'momentum'],
  ['weight_decay', 'optimizer', 'weight_decay'],
  ['warmup_steps', 'schedule', 'warmup_steps'],
  ['min_lr_ratio', 'schedule', 'min_lr_ratio'],
];

function isMapping(v: unknown): v is Record<string, unknown> {
  return typeof v === 'object' && v !== null && !Array.isArray(v);
}

/** Move `key` of `block` into `choice` when the chosen entry has that option (0.1 keys it lacks were ignored). */
function moveOption(
  block: Record<string, unknown>,
  key: string,
  choice: Record<string, unknown>,
  newKey: string,
  optionKeys: readonly string[] | null,
): void {
  if (!(key in block)) return;
  if (optionKeys === null || optionKeys.includes(newKey)) choice[newKey] ??= block[key];
  delete block[key];
}

function choiceOf(value: unknown, fallback: string): Record<string, unknown> {
  if (typeof value === 'string') return { name: value };
  if (isMapping(value)) return { ...value };
  return { name: fallback };
}

function optionKeysOf(
  registry: { has(n: string): boolean; get(n: string): { options: z.ZodObject } },
  name: unknown,
): string[] | null {
  return typeof name === 'string' && registry.has(name)
    ? Object.keys(registry.get(name).options.shape)
    : null;
}

/**
 * Rewrite a 0.1-form config (in place) into the current form and return what was rewritten, for a
 * one-line deprecation note: `method: lora` + `lora: {...}` becomes `method: {name: lora, ...}`
 * (`init: kaiming|gaussian` becomes PEFT's `init_lora_weights`), and the optimizer and schedule keys
 * of `train:` move into `optimizer:` and `schedule:`.
 */
export function upgradeLegacyConfig(raw: Record<string, unknown>): string[] {
  const moved: string[] = [];
  if (typeof raw.method === 'string' || raw.method === undefined) {
    const name = (raw.method as string | undefined) ?? 'lora';
    for (const key of tuners.names()) {
      const block = raw[key];
      if (!isMapping(block)) continue;
      if (key === name) {
        const options = { ...block };
        if ('init' in options) {
          const init = options.init;
          delete options.init;
          options.init_lora_weights = init === 'gaussian' ? 'gaussian' : init === 'kaiming' ? true : init;
        }
        raw.method = { name, ...options };
      }
      delete raw[key];
      moved.push(`${key}:`);
    }
  }
  const trainBlock = raw.train;
  if (isMapping(trainBlock)) {
    const optimizer = choiceOf(raw.optimizer, 'adamw');
    const schedule = choiceOf(raw.schedule, 'constant');
    if (typeof trainBlock.optimizer === 'string') {
      optimizer.name = trainBlock.optimizer;
      delete trainBlock.optimizer;
      moved.push('train.optimizer');
    }
    if (typeof trainBlock.schedule === 'string') {
      schedule.name = trainBlock.schedule;
      delete trainBlock.schedule;
      moved.push('train.schedule');
    }
    const keysOf = {
      optimizer: optionKeysOf(optimizers, optimizer.name),
      schedule: optionKeysOf(schedules, schedule.name),
    };
    for (const [key, to, newKey] of MOVED_TRAIN_KEYS) {
      if (!(key in trainBlock)) continue;
      moveOption(trainBlock, key, to === 'optimizer' ? optimizer : schedule, newKey, keysOf[to]);
      moved.push(`train.${key}`);
    }
    if (moved.some((m) => m.startsWith('train.'))) {
      raw.optimizer = optimizer;
      raw.schedule = schedule;
    }
  }
  return moved;
}

/** The one-line note for a config that used the 0.1 form. */
export function deprecationNote(where: string, moved: readonly string[]): string {
  return `${where}: deprecated 0.1 config form (${moved.join(', ')}); write method: {name, ...}, optimizer: {...} and schedule: {...} instead (docs/config.md)`;
}

/** Validate a parsed config object; `where` names the source in errors; 0.1 forms are upgraded. */
export function validateTrainConfig(
  raw: unknown,
  where: string,
  options: { source?: YamlSource; onNote?: (note: string) => void } = {},
): TrainConfig {
  if (isMapping(raw)) {
    const copy = structuredClone(raw);
    const moved = upgradeLegacyConfig(copy);
    if (moved.length > 0) options.onNote?.(deprecationNote(where, moved));
    raw = copy;
  }
  return validateWith(trainConfigSchema, raw, where, options.source);
}

export { applyOverrides } from '../config/yaml.ts';

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
      chat_template: config.data.chat_template?.endsWith('.jinja')
        ? resolvePath(baseDir, config.data.chat_template)
        : config.data.chat_template,
    },
    output_dir: resolvePath(baseDir, config.output_dir),
    init_adapter: config.init_adapter === null ? null : resolvePath(baseDir, config.init_adapter),
    // options the method's or loss's schema marks as paths (a teacher cache, an adapter, a data file)
    method: resolveOptionPaths(config.method, tuners.get(config.method.name).options, (p) =>
      resolvePath(baseDir, p),
    ),
    loss: resolveOptionPaths(config.loss, losses.get(config.loss.name).options, (p) =>
      resolvePath(baseDir, p),
    ),
  };
}

/** Default handler of config notes: one line on stderr. */
function printNote(note: string): void {
  process.stderr.write(`attune: note: ${note}\n`);
}

/**
 * Read, override, validate and resolve a YAML training config file. Every problem of the file is
 * reported in one ConfigError, each with its line. Deprecation notes go to `onNote` (default: stderr).
 */
export function loadTrainConfig(
  path: string,
  overrides: readonly string[] = [],
  options: { onNote?: (note: string) => void } = {},
): TrainConfig {
  const source = readYamlMapping(path);
  applyOverrides(source.raw, overrides);
  const config = validateTrainConfig(source.raw, path, { source, onNote: options.onNote ?? printNote });
  return resolveConfigPaths(config, dirname(resolve(path)));
}

/** The loss name and options of a config's `loss` field. */
export function lossOf(config: TrainConfig): { name: string; options: Record<string, unknown> } {
  const { name, ...options } = config.loss;
  return { name, options };
}

/** A chosen method's options without its name. */
export function optionsOf(choice: MethodChoice): Record<string, unknown> {
  const { name: _, ...options } = choice;
  return options;
}

export type { SchemaRow } from '../config/schema-info.ts';

/** Every documented field of the schema (for docs/config.md and `attune train --help`). */
export function describeTrainConfig(): SchemaRow[] {
  return describeSchema(trainConfigSchema);
}

/** One registry's entries with their option rows, for the docs. */
export interface RegistryDocs {
  field: string;
  entries: { name: string; description: string; options: SchemaRow[] }[];
}

/** The method, loss, optimizer and schedule registries as documented in docs/config.md. */
export function describeTrainRegistries(): RegistryDocs[] {
  return [tuners, losses, optimizers, schedules, batchTransforms].map((r) => ({
    field: r.configField,
    entries: r
      .list()
      .map((e) => ({ name: e.name, description: e.description, options: describeSchema(e.options) })),
  }));
}
