/**
 * LoRA and rsLoRA (METHODS.md section 2), registered as the tuner 'lora' (peft_type "LORA").
 *
 * Each target Linear becomes a `LoraLinear` (see lora-linear.ts) with scaling `lora_alpha / r`, or
 * `lora_alpha / sqrt(r)` with `use_rslora`; every other parameter is frozen. Defaults are PEFT's:
 * r 8, lora_alpha 8, dropout 0, init 'kaiming' (A Kaiming-uniform with a = sqrt 5, B = 0),
 * target_modules PEFT's default for the model type (['q_proj', 'v_proj'] for the llama family,
 * ['c_attn'] for gpt2). GPT-2's Conv1D layers are adapted as PEFT does (`fan_in_fan_out` set to
 * true, lora_A [r, in] and lora_B [out, r] as for a Linear; see lora-linear.ts).
 *
 * Files are exactly PEFT's: `adapter_config.json` (keys sorted, PEFT's defaults for the fields Attune
 * does not use, so `PeftModel.from_pretrained` loads it) and `adapter_model.safetensors` with keys
 * `base_model.model.<module path>.lora_A.weight` [r, in] and `.lora_B.weight` [out, r] — no
 * adapter name in the keys, as PEFT saves them. Reading accepts adapters PEFT wrote (F32, BF16, F16
 * or F64 tensors, converted to the adapter's dtype) and refuses, naming the field, the PEFT features
 * that would change the math here (bias training, base-altering inits other than PiSSA / OLoRA /
 * CorDA such as LoftQ or EVA).
 *
 * `modules_to_save` (modules-to-save.ts), LoRA on an Embedding (lora-embedding.ts: keys
 * `<path>.lora_embedding_A` [r, V] / `.lora_embedding_B` [d, r]) and on the LM head (lora-head.ts:
 * the fused loss path applies W + scaling B A through `CausalLM.lmHeadOverride`) follow PEFT; on a
 * model whose head is tied to the embedding, `ensure_weight_tying` says whether an adapter of the
 * table applies to the head too (without it the input side only, and merging is refused), and
 * 'lm_head' there is read as PEFT reads it (lora-tied.ts).
 *
 * Per-module settings as in PEFT: `rank_pattern` / `alpha_pattern` (lora-patterns.ts: a key picks
 * the modules whose name it matches whole or as a `.`-suffix; each layer gets its own r and
 * scaling alpha_m / r_m) and `layers_to_transform` / `layers_pattern` (targets.ts), all saved to and
 * read from adapter_config.json under PEFT's names.
 *
 * PEFT's LoraConfig variants are options here as there: `use_dora` (DoRA, dora.ts; the magnitude is
 * saved as `base_model.model.<module path>.lora_magnitude_vector`, no `.weight`, as PEFT saves it)
 * and `init_lora_weights: pissa | pissa_niter_N | olora | corda` (lora-init.ts, corda.ts), which
 * rewrite the base weights to the residual; an adapter whose config names such an init is
 * re-initialised on load (CorDA from the triplets saved next to it) and then given its saved A and
 * B, as PEFT does, so it loads onto the original base. The tuner declares them as the bench
 * variants `dora`, `pissa`, `olora`, `corda-ipm` and `corda-kpm` (CorDA calibrates on the run's
 * training data unless `corda_config.data` names a file).
 */
import { existsSync, mkdirSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { z } from 'zod';
import { ConfigError, FormatError, TensorMismatchError } from '../errors.ts';
import {
  isJsonObject,
  type JsonObject,
  openSafetensors,
  type SafetensorsDType,
  writeJsonAtomic,
  writeSafetensors,
} from '../io/index.ts';
import { architectureFor, isCausalLM, type LmHeadOverride } from '../models/index.ts';
import { Conv1D, Embedding, Linear, type Module, type Parameter } from '../nn/index.ts';
import {
  add,
  formatShape,
  fromArray,
  matmul,
  mulScalar,
  noGrad,
  Rng,
  sqrt,
  square,
  sub,
  sum,
  type Tensor,
  transpose,
} from '../tensor/index.ts';
import {
  type CordaEigens,
  type CordaMethod,
  computeCordaEigens,
  loadCordaEigens,
  saveCordaEigens,
} from './corda.ts';
import { LoraEmbedding } from './lora-embedding.ts';
import { fixedHead, loraLinearHead, tiedLoraEmbeddingHead } from './lora-head.ts';
import { isMutatingInit, type LoraInit, parseLoraInit } from './lora-init.ts';
import { LoraLinear } from './lora-linear.ts';
import { checkLoraPattern, type LoraPattern, patternValue } from './lora-patterns.ts';
import { LM_HEAD, tiedHeadLayer, tiedHeadPlan, tiedLoraLinearHead } from './lora-tied.ts';
import { ModulesToSave, selectModulesToSave } from './modules-to-save.ts';
import {
  checkLayerSelection,
  outputLayerNames,
  type SelectedTargets,
  selectTargetModules,
  type TargetModules,
} from './targets.ts';
import {
  ADAPTER_CONFIG_FILE,
  ADAPTER_WEIGHTS_FILE,
  type Adapter,
  type AuxiliaryLoss,
  type CalibrationExample,
  PEFT_KEY_PREFIX,
  registerTuner,
  restoreTrainable,
  type SaveAdapterOptions,
  snapshotTrainable,
  type Tuner,
} from './tuner.ts';

/** LoRA options (PEFT's LoraConfig fields, camelCased). Every field has a default. */
export interface LoraConfig {
  /** Rank of the update (default 8). */
  r?: number;
  /** Scaling numerator (default 8): scaling = loraAlpha / r, or / sqrt(r) with useRslora. */
  loraAlpha?: number;
  /** Dropout rate on the LoRA path's input, in [0, 1) (default 0). */
  loraDropout?: number;
  /** PEFT `target_modules`: names (suffix match), a full-match regex, or 'all-linear' (default: PEFT's for the model type). */
  targetModules?: TargetModules;
  /** PEFT `exclude_modules`: modules to skip even when targeted (same rules; default none). */
  excludeModules?: TargetModules | null;
  /** rsLoRA scaling loraAlpha / sqrt(r) (default false). */
  useRslora?: boolean;
  /** Initialisation: 'kaiming' (default) or 'gaussian' (B = 0), or 'pissa', 'pissa_niter_N', 'olora' (rewrite the base; lora-init.ts). */
  init?: LoraInit;
  /** DoRA: a trainable magnitude vector per target (default false; dora.ts). */
  useDora?: boolean;
  /** KaSA (PEFT's kasa_config): truncated base, B diag(lambda) A, regularisation weights; null = off (default). */
  kasa?: Partial<KasaSettings> | null;
  /** CorDA settings, used by init 'corda' (default for it: ipm on the run's training data; corda.ts). */
  corda?: CordaSettings | null;
  /** Seed of A's initialisation and the dropout masks (default 0). */
  seed?: number;
  /** PEFT `rank_pattern`: module-name pattern -> r for the modules it matches (default {}; lora-patterns.ts). */
  rankPattern?: LoraPattern | null;
  /** PEFT `alpha_pattern`: module-name pattern -> lora_alpha (default {}). */
  alphaPattern?: LoraPattern | null;
  /** PEFT `layers_to_transform`: adapt only these layer indices (list targets only; default null = all). */
  layersToTransform?: number | readonly number[] | null;
  /** PEFT `layers_pattern`: name(s) of the layer list component, e.g. 'layers' or 'h' (default null = any). */
  layersPattern?: string | readonly string[] | null;
  /** PEFT `lora_bias`: a trainable, zero-initialised bias on lora_B (default false; init 'kaiming' only, no DoRA / KaSA). */
  loraBias?: boolean;
  /**
   * Weight decay of the lora_B matrices only, overriding the optimizer's (STAR's calibration
   * constraint, decay 0.5 on B); null (default) = the optimizer's weight decay for every matrix.
   */
  loraBWeightDecay?: number | null;
  /**
   * PEFT `modules_to_save`: modules trained whole (a trainable copy; e.g. ['lm_head'] or
   * ['embed_tokens']), matched by name suffix as PEFT does (default null = none; modules-to-save.ts).
   */
  modulesToSave?: readonly string[] | null;
  /**
   * PEFT `ensure_weight_tying`: on a model whose LM head is tied to the token embedding, an
   * adapter or modules_to_save copy of the embedding applies to the head too (default false: the
   * input side only, as PEFT; such an adapter cannot be merged).
   */
  ensureWeightTying?: boolean;
}

/** How init 'corda' gets its triplets (PEFT's corda_config plus Attune's calibration data fields). */
export interface CordaSettings {
  /** PEFT `corda_method`: 'ipm' (top r) or 'kpm' (bottom r). */
  method: CordaMethod;
  /** Calibration JSONL file, or null for the run's training data (data.train). */
  data: string | null;
  /** Calibration examples used at most (the first ones of the file). */
  maxSamples: number;
  /** Reads the calibration examples (set by the tuner's fromOptions from the run's context). */
  calibration?: (() => CalibrationExample[]) | null;
  /** Precomputed triplets by module path (a saved adapter's corda_eigens.safetensors); skips calibration. */
  eigens?: ReadonlyMap<string, CordaEigens> | null;
}

/** KaSA's regulariser weights (PEFT's KasaConfig): beta * ||lambda||^2 + gamma * (||B^T B - I||_F + ||A A^T - I||_F). */
export interface KasaSettings {
  /** Weight of the squared norm of each layer's lambda (PEFT default 1e-4). */
  beta: number;
  /** Weight of each layer's orthogonality penalty (PEFT default 1e-3). */
  gamma: number;
}

/** PEFT's KasaConfig defaults. */
export const DEFAULT_KASA: KasaSettings = { beta: 1e-4, gamma: 1e-3 };

/** PEFT's default corda_config, with Attune's calibration fields (the training data, 256 examples). */
export const DEFAULT_CORDA: CordaSettings = { method: 'ipm', data: null, maxSamples: 256 };

/** A LoraConfig with every default filled in. */
export type ResolvedLoraConfig = Omit<
  Required<LoraConfig>,
  'kasa' | 'rankPattern' | 'alphaPattern' | 'modulesToSave'
> & {
  kasa: KasaSettings | null;
  modulesToSave: string[] | null;
  rankPattern: LoraPattern;
  alphaPattern: LoraPattern;
};

/** PEFT's default target_modules for llama, mistral and qwen2 (and any model that is not a CausalLM). */
export const DEFAULT_LORA_TARGETS: readonly string[] = ['q_proj', 'v_proj'];

/** PEFT's default target_modules for `model`'s model type (TRANSFORMERS_MODELS_TO_LORA_TARGET_MODULES_MAPPING). */
export function defaultLoraTargets(model: Module): readonly string[] {
  return isCausalLM(model)
    ? architectureFor(model.config.modelType).defaultLoraTargets
    : DEFAULT_LORA_TARGETS;
}

const CONFIG_KEYS: readonly (keyof LoraConfig)[] = [
  'r',
  'loraAlpha',
  'loraDropout',
  'targetModules',
  'excludeModules',
  'useRslora',
  'init',
  'useDora',
  'kasa',
  'corda',
  'seed',
  'rankPattern',
  'alphaPattern',
  'layersToTransform',
  'layersPattern',
  'loraBias',
  'loraBWeightDecay',
  'modulesToSave',
  'ensureWeightTying',
];

function isTargetModules(value: unknown): value is TargetModules {
  return typeof value === 'string' || (Array.isArray(value) && value.every((v) => typeof v === 'string'));
}

/**
 * Validate a LoRA config and fill in the defaults (throws a ConfigError naming the field);
 * `defaultTargets` is the model type's default target_modules.
 */
export function resolveLoraConfig(
  config: unknown = {},
  defaultTargets: readonly string[] = DEFAULT_LORA_TARGETS,
): ResolvedLoraConfig {
  if (config === undefined || config === null) config = {};
  if (!isJsonObject(config)) throw new ConfigError('lora: the config must be an object of LoRA options');
  const unknown = Object.keys(config).filter((k) => !(CONFIG_KEYS as readonly string[]).includes(k));
  if (unknown.length > 0) {
    throw new ConfigError(`lora: unknown option(s) ${unknown.join(', ')} (known: ${CONFIG_KEYS.join(', ')})`);
  }
  const c = config as LoraConfig;
  const r = c.r ?? 8;
  if (!Number.isInteger(r) || r <= 0) throw new ConfigError(`lora: r must be a positive integer, found ${r}`);
  const loraAlpha = c.loraAlpha ?? 8;
  if (typeof loraAlpha !== 'number' || !Number.isFinite(loraAlpha) || loraAlpha <= 0) {
    throw new ConfigError(`lora: loraAlpha must be a positive number, found ${loraAlpha}`);
  }
  const loraDropout = c.loraDropout ?? 0;
  if (typeof loraDropout !== 'number' || !(loraDropout >= 0 && loraDropout < 1)) {
    throw new ConfigError(`lora: loraDropout must be in [0, 1), found ${loraDropout}`);
  }
  const targetModules = c.targetModules ?? defaultTargets;
  if (!isTargetModules(targetModules)) {
    throw new ConfigError(
      "lora: targetModules must be a list of module names, a regex string or 'all-linear'",
    );
  }
  const excludeModules = c.excludeModules ?? null;
  if (excludeModules !== null && !isTargetModules(excludeModules)) {
    throw new ConfigError('lora: excludeModules must be a list of module names or a regex string');
  }
  const useRslora = c.useRslora ?? false;
  if (typeof useRslora !== 'boolean')
    throw new ConfigError(`lora: useRslora must be true or false, found ${useRslora}`);
  const init = parseLoraInit(c.init ?? 'kaiming');
  if (init === null) {
    throw new ConfigError(
      `lora: init must be 'kaiming', 'gaussian', 'pissa', 'pissa_niter_N', 'olora' or 'corda', found '${String(c.init)}'`,
    );
  }
  const useDora = c.useDora ?? false;
  if (typeof useDora !== 'boolean')
    throw new ConfigError(`lora: useDora must be true or false, found ${useDora}`);
  const seed = c.seed ?? 0;
  if (!Number.isSafeInteger(seed)) throw new ConfigError(`lora: seed must be an integer, found ${seed}`);
  const rankPattern = checkLoraPattern(c.rankPattern, 'rank_pattern', true);
  const alphaPattern = checkLoraPattern(c.alphaPattern, 'alpha_pattern', false);
  checkLayerSelection(targetModules, c.layersToTransform, c.layersPattern, 'lora');
  const layersToTransform =
    c.layersToTransform === undefined || c.layersToTransform === null
      ? null
      : typeof c.layersToTransform === 'number'
        ? c.layersToTransform
        : [...c.layersToTransform];
  const layersPattern =
    c.layersPattern === undefined || c.layersPattern === null
      ? null
      : typeof c.layersPattern === 'string'
        ? c.layersPattern
        : [...c.layersPattern];
  const loraBias = c.loraBias ?? false;
  if (typeof loraBias !== 'boolean')
    throw new ConfigError(`lora: loraBias must be true or false, found ${loraBias}`);
  if (loraBias && (init !== 'kaiming' || useDora || (c.kasa !== undefined && c.kasa !== null))) {
    // PEFT's LoraConfig.__post_init__ refuses lora_bias with other inits and with DoRA
    throw new ConfigError(
      useDora
        ? 'lora: lora_bias is not supported with DoRA (use_dora), as in PEFT'
        : init !== 'kaiming'
          ? `lora: lora_bias is supported only with init_lora_weights true, as in PEFT, found '${init}'`
          : 'lora: lora_bias is not supported with KaSA (kasa_config)',
    );
  }
  const loraBWeightDecay = c.loraBWeightDecay ?? null;
  if (loraBWeightDecay !== null && !(typeof loraBWeightDecay === 'number' && loraBWeightDecay >= 0))
    throw new ConfigError(
      `lora: loraBWeightDecay must be a non-negative number or null, found ${JSON.stringify(loraBWeightDecay)}`,
    );
  const mts = c.modulesToSave ?? null;
  if (mts !== null && !(Array.isArray(mts) && mts.every((m) => typeof m === 'string' && m !== '')))
    throw new ConfigError(
      `lora: modulesToSave must be a list of module names (e.g. ['lm_head']) or null, found ${JSON.stringify(mts)}`,
    );
  const modulesToSave = mts === null || mts.length === 0 ? null : [...new Set(mts)];
  const ensureWeightTying = c.ensureWeightTying ?? false;
  if (typeof ensureWeightTying !== 'boolean')
    throw new ConfigError(`lora: ensureWeightTying must be true or false, found ${ensureWeightTying}`);
  let corda = c.corda ?? null;
  if (init === 'corda' && Object.keys(rankPattern).length > 0)
    throw new ConfigError(
      "lora: init_lora_weights 'corda' uses one rank r for every module; rank_pattern is not supported with it",
    );
  if (init === 'corda') {
    corda = { ...DEFAULT_CORDA, ...(corda ?? {}) };
    if (corda.method !== 'ipm' && corda.method !== 'kpm')
      throw new ConfigError(`lora: corda method must be 'ipm' or 'kpm', found '${String(corda.method)}'`);
    if (!Number.isInteger(corda.maxSamples) || corda.maxSamples <= 0)
      throw new ConfigError(`lora: corda maxSamples must be a positive integer, found ${corda.maxSamples}`);
  } else corda = null;
  let kasa: KasaSettings | null = null;
  if (c.kasa !== undefined && c.kasa !== null) {
    kasa = { ...DEFAULT_KASA, ...c.kasa };
    for (const k of ['beta', 'gamma'] as const) {
      if (typeof kasa[k] !== 'number' || !(kasa[k] >= 0))
        throw new ConfigError(`lora: kasa ${k} must be a non-negative number, found ${kasa[k]}`);
    }
    if (useDora)
      throw new ConfigError('lora: KaSA (kasa) cannot be combined with DoRA (useDora), as in PEFT');
    if (isMutatingInit(init))
      throw new ConfigError(
        `lora: KaSA (kasa) cannot be combined with init '${init}' (both rewrite the base)`,
      );
  }
  return {
    r,
    loraAlpha,
    loraDropout,
    targetModules,
    excludeModules,
    useRslora,
    init,
    useDora,
    kasa,
    corda,
    seed,
    rankPattern,
    alphaPattern,
    layersToTransform,
    layersPattern,
    loraBias,
    loraBWeightDecay,
    modulesToSave,
    ensureWeightTying,
  };
}

/** The rank and scaling of the module at `name` under `c`'s rank_pattern / alpha_pattern (PEFT's get_pattern_key). */
export function loraModuleSettings(
  c: ResolvedLoraConfig,
  name: string,
): { r: number; loraAlpha: number; scaling: number } {
  const r = patternValue(c.rankPattern, name, c.r, 'rank_pattern');
  const loraAlpha = patternValue(c.alphaPattern, name, c.loraAlpha, 'alpha_pattern');
  return { r, loraAlpha, scaling: loraScaling(loraAlpha, r, c.useRslora) };
}

/** Whether `c` gives some module its own rank or alpha (rank_pattern / alpha_pattern non-empty). */
export function hasLoraPatterns(c: {
  rankPattern?: LoraPattern | null;
  alphaPattern?: LoraPattern | null;
}): boolean {
  return Object.keys(c.rankPattern ?? {}).length > 0 || Object.keys(c.alphaPattern ?? {}).length > 0;
}

/** The multiplier of B A: alpha / r, or alpha / sqrt(r) for rsLoRA. */
export function loraScaling(loraAlpha: number, r: number, useRslora: boolean): number {
  return useRslora ? loraAlpha / Math.sqrt(r) : loraAlpha / r;
}

/** The saved key of a LoRA matrix of the module at `modulePath`: `base_model.model.<path>.lora_A.weight`. */
export function loraKey(modulePath: string, matrix: 'lora_A' | 'lora_B'): string {
  return `${PEFT_KEY_PREFIX}${modulePath}.${matrix}.weight`;
}

/** The saved key of lora_bias's vector: `base_model.model.<path>.lora_B.bias` (PEFT's name). */
export function loraBiasKey(modulePath: string): string {
  return `${PEFT_KEY_PREFIX}${modulePath}.lora_B.bias`;
}

/** The saved key of an Embedding's LoRA matrix: `base_model.model.<path>.lora_embedding_A` (PEFT's ParameterDict, no `.weight`). */
export function loraEmbeddingKey(
  modulePath: string,
  matrix: 'lora_embedding_A' | 'lora_embedding_B',
): string {
  return `${PEFT_KEY_PREFIX}${modulePath}.${matrix}`;
}

/** The saved key of KaSA's diagonal: `base_model.model.<path>.lora_diag` (PEFT's ParameterDict, adapter name stripped). */
export function kasaDiagKey(modulePath: string): string {
  return `${PEFT_KEY_PREFIX}${modulePath}.lora_diag`;
}

/** The saved key of DoRA's magnitude: `base_model.model.<path>.lora_magnitude_vector` (PEFT strips `.weight`). */
export function doraMagnitudeKey(modulePath: string): string {
  return `${PEFT_KEY_PREFIX}${modulePath}.lora_magnitude_vector`;
}

/** PEFT fields that must keep their default here: [name, is-default test, what it would need]. */
const UNSUPPORTED_FIELDS: [string, (v: unknown) => boolean, string][] = [
  ['bias', (v) => v === undefined || v === null || v === 'none', "trained biases (only 'none' is supported)"],
  ['layer_replication', (v) => v === undefined || v === null, 'layer replication'],
  ['trainable_token_indices', (v) => v === undefined || v === null, 'trainable token embeddings'],
  [
    'target_parameters',
    (v) => v === undefined || v === null || (Array.isArray(v) && v.length === 0),
    'LoRA on raw parameters',
  ],
  ['use_qalora', (v) => v === undefined || v === null || v === false, 'QA-LoRA'],
];

/** Options of `loraConfigFromAdapterJson`. */
export interface AdapterJsonOptions {
  /**
   * Accept `fan_in_fan_out: true` (adapters of GPT-2's Conv1D layers). The lora tuner does: it
   * re-derives the layout from each adapted module, as PEFT does. Commands that fold the saved
   * matrices into raw checkpoint tensors by name (merge, port, delta analysis) do not (default).
   */
  allowFanInFanOut?: boolean;
  /**
   * Accept DoRA (`use_dora: true`), the inits that rewrite the base (PiSSA, OLoRA) and per-module
   * ranks / alphas (`rank_pattern`, `alpha_pattern`): the lora tuner runs them; commands that fold
   * B A into checkpoint tensors by name with one r and scaling do not (default).
   */
  allowVariants?: boolean;
}

/** The `init_lora_weights` values PEFT writes for each LoraInit (true for kaiming). */
export function initLoraWeightsJson(init: LoraInit): true | string {
  return init === 'kaiming' ? true : init;
}

/**
 * The LoRA config an adapter_config.json object describes (PEFT's field names). Throws a
 * FormatError naming `file` and the field for a bad value or a PEFT feature Attune does not run.
 */
export function loraConfigFromAdapterJson(
  json: JsonObject,
  file: string,
  options: AdapterJsonOptions = {},
): LoraConfig {
  if (json.peft_type !== 'LORA')
    throw new FormatError(file, `peft_type is ${JSON.stringify(json.peft_type)}, expected "LORA"`);
  const taskType = json.task_type;
  if (taskType !== undefined && taskType !== null && taskType !== 'CAUSAL_LM') {
    throw new FormatError(
      file,
      `task_type ${JSON.stringify(taskType)} is not supported (Attune's models are causal LMs: "CAUSAL_LM")`,
    );
  }
  const fanInFanOut = json.fan_in_fan_out ?? false;
  if (typeof fanInFanOut !== 'boolean')
    throw new FormatError(
      file,
      `'fan_in_fan_out' must be true or false, found ${JSON.stringify(fanInFanOut)}`,
    );
  if (fanInFanOut && !options.allowFanInFanOut) {
    throw new FormatError(
      file,
      `'fan_in_fan_out' is true (an adapter of Conv1D layers, e.g. GPT-2): this command folds LoRA matrices into [out, in] weights by name and does not support it; merge it with the lora tuner first (attune export --merge)`,
    );
  }
  for (const [field, isDefault, what] of UNSUPPORTED_FIELDS) {
    if (!isDefault(json[field])) {
      throw new FormatError(
        file,
        `'${field}' is ${JSON.stringify(json[field])}: ${what} is not supported by Attune's LoRA`,
      );
    }
  }
  const r = json.r ?? 8;
  if (typeof r !== 'number' || !Number.isInteger(r) || r <= 0)
    throw new FormatError(file, `'r' must be a positive integer, found ${JSON.stringify(r)}`);
  const alpha = json.lora_alpha ?? 8;
  if (typeof alpha !== 'number' || !(alpha > 0))
    throw new FormatError(file, `'lora_alpha' must be a positive number, found ${JSON.stringify(alpha)}`);
  const dropout = json.lora_dropout ?? 0;
  if (typeof dropout !== 'number' || !(dropout >= 0 && dropout < 1)) {
    throw new FormatError(
      file,
      `'lora_dropout' must be a number in [0, 1), found ${JSON.stringify(dropout)}`,
    );
  }
  const targets = json.target_modules ?? DEFAULT_LORA_TARGETS;
  if (!isTargetModules(targets)) {
    throw new FormatError(
      file,
      `'target_modules' must be a list of module names or a regex string, found ${JSON.stringify(targets)}`,
    );
  }
  const exclude = json.exclude_modules ?? null;
  if (exclude !== null && !isTargetModules(exclude)) {
    throw new FormatError(
      file,
      `'exclude_modules' must be a list of module names or a regex string, found ${JSON.stringify(exclude)}`,
    );
  }
  const rslora = json.use_rslora ?? false;
  if (typeof rslora !== 'boolean')
    throw new FormatError(file, `'use_rslora' must be true or false, found ${JSON.stringify(rslora)}`);
  const initField = json.init_lora_weights ?? true;
  let init: LoraInit | null = null;
  if (typeof initField === 'boolean') init = 'kaiming';
  else if (typeof initField === 'string') {
    const parsed = parseLoraInit(initField.toLowerCase());
    if (parsed !== null && parsed !== 'kaiming') init = parsed;
  }
  if (init === null || (isMutatingInit(init) && !options.allowVariants)) {
    throw new FormatError(
      file,
      init === null
        ? `'init_lora_weights' is ${JSON.stringify(initField)}: supported are true, false, "gaussian", "pissa", "pissa_niter_N", "olora" and "corda" (LoftQ, EVA, ... are not); convert the adapter to plain LoRA with PEFT (path_initial_model_for_weight_conversion) first`
        : `'init_lora_weights' is ${JSON.stringify(initField)}: this command folds B A into the original base weights, but a ${init} adapter applies to the residual base; convert it to a plain LoRA first (savePlainLora, PEFT's path_initial_model_for_weight_conversion) or merge it with attune export --merge`,
    );
  }
  const useDora = json.use_dora ?? false;
  if (typeof useDora !== 'boolean')
    throw new FormatError(file, `'use_dora' must be true or false, found ${JSON.stringify(useDora)}`);
  if (useDora && !options.allowVariants) {
    throw new FormatError(
      file,
      `'use_dora' is true: this command folds B A into weights by name and does not apply DoRA's magnitude; merge the adapter with the lora tuner first (attune export --merge)`,
    );
  }
  const loraBias = json.lora_bias ?? false;
  if (typeof loraBias !== 'boolean')
    throw new FormatError(file, `'lora_bias' must be true or false, found ${JSON.stringify(loraBias)}`);
  if (loraBias && !options.allowVariants) {
    throw new FormatError(
      file,
      `'lora_bias' is true: a bias on lora_B is not supported by this command, which folds B A into weights by name; merge the adapter with the lora tuner first (attune export --merge)`,
    );
  }
  let kasa: KasaSettings | null = null;
  const kc = json.kasa_config;
  if (kc !== undefined && kc !== null) {
    const beta = isJsonObject(kc) ? (kc.beta ?? DEFAULT_KASA.beta) : null;
    const gamma = isJsonObject(kc) ? (kc.gamma ?? DEFAULT_KASA.gamma) : null;
    if (typeof beta !== 'number' || typeof gamma !== 'number' || !(beta >= 0 && gamma >= 0)) {
      throw new FormatError(
        file,
        `'kasa_config' must be an object with non-negative numbers beta and gamma, found ${JSON.stringify(kc)}`,
      );
    }
    if (!options.allowVariants) {
      throw new FormatError(
        file,
        `'kasa_config' is set: this command folds B A into the original base weights, but a KaSA adapter is B diag(lambda) A on the truncated base; merge it with the lora tuner first (attune export --merge)`,
      );
    }
    kasa = { beta, gamma };
  }
  let corda: CordaSettings | null = null;
  if (init === 'corda') {
    const cc = json.corda_config ?? {};
    const method = isJsonObject(cc) ? (cc.corda_method ?? 'ipm') : null;
    if (method !== 'ipm' && method !== 'kpm') {
      throw new FormatError(
        file,
        `'corda_config' must be an object with corda_method "ipm" or "kpm", found ${JSON.stringify(cc)}`,
      );
    }
    // the triplets saved next to the adapter rebuild the residual base without the calibration data
    corda = { ...DEFAULT_CORDA, method, eigens: loadCordaEigens(dirname(file)) };
  }
  const where = (error: unknown): never => {
    throw new FormatError(file, (error as Error).message.replace(/^lora: /, ''));
  };
  let rankPattern: LoraPattern = {};
  let alphaPattern: LoraPattern = {};
  try {
    rankPattern = checkLoraPattern(json.rank_pattern, 'rank_pattern', true);
    alphaPattern = checkLoraPattern(json.alpha_pattern, 'alpha_pattern', false);
    checkLayerSelection(targets, json.layers_to_transform, json.layers_pattern, 'lora');
  } catch (error) {
    where(error);
  }
  if (hasLoraPatterns({ rankPattern, alphaPattern }) && !options.allowVariants) {
    throw new FormatError(
      file,
      `'rank_pattern' / 'alpha_pattern' give modules their own rank or alpha (${JSON.stringify({ ...rankPattern, ...alphaPattern })}): this command folds B A with one r and scaling; merge the adapter with the lora tuner first (attune export --merge)`,
    );
  }
  const mtsField = json.modules_to_save ?? null;
  if (
    mtsField !== null &&
    !(Array.isArray(mtsField) && mtsField.every((m) => typeof m === 'string' && m !== ''))
  )
    throw new FormatError(
      file,
      `'modules_to_save' must be a list of module names or null, found ${JSON.stringify(mtsField)}`,
    );
  const modulesToSave = mtsField === null || mtsField.length === 0 ? null : [...(mtsField as string[])];
  const ensureWeightTying = json.ensure_weight_tying ?? false;
  if (typeof ensureWeightTying !== 'boolean')
    throw new FormatError(
      file,
      `'ensure_weight_tying' must be true or false, found ${JSON.stringify(ensureWeightTying)}`,
    );
  if (!options.allowVariants) {
    if (modulesToSave !== null)
      throw new FormatError(
        file,
        `'modules_to_save' is ${JSON.stringify(modulesToSave)}: this command folds B A into weights by name and does not apply fully trained modules; merge the adapter with the lora tuner first (attune export --merge)`,
      );
    const embeddingTarget =
      typeof targets !== 'string' ? targets.find((t) => EMBEDDING_LAYER_NAMES.includes(t)) : undefined;
    if (embeddingTarget !== undefined)
      throw new FormatError(
        file,
        `'target_modules' names '${embeddingTarget}' (LoRA on an embedding or the LM head): this command folds lora_A / lora_B of Linear layers by name; merge the adapter with the lora tuner first (attune export --merge)`,
      );
  }
  const ltt = json.layers_to_transform ?? null;
  const lp = json.layers_pattern ?? null;
  return {
    modulesToSave,
    ensureWeightTying,
    r,
    loraAlpha: alpha,
    loraDropout: dropout,
    rankPattern,
    alphaPattern,
    layersToTransform: ltt === null ? null : typeof ltt === 'number' ? ltt : [...(ltt as number[])],
    layersPattern: lp === null ? null : typeof lp === 'string' ? lp : [...(lp as string[])],
    targetModules: typeof targets === 'string' ? targets : [...targets],
    excludeModules: exclude === null || typeof exclude === 'string' ? exclude : [...exclude],
    useRslora: rslora,
    init,
    useDora,
    kasa,
    corda,
    loraBias,
  };
}

const FLOAT_DTYPES: readonly SafetensorsDType[] = ['F32', 'BF16', 'F16', 'F64'];

/** PEFT's EMBEDDING_LAYER_NAMES, plus GPT-2's token and position tables. */
const EMBEDDING_LAYER_NAMES: readonly string[] = ['embed_tokens', 'lm_head', 'wte', 'wpe'];

/** What a LoRA adapter has besides its LoraLinear layers (all optional). */
export interface LoraAdapterParts {
  /** Adapted embedding tables (PEFT's lora.Embedding), with their module paths. */
  embeddings?: [string, LoraEmbedding][];
  /** The modules_to_save copies, or null. */
  modulesToSave?: ModulesToSave | null;
  /** The tied embedding's path when the adapter touches the tied table (LoRA or modules_to_save), else null. */
  tiedPath?: string | null;
  /** The LM head's path when LoRA adapts it (`lm_head`), else null. */
  headPath?: string | null;
  /** What the adapter set as the model's `lmHeadOverride` (cleared on unload), or null. */
  headOverride?: LmHeadOverride | null;
  /** The head-only LoRA of a tied model's 'lm_head' (outside the module tree; lora-tied.ts), or null. */
  tiedHead?: LoraLinear | null;
}

/** A LoRA adapter applied to a model; see the file comment. */
export class LoraAdapter implements Adapter {
  readonly method = 'lora';
  /** The resolved config. */
  readonly config: ResolvedLoraConfig;
  /** target_modules as saved (all-linear expanded to module name suffixes, as PEFT saves it). */
  readonly savedTargetModules: string[] | string;
  /** The multiplier of B A of modules no rank_pattern / alpha_pattern key matches (each layer has its own `scaling`). */
  readonly scaling: number;
  private readonly layerList: [string, LoraLinear][];
  private readonly embeddingList: [string, LoraEmbedding][];
  /** The modules_to_save copies (null without modules_to_save). */
  readonly modulesToSave: ModulesToSave | null;
  private readonly tiedPath: string | null;
  private readonly headPath: string | null;
  private readonly headOverride: LmHeadOverride | null;
  private readonly tiedHead: LoraLinear | null;
  private isMerged = false;
  private detached = false;

  /** Use the 'lora' tuner (`getTuner('lora').apply`) rather than this constructor. */
  constructor(
    readonly model: Module,
    config: ResolvedLoraConfig,
    savedTargetModules: string[] | string,
    layers: [string, LoraLinear][],
    private readonly trainableFlags: ReadonlyMap<Parameter, boolean>,
    /** CorDA's triplets by module path (init 'corda'; saved as corda_eigens.safetensors), else null. */
    readonly cordaEigens: ReadonlyMap<string, CordaEigens> | null = null,
    parts: LoraAdapterParts = {},
  ) {
    this.embeddingList = parts.embeddings ?? [];
    this.modulesToSave = parts.modulesToSave ?? null;
    this.tiedPath = parts.tiedPath ?? null;
    this.headPath = parts.headPath ?? null;
    this.headOverride = parts.headOverride ?? null;
    this.tiedHead = parts.tiedHead ?? null;
    this.config = config;
    this.savedTargetModules = savedTargetModules;
    this.scaling = loraScaling(config.loraAlpha, config.r, config.useRslora);
    this.layerList = layers;
  }

  /** The adapted Linear / Conv1D layers with their module paths, in tree order (a tied model's head-only 'lm_head' LoRA last). */
  layers(): [string, LoraLinear][] {
    return [...this.layerList];
  }

  /** The adapted embedding tables with their module paths, in tree order. */
  embeddingLayers(): [string, LoraEmbedding][] {
    return [...this.embeddingList];
  }

  /** Whether the update is folded into the base weights. */
  get merged(): boolean {
    return this.isMerged;
  }

  private check(action: string): void {
    if (this.detached)
      throw new ConfigError(`lora: cannot ${action}: the adapter was unloaded from the model`);
  }

  /** Every LoRA matrix with its model name (`<path>.lora_A.weight`, `<path>.lora_B.weight`, DoRA's `<path>.lora_magnitude_vector`). */
  private namedLoraParameters(): [string, Parameter][] {
    return this.layerList
      .flatMap(([path, l]): [string, Parameter][] => [
        [`${path}.lora_A.weight`, l.lora_A.weight],
        [`${path}.lora_B.weight`, l.lora_B.weight],
        ...(l.lora_magnitude_vector
          ? [[`${path}.lora_magnitude_vector`, l.lora_magnitude_vector] as [string, Parameter]]
          : []),
        ...(l.lora_diag ? [[`${path}.lora_diag`, l.lora_diag] as [string, Parameter]] : []),
        ...(l.lora_B.bias ? [[`${path}.lora_B.bias`, l.lora_B.bias] as [string, Parameter]] : []),
      ])
      .concat(
        this.embeddingList.flatMap(([path, e]): [string, Parameter][] => [
          [`${path}.lora_embedding_A`, e.lora_embedding_A],
          [`${path}.lora_embedding_B`, e.lora_embedding_B],
        ]),
      );
  }

  /** The LoRA matrices and modules_to_save copies that require grad, with their model names. */
  namedTrainableParameters(): [string, Parameter][] {
    return [
      ...this.namedLoraParameters().filter(([, p]) => p.requiresGrad),
      ...(this.modulesToSave?.namedTrainableParameters() ?? []),
    ];
  }

  /**
   * lora_b_weight_decay: that decay for every trainable lora_B matrix (not its bias) and every
   * Embedding's lora_embedding_B (PEFT's B there too: the factor that starts non-zero), else none.
   */
  weightDecayOverrides(): Map<Parameter, number> {
    const decay = this.config.loraBWeightDecay;
    const out = new Map<Parameter, number>();
    if (decay === null) return out;
    for (const [, l] of this.layerList) if (l.lora_B.weight.requiresGrad) out.set(l.lora_B.weight, decay);
    for (const [, e] of this.embeddingList)
      if (e.lora_embedding_B.requiresGrad) out.set(e.lora_embedding_B, decay);
    return out;
  }

  /** The LoRA matrices that require grad. */
  trainableParameters(): Parameter[] {
    return this.namedTrainableParameters().map(([, p]) => p);
  }

  /** LoRA matrices (and DoRA magnitudes) under PEFT's saved keys (`base_model.model.<path>.lora_A.weight`); live tensors. */
  state(): Map<string, Tensor> {
    const out = new Map<string, Tensor>();
    for (const [path, l] of this.layerList) {
      out.set(loraKey(path, 'lora_A'), l.lora_A.weight);
      out.set(loraKey(path, 'lora_B'), l.lora_B.weight);
      if (l.lora_magnitude_vector) out.set(doraMagnitudeKey(path), l.lora_magnitude_vector);
      if (l.lora_diag) out.set(kasaDiagKey(path), l.lora_diag);
      if (l.lora_B.bias) out.set(loraBiasKey(path), l.lora_B.bias);
    }
    for (const [path, e] of this.embeddingList) {
      out.set(loraEmbeddingKey(path, 'lora_embedding_A'), e.lora_embedding_A);
      out.set(loraEmbeddingKey(path, 'lora_embedding_B'), e.lora_embedding_B);
    }
    for (const [key, t] of this.modulesToSave?.state() ?? []) out.set(key, t);
    return out;
  }

  /**
   * KaSA's regulariser (null without KaSA), PEFT's get_kasa_regularization_loss: the sum over
   * adapted layers of beta * ||lambda||^2 + gamma * (||B^T B - I||_F + ||A A^T - I||_F), as a
   * differentiable scalar. The trainer adds it once per optimizer step.
   */
  auxiliaryLoss(): AuxiliaryLoss | null {
    const k = this.config.kasa;
    if (!k) return null;
    let total: Tensor | null = null;
    for (const [, l] of this.layerList) {
      const a = l.lora_A.weight;
      const b = l.lora_B.weight;
      const eye = identity(l.r, a.dtype);
      const gramB = sub(matmul(b, b, { transA: true }), eye);
      const gramA = sub(matmul(a, a, { transB: true }), eye);
      const ortho = add(sqrt(sum(square(gramB))), sqrt(sum(square(gramA))));
      const term = add(mulScalar(sum(square(l.lora_diag!)), k.beta), mulScalar(ortho, k.gamma));
      total = total ? add(total, term) : term;
    }
    if (!total) return null;
    return { value: total, parts: { kasa_reg: total.floatData()[0]! } };
  }

  /**
   * Without ensure_weight_tying, an adapter of a tied table changes the input side only; merging
   * it would change the LM head too (the same matrix), so it is refused.
   */
  private checkTiedMerge(action: string, withCopies: boolean): void {
    if (this.tiedHead) {
      throw new ConfigError(
        `lora: cannot ${action}: target_modules names '${LM_HEAD}', and this model ties its LM head to '${this.tiedPath}' (tie_word_embeddings), so the adapter changes the head only (ensure_weight_tying is false, PEFT's default); merging it into the one shared table would change the input embedding too. Keep the adapter unmerged, or train with ensure_weight_tying: true (the adapter then sits on '${this.tiedPath}' and applies to both sides)`,
      );
    }
    const byLora = this.tiedPath !== null && this.embeddingList.some(([n]) => n === this.tiedPath);
    const bySave = this.tiedPath !== null && (this.modulesToSave?.paths.includes(this.tiedPath) ?? false);
    if (!this.config.ensureWeightTying && (byLora || (withCopies && bySave))) {
      throw new ConfigError(
        `lora: cannot ${action}: '${this.tiedPath}' is tied to the LM head and the adapter changes its input side only (ensure_weight_tying is false, PEFT's default); merging would change the head too. Keep the adapter unmerged, or train with ensure_weight_tying: true`,
      );
    }
  }

  /** Fold scaling * B A into every adapted weight (see lora-linear.ts for bf16 weights); modules_to_save copies are already in place. */
  merge(): void {
    this.check('merge');
    this.checkTiedMerge('merge', false);
    // checked for every layer first, so a refusal leaves nothing merged (PEFT raises per layer)
    const biasless = this.layerList.find(([, l]) => l.lora_B.bias !== null && l.bias === null);
    if (biasless) {
      throw new ConfigError(
        `lora: cannot merge: lora_bias is set but the base layer '${biasless[0]}' has no bias (PEFT refuses this merge too); keep the adapter unmerged`,
      );
    }
    for (const [, l] of this.layerList) l.merge();
    for (const [, e] of this.embeddingList) e.merge();
    this.isMerged = true;
  }

  /** Subtract what `merge()` added. */
  unmerge(): void {
    this.check('unmerge');
    for (const [, l] of this.layerList) l.unmerge();
    for (const [, e] of this.embeddingList) e.unmerge();
    this.isMerged = false;
  }

  /** The adapter_config.json object PEFT writes for this adapter (keys sorted, as PEFT writes them). */
  adapterConfigJson(options: SaveAdapterOptions = {}): JsonObject {
    const c = this.config;
    const json: JsonObject = {
      alpha_pattern: { ...c.alphaPattern },
      auto_mapping: null,
      base_model_name_or_path: options.baseModelNameOrPath ?? null,
      bias: 'none',
      // PEFT sets fan_in_fan_out per adapted module (true for Conv1D) and saves the last one's
      fan_in_fan_out: this.layerList.length > 0 && this.layerList[this.layerList.length - 1]![1].fanInFanOut,
      inference_mode: true,
      init_lora_weights: initLoraWeightsJson(c.init),
      layer_replication: null,
      layers_pattern:
        c.layersPattern === null
          ? null
          : typeof c.layersPattern === 'string'
            ? c.layersPattern
            : [...c.layersPattern],
      layers_to_transform:
        c.layersToTransform === null
          ? null
          : typeof c.layersToTransform === 'number'
            ? c.layersToTransform
            : [...c.layersToTransform],
      loftq_config: {},
      lora_alpha: c.loraAlpha,
      lora_dropout: c.loraDropout,
      megatron_config: null,
      megatron_core: 'megatron.core',
      modules_to_save: c.modulesToSave ? [...c.modulesToSave] : null,
      peft_type: 'LORA',
      r: c.r,
      rank_pattern: { ...c.rankPattern },
      revision: null,
      target_modules: this.savedTargetModules,
      task_type: 'CAUSAL_LM',
      use_dora: c.useDora,
      use_rslora: c.useRslora,
    };
    // written only when set: PEFT versions before 0.14 do not know the field
    if (c.excludeModules !== null) json.exclude_modules = c.excludeModules;
    if (c.loraBias) json.lora_bias = true;
    if (c.ensureWeightTying) json.ensure_weight_tying = true;
    if (c.kasa) json.kasa_config = { beta: c.kasa.beta, gamma: c.kasa.gamma };
    if (c.corda) {
      // PEFT's CordaConfig fields only (PEFT builds a CordaConfig from them); the calibration file is Attune's
      json.corda_config = {
        cache_file: null,
        corda_method: c.corda.method,
        covariance_file: null,
        prune_temporary_fields: true,
        use_float16_for_covariance: false,
        verbose: false,
      };
    }
    return Object.fromEntries(Object.entries(json).sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0)));
  }

  /** Write adapter_model.safetensors, then adapter_config.json, into `dir` (each atomically). */
  save(dir: string, options: SaveAdapterOptions = {}): void {
    this.check('save');
    mkdirSync(dir, { recursive: true });
    const tensors = this.state();
    const tied = this.tiedHeadTensors();
    for (const [k, t] of tied) tensors.set(k, t);
    try {
      writeSafetensors(join(dir, ADAPTER_WEIGHTS_FILE), tensors, { format: 'pt' });
    } finally {
      for (const [, t, owned] of tied) if (owned) t.release();
    }
    if (this.cordaEigens) saveCordaEigens(dir, this.cordaEigens);
    writeJsonAtomic(join(dir, ADAPTER_CONFIG_FILE), this.adapterConfigJson(options));
  }

  /**
   * Read adapter_model.safetensors from `dir` into the LoRA matrices. Names, shapes and dtypes are
   * all checked, and every tensor read, before anything is copied; errors name the file and tensor.
   */
  load(dir: string): void {
    this.check('load');
    const file = join(dir, ADAPTER_WEIGHTS_FILE);
    if (!existsSync(file)) {
      const pickle = existsSync(join(dir, 'adapter_model.bin'));
      throw new FormatError(
        file,
        pickle
          ? 'file not found; adapter_model.bin (PyTorch pickle) is not read: re-save the adapter with save_pretrained(safe_serialization=True)'
          : 'file not found',
      );
    }
    const expected = this.state();
    const optional = this.optionalKeys();
    const reader = openSafetensors(file);
    const loaded = new Map<string, Tensor>();
    try {
      const names = reader.names();
      const missing = [...expected.keys()].filter((k) => !reader.has(k));
      const unexpected = names.filter((n) => !expected.has(n) && !optional.has(n));
      const problems: string[] = [];
      const shapes = new Map<string, { shape: readonly number[] }>([...expected, ...optional]);
      for (const [key, p] of shapes) {
        if (!reader.has(key)) continue;
        const info = reader.info(key);
        const sameShape =
          info.shape.length === p.shape.length && info.shape.every((d, i) => d === p.shape[i]);
        if (!sameShape)
          problems.push(
            `tensor '${key}' has shape ${formatShape(info.shape)}, expected ${formatShape(p.shape)}`,
          );
        else if (!FLOAT_DTYPES.includes(info.dtype))
          problems.push(`tensor '${key}' is ${info.dtype}, expected a float type`);
      }
      const lines: string[] = [];
      const list = (xs: string[]) =>
        xs.slice(0, 5).join(', ') + (xs.length > 5 ? `, ... (${xs.length} in all)` : '');
      if (missing.length > 0)
        lines.push(`missing tensor(s) ${list(missing)} (the adapter config targets them)`);
      if (unexpected.length > 0)
        lines.push(`unexpected tensor(s) ${list(unexpected)} (not LoRA matrices of the targeted modules)`);
      if (problems.length > 0) lines.push(problems.slice(0, 5).join('; '));
      if (lines.length > 0) throw new TensorMismatchError(`${file}: ${lines.join('; ')}; nothing was loaded`);
      for (const key of expected.keys()) loaded.set(key, reader.read(key));
      for (const [key, o] of optional) if (o.target && reader.has(key)) loaded.set(key, reader.read(key));
    } catch (error) {
      for (const t of loaded.values()) t.release();
      throw error;
    } finally {
      reader.close();
    }
    const targets = new Map<string, Parameter>([...expected].map(([k, p]) => [k, p as Parameter]));
    for (const [key, o] of optional) if (o.target) targets.set(key, o.target);
    for (const [key, t] of loaded) {
      targets.get(key)!.copyFrom(t, true);
      t.release();
    }
  }

  /**
   * Tensors PEFT may write that are not this adapter's own, by key: the base tables of targeted
   * embeddings / LM head (`<path>.base_layer.weight`, PEFT's save_embedding_layers), copied into
   * the base as PEFT's load does; and, with ensure_weight_tying, the tied `lm_head` entries
   * (transposes / copies of the embedding's), shape-checked and otherwise ignored.
   */
  private optionalKeys(): Map<string, { shape: readonly number[]; target: Parameter | null }> {
    const out = new Map<string, { shape: readonly number[]; target: Parameter | null }>();
    const base = (path: string, w: Parameter) =>
      out.set(`${PEFT_KEY_PREFIX}${path}.base_layer.weight`, { shape: w.shape, target: w });
    for (const [path, e] of this.embeddingList) base(path, e.weight);
    const head = this.layerList.find(([n]) => n === this.headPath || (n === LM_HEAD && this.tiedHead));
    if (head) base(head[0], head[1].weight);
    if (this.config.ensureWeightTying && this.tiedPath !== null) {
      const e = this.embeddingList.find(([n]) => n === this.tiedPath)?.[1];
      if (e) {
        out.set(loraKey('lm_head', 'lora_A'), { shape: [e.r, e.embeddingDim], target: null });
        out.set(loraKey('lm_head', 'lora_B'), { shape: [e.numEmbeddings, e.r], target: null });
      }
      const copy = this.modulesToSave?.copyOf(`${this.tiedPath}.weight`);
      if (copy) out.set(`${PEFT_KEY_PREFIX}lm_head.weight`, { shape: copy.shape, target: null });
    }
    return out;
  }

  /**
   * With ensure_weight_tying on a tied model, the entries PEFT also writes for the tied lm_head:
   * `lm_head.lora_A.weight` = lora_embedding_B^T and `lm_head.lora_B.weight` = lora_embedding_A^T
   * (fresh tensors, `owned`), and `lm_head.weight` = the modules_to_save copy of the table (live).
   */
  private tiedHeadTensors(): [string, Tensor, boolean][] {
    if (!this.config.ensureWeightTying || this.tiedPath === null) return [];
    const out: [string, Tensor, boolean][] = [];
    const e = this.embeddingList.find(([n]) => n === this.tiedPath)?.[1];
    if (e) {
      noGrad(() => {
        out.push([loraKey('lm_head', 'lora_A'), transpose(e.lora_embedding_B), true]);
        out.push([loraKey('lm_head', 'lora_B'), transpose(e.lora_embedding_A), true]);
      });
    }
    const copy = this.modulesToSave?.copyOf(`${this.tiedPath}.weight`);
    if (copy) out.push([`${PEFT_KEY_PREFIX}lm_head.weight`, copy, false]);
    return out;
  }

  private detach(merge: boolean): Module {
    this.check(merge ? 'merge and unload' : 'unload');
    if (merge) {
      this.checkTiedMerge('merge and unload', true);
      this.merge();
    } else {
      this.unmerge();
      // PiSSA / OLoRA rewrote W to the residual: give the base its W back
      for (const [, l] of this.layerList) l.restoreBaseWeight();
    }
    for (const [path, l] of this.layerList)
      if (l !== this.tiedHead) this.model.setSubmodule(path, l.toLinear());
    for (const [path, e] of this.embeddingList) this.model.setSubmodule(path, e.toEmbedding());
    if (isCausalLM(this.model) && this.headOverride && this.model.lmHeadOverride === this.headOverride)
      this.model.lmHeadOverride = null;
    restoreTrainable(this.trainableFlags);
    if (this.modulesToSave) {
      if (merge) this.modulesToSave.keep(this.trainableFlags);
      else this.modulesToSave.restore();
    }
    this.detached = true;
    return this.model;
  }

  /**
   * Put the original Linear layers back (unmerging first): the model is the base model again (after
   * a PiSSA / OLoRA init, W = residual + scaling B0 A0, the original up to rounding).
   */
  unload(): Module {
    return this.detach(false);
  }

  /** Merge, then put plain Linear layers back: a plain model holding W + scaling B A. */
  mergeAndUnload(): Module {
    return this.detach(true);
  }
}

const targetModulesOption = z.union([z.array(z.string()).min(1), z.string()]);

/** LoRA's options in training configs: PEFT's LoraConfig field names and defaults. */
export const loraOptions = z.object({
  r: z.number().int().positive().default(8).describe('LoRA rank'),
  lora_alpha: z.number().positive().default(8).describe('scaling numerator: scaling = lora_alpha / r'),
  lora_dropout: z.number().min(0).lt(1).default(0).describe('dropout on the LoRA input'),
  target_modules: targetModulesOption
    .nullable()
    .default(null)
    .describe(
      "names (suffix match), a full-match regex string, or 'all-linear'; null = PEFT's default for the model type (llama family: q_proj, v_proj; gpt2: c_attn). Linear / Conv1D modules, an Embedding (embed_tokens, wte) and lm_head may be named (on a tied model: the head alone over the shared table, or with ensure_weight_tying the embedding, as PEFT)",
    ),
  exclude_modules: targetModulesOption
    .nullable()
    .default(null)
    .describe('modules to skip even when targeted (same rules)'),
  use_rslora: z.boolean().default(false).describe('rank-stabilised scaling lora_alpha / sqrt(r)'),
  init_lora_weights: z
    .union([
      z.literal(true),
      z.literal('gaussian'),
      z.literal('pissa'),
      z.string().regex(/^pissa_niter_\d+$/, "'pissa_niter_N' with N a whole number"),
      z.literal('olora'),
      z.literal('corda'),
    ])
    .default(true)
    .describe(
      "true = A Kaiming-uniform (PEFT's default), 'gaussian' = A ~ N(0, 1/r^2), B = 0 for both; 'pissa' / 'pissa_niter_N' (top-r SVD, exact or randomized with N power iterations), 'olora' (QR) and 'corda' (SVD of W times the input covariance, see corda_config) start A and B from W and replace W by the residual W - scaling B A",
    ),
  kasa_config: z
    .object({
      beta: z
        .number()
        .min(0)
        .default(1e-4)
        .describe("weight of ||lambda||^2 per layer (PEFT's KasaConfig.beta)"),
      gamma: z
        .number()
        .min(0)
        .default(1e-3)
        .describe("weight of ||B^T B - I||_F + ||A A^T - I||_F per layer (PEFT's KasaConfig.gamma)"),
    })
    .strict()
    .nullable()
    .default(null)
    .describe(
      'KaSA: truncate each target W by its r smallest singular components, update B diag(lambda) A with a trainable lambda [r], plus the regulariser; null = off',
    ),
  corda_config: z
    .object({
      corda_method: z
        .enum(['ipm', 'kpm'])
        .default('ipm')
        .describe("PEFT's corda_method: 'ipm' adapts the top r components of W C, 'kpm' the bottom r"),
      data: z
        .string()
        .nullable()
        .default(null)
        .describe(
          "(Attune) calibration JSONL file (any data format); null = the run's training data (data.train)",
        )
        .meta({ path: true }),
      max_samples: z
        .number()
        .int()
        .positive()
        .default(256)
        .describe('(Attune) calibration examples used at most (the first ones of the file)'),
    })
    .strict()
    .nullable()
    .default(null)
    .describe("CorDA's settings for init_lora_weights 'corda' (null = the defaults); ignored by other inits"),
  rank_pattern: z
    .record(z.string(), z.number().int().positive())
    .default({})
    .describe(
      "PEFT's rank_pattern: module-name regex -> r for the modules it matches whole or as a '.'-suffix (first key that matches wins); e.g. {'q_proj': 16}",
    ),
  alpha_pattern: z
    .record(z.string(), z.number().positive())
    .default({})
    .describe("PEFT's alpha_pattern: module-name regex -> lora_alpha (same matching as rank_pattern)"),
  layers_to_transform: z
    .union([z.number().int().min(0), z.array(z.number().int().min(0))])
    .nullable()
    .default(null)
    .describe(
      'adapt only these layer indices (the number after the layer list component in the module name); list target_modules only; null = every layer',
    ),
  layers_pattern: z
    .union([z.string(), z.array(z.string())])
    .nullable()
    .default(null)
    .describe(
      "name(s) of the layer list component, e.g. 'layers' or 'h', used with layers_to_transform; null = any",
    ),
  lora_bias: z
    .boolean()
    .default(false)
    .describe(
      "PEFT's lora_bias: a trainable bias b on lora_B (zero at the start), update scaling * (B A x + b); merging adds scaling * b to the base bias (layers without a bias cannot be merged). Only with init_lora_weights true, not with DoRA",
    ),
  use_dora: z
    .boolean()
    .default(false)
    .describe(
      'DoRA: a trainable magnitude per output feature, output (m / ||W + scaling B A||) (W + scaling B A) x',
    ),
  modules_to_save: z
    .array(z.string().min(1))
    .nullable()
    .default(null)
    .describe(
      "PEFT's modules_to_save: modules trained whole next to the adapter (a trainable copy), matched by name suffix, e.g. ['lm_head'] or ['embed_tokens']; saved as base_model.model.<module>.weight; null = none",
    ),
  ensure_weight_tying: z
    .boolean()
    .default(false)
    .describe(
      "PEFT's ensure_weight_tying: on a model whose LM head is tied to the token embedding, a LoRA or modules_to_save on the embedding applies to the head too (false, PEFT's default: the input side only, and the adapter cannot be merged)",
    ),
  lora_b_weight_decay: z
    .number()
    .min(0)
    .nullable()
    .default(null)
    .describe(
      "(Attune) weight decay of the lora_B matrices only (and lora_embedding_B of adapted embeddings), overriding the optimizer's weight_decay for them (STAR's calibration constraint: 0.5); null = the optimizer's for every matrix",
    ),
});

/** The 'lora' tuner (peft_type "LORA"). */
export const loraTuner: Tuner<LoraConfig> = {
  name: 'lora',
  description: 'LoRA / rsLoRA: trainable low-rank B A next to frozen weights (PEFT files)',
  peftType: 'LORA',
  freezesBaseMatrices: true,
  options: loraOptions,
  fromOptions(options, context): LoraConfig {
    const o = loraOptions.parse(options);
    return {
      r: o.r,
      loraAlpha: o.lora_alpha,
      loraDropout: o.lora_dropout,
      targetModules: o.target_modules ?? undefined,
      excludeModules: o.exclude_modules,
      useRslora: o.use_rslora,
      init: o.init_lora_weights === true ? 'kaiming' : (o.init_lora_weights as LoraInit),
      useDora: o.use_dora,
      kasa: o.kasa_config ? { beta: o.kasa_config.beta, gamma: o.kasa_config.gamma } : null,
      corda: o.init_lora_weights === 'corda' ? cordaFromOptions(o.corda_config, context) : null,
      seed: context.seed,
      rankPattern: o.rank_pattern,
      alphaPattern: o.alpha_pattern,
      layersToTransform: o.layers_to_transform,
      layersPattern: o.layers_pattern,
      loraBias: o.lora_bias,
      loraBWeightDecay: o.lora_b_weight_decay,
      modulesToSave: o.modules_to_save,
      ensureWeightTying: o.ensure_weight_tying,
    };
  },
  apply(model: Module, config: LoraConfig): LoraAdapter {
    const resolved = resolveLoraConfig(config, defaultLoraTargets(model));
    const tiedPath = tiedEmbeddingPath(model);
    // a tied model's 'lm_head' entries as PEFT reads them (lora-tied.ts)
    const plan = tiedPath !== null ? tiedHeadPlan(resolved, tiedPath) : null;
    const c: ResolvedLoraConfig = plan
      ? { ...resolved, targetModules: plan.targetModules, modulesToSave: plan.modulesToSave }
      : resolved;
    const selectTargets = plan ? plan.selectTargets : c.targetModules;
    const selection: SelectedTargets<Linear | Conv1D | Embedding> =
      selectTargets === null
        ? { modules: [], saved: savedTargets(c.targetModules) }
        : selectTargetModules<Linear | Conv1D | Embedding>(model, selectTargets, {
            exclude: c.excludeModules,
            method: 'lora',
            supported: [Linear, Conv1D, Embedding],
            layersToTransform: c.layersToTransform,
            layersPattern: c.layersPattern,
            allowNoMatch: plan?.headOnly ?? false,
          });
    const selected = selection.modules;
    // the tied head-only case saves target_modules as given ('lm_head' included), as PEFT does
    const saved = plan?.headOnly ? savedTargets(c.targetModules) : selection.saved;
    const embeddings = selected.filter((e): e is [string, Embedding] => e[1] instanceof Embedding);
    const modules = selected.filter((e): e is [string, Linear | Conv1D] => !(e[1] instanceof Embedding));
    const settings = new Map(selected.map(([name]) => [name, loraModuleSettings(c, name)]));
    const heads = outputLayerNames(model);
    const head = modules.find(([name]) => heads.has(name)) ?? null;
    for (const [name] of [...embeddings, ...(head ? [head] : [])])
      refuseVariantOn(c, name, head !== null && name === head[0] ? 'the LM head' : 'the Embedding');
    if (plan?.headOnly) refuseVariantOn(c, LM_HEAD, 'the tied LM head');
    if ((head || plan?.headOnly) && isCausalLM(model) && model.lmHeadOverride)
      throw new ConfigError(
        `lora: the LM head of the model is already adapted; merge and unload that adapter first`,
      );
    const savePaths = c.modulesToSave ? selectModulesToSave(model, c.modulesToSave) : [];
    for (const p of savePaths) {
      const overlap = selected.find(([n]) => n === p || n.startsWith(`${p}.`) || p.startsWith(`${n}.`));
      if (overlap)
        throw new ConfigError(
          `lora: '${p}' is both in modules_to_save and adapted by target_modules ('${overlap[0]}'); list it in one of them`,
        );
    }
    const tiedByLora = tiedPath !== null && embeddings.some(([n]) => n === tiedPath);
    const tiedBySave = tiedPath !== null && savePaths.includes(tiedPath);
    if (isMutatingInit(c.init)) {
      // checked for every target before any base weight is rewritten
      for (const [name, layer] of modules) {
        if (c.init === 'olora' && layer instanceof Conv1D) {
          throw new ConfigError(
            `lora: init_lora_weights 'olora' does not support the Conv1D (fan_in_fan_out) layer '${name}': PEFT's olora_init decomposes the stored [in, out] weight; use 'pissa'`,
          );
        }
        const r = settings.get(name)!.r;
        if (r > Math.min(layer.inFeatures, layer.outFeatures)) {
          throw new ConfigError(
            `lora: init_lora_weights '${c.init}' needs r <= min(in, out) = ${Math.min(layer.inFeatures, layer.outFeatures)} for '${name}', found r = ${r}`,
          );
        }
        if (layer.weight.dtype === 'i32')
          throw new ConfigError(`lora: init_lora_weights '${c.init}' needs a float weight in '${name}'`);
        if (c.init === 'corda' && !(layer instanceof Linear)) {
          throw new ConfigError(
            `lora: init_lora_weights 'corda' supports Linear layers only (PEFT's CorDA targets nn.Linear), not the Conv1D '${name}'`,
          );
        }
      }
    }
    if (c.kasa) {
      for (const [name, layer] of modules) {
        if (!(layer instanceof Linear))
          throw new ConfigError(`lora: KaSA supports Linear layers only, not the Conv1D '${name}'`);
        const k = Math.min(layer.inFeatures, layer.outFeatures);
        const r = settings.get(name)!.r;
        if (r >= k)
          throw new ConfigError(`lora: KaSA requires r < min(in, out) = ${k} for '${name}', found r = ${r}`);
      }
    }
    const cordaEigens = c.init === 'corda' ? cordaEigensFor(model, modules as [string, Linear][], c) : null;
    const rng = new Rng(c.seed);
    const embeddingLayers = embeddings.map(([name, table]): [string, LoraEmbedding] => [
      name,
      new LoraEmbedding(table, { r: settings.get(name)!.r, scaling: settings.get(name)!.scaling, rng }),
    ]);
    const layers = modules.map(([name, linear]): [string, LoraLinear] => [
      name,
      new LoraLinear(linear, {
        r: settings.get(name)!.r,
        scaling: settings.get(name)!.scaling,
        dropout: c.loraDropout,
        init: c.init,
        useDora: c.useDora,
        kasa: c.kasa !== null,
        cordaEigens: cordaEigens?.get(name),
        loraBias: c.loraBias,
        rng,
      }),
    ]);
    const table = tiedPath !== null ? (model.getSubmodule(tiedPath) as Embedding).weight : null;
    const tiedHead = plan?.headOnly
      ? tiedHeadLayer(table!, {
          r: loraModuleSettings(c, LM_HEAD).r,
          scaling: loraModuleSettings(c, LM_HEAD).scaling,
          dropout: c.loraDropout,
          init: c.init,
          rng,
        })
      : null;
    if (tiedHead) layers.push([LM_HEAD, tiedHead]);
    const flags = snapshotTrainable(model);
    const originalTable = tiedBySave ? table : null;
    model.freeze();
    for (const [name, layer] of layers) if (layer !== tiedHead) model.setSubmodule(name, layer);
    for (const [name, layer] of embeddingLayers) model.setSubmodule(name, layer);
    const toSave = savePaths.length > 0 ? new ModulesToSave(model, savePaths) : null;
    let headOverride: LmHeadOverride | null = null;
    if (isCausalLM(model)) {
      const headLayer = head ? layers.find(([n]) => n === head[0])! : null;
      if (headLayer) headOverride = loraLinearHead(headLayer[0], headLayer[1]);
      else if (tiedHead) headOverride = tiedLoraLinearHead(model, tiedHead);
      else if (tiedByLora && c.ensureWeightTying)
        headOverride = tiedLoraEmbeddingHead(model, embeddingLayers.find(([n]) => n === tiedPath)![1]);
      else if (tiedBySave && !c.ensureWeightTying) headOverride = fixedHead(model, originalTable!);
      if (headOverride) model.lmHeadOverride = headOverride;
    }
    return new LoraAdapter(model, c, saved, layers, flags, cordaEigens, {
      embeddings: embeddingLayers,
      modulesToSave: toSave,
      tiedPath: tiedByLora || tiedBySave || tiedHead ? tiedPath : null,
      headPath: head ? head[0] : null,
      headOverride,
      tiedHead,
    });
  },
  configFromAdapterJson: (json, file) =>
    loraConfigFromAdapterJson(json, file, { allowFanInFanOut: true, allowVariants: true }),
  variants: {
    dora: { use_dora: true },
    pissa: { init_lora_weights: 'pissa' },
    olora: { init_lora_weights: 'olora' },
    kasa: { kasa_config: {} },
    'corda-ipm': { init_lora_weights: 'corda', corda_config: { corda_method: 'ipm' } },
    'corda-kpm': { init_lora_weights: 'corda', corda_config: { corda_method: 'kpm' } },
  },
};

/**
 * The dotted name of the Embedding whose table the model's LM head applies (tie_word_embeddings),
 * or null for an untied model (or one that is not a CausalLM).
 */
function tiedEmbeddingPath(model: Module): string | null {
  if (!isCausalLM(model) || !model.config.tieWordEmbeddings) return null;
  const head = model.lmHeadWeight();
  for (const [name, m] of model.namedModules()) if (m instanceof Embedding && m.weight === head) return name;
  return null;
}

/** target_modules as adapter_config.json saves them (a regex string, or the list without repeats). */
function savedTargets(t: TargetModules): string | string[] {
  return typeof t === 'string' ? t : [...new Set(t)];
}

/** Refuse LoRA variants Attune does not run on an Embedding or the LM head (PEFT refuses lora_bias on embeddings too). */
function refuseVariantOn(c: ResolvedLoraConfig, name: string, what: string): void {
  const variant = c.useDora
    ? 'use_dora'
    : c.kasa
      ? 'kasa_config'
      : c.loraBias
        ? 'lora_bias'
        : isMutatingInit(c.init)
          ? `init_lora_weights '${c.init}'`
          : null;
  if (variant !== null)
    throw new ConfigError(
      `lora: ${variant} is not supported on ${what} '${name}' (plain LoRA only there); leave '${name}' out of target_modules or drop ${variant}`,
    );
}

/** CorDA settings from the validated `corda_config` option; calibration is read from the run's context. */
function cordaFromOptions(
  option: { corda_method: CordaMethod; data: string | null; max_samples: number } | null,
  context: { calibrationData?: (path: string | null) => CalibrationExample[] },
): CordaSettings {
  const o = option ?? {
    corda_method: DEFAULT_CORDA.method,
    data: DEFAULT_CORDA.data,
    max_samples: DEFAULT_CORDA.maxSamples,
  };
  return {
    method: o.corda_method,
    data: o.data,
    maxSamples: o.max_samples,
    calibration: () => {
      if (!context.calibrationData) {
        throw new ConfigError(
          "lora: init_lora_weights 'corda' needs calibration data, which only a training run provides (corda_config.data, or data.train when it is null)",
        );
      }
      return context.calibrationData(o.data);
    },
  };
}

/**
 * Every target's CorDA triplets, all computed (or checked) before any weight is rewritten: the
 * saved ones when the config carries them, else from covariances on the calibration examples.
 */
function cordaEigensFor(
  model: Module,
  modules: [string, Linear][],
  c: ResolvedLoraConfig,
): Map<string, CordaEigens> {
  const corda = c.corda!;
  if (corda.eigens) {
    const out = new Map<string, CordaEigens>();
    for (const [name, layer] of modules) {
      const e = corda.eigens.get(name);
      const ok =
        e &&
        e.s.length === c.r &&
        e.u.rows === layer.outFeatures &&
        e.u.cols === c.r &&
        e.v.rows === layer.inFeatures &&
        e.v.cols === c.r;
      if (!ok) {
        throw new ConfigError(
          `lora: corda: ${e ? `the saved triplets of '${name}' do not fit r = ${c.r} and its ${layer.outFeatures} x ${layer.inFeatures} weight` : `no saved triplets for '${name}'`}`,
        );
      }
      out.set(name, e);
    }
    return out;
  }
  if (!corda.calibration) {
    throw new ConfigError(
      "lora: init_lora_weights 'corda' needs calibration data (corda.calibration) or saved triplets (corda.eigens)",
    );
  }
  const examples = corda.calibration().slice(0, corda.maxSamples);
  return computeCordaEigens(model, modules, examples, c.r, corda.method);
}

registerTuner('lora', loraTuner);

/** Apply LoRA to `model` (the 'lora' tuner, typed): freezes the base, wraps the targets. */
export function applyLora(model: Module, config: LoraConfig = {}): LoraAdapter {
  return loraTuner.apply(model, config) as LoraAdapter;
}

/** The n x n identity as a constant tensor of `dtype`. */
function identity(n: number, dtype: Tensor['dtype']): Tensor {
  const values = new Float64Array(n * n);
  for (let i = 0; i < n; i++) values[i * n + i] = 1;
  return fromArray(values, [n, n], { dtype: dtype === 'f64' ? 'f64' : 'f32' });
}
