/**
 * The `model_type` registry: config.json's `model_type` picks an architecture, which parses the
 * config (errors name the field), builds the model, and says how its checkpoint is laid out (tied
 * names, buffers to ignore) and which config fields must agree with which tensor shapes.
 * `loadModel`, `createModel`, `buildModel`, `saveModel` and `checkSameArchitecture` go through it;
 * adding an architecture is one folder plus one `registerArchitecture` line in builtin.ts.
 */
import { ConfigError } from '../errors.ts';
import type { CausalLM, CausalLMConfig, ModelBuildOptions } from './causal-lm.ts';

/**
 * A config field that fixes a tensor's size: `tensor`'s axis `axis` must be `expected`.
 * `field` names the config field (or fields) in messages, `value` what it says.
 */
export interface ShapeCheck {
  field: string;
  value: string;
  tensor: string;
  axis: number;
  expected: number;
}

/** One architecture: config parser, constructor and checkpoint facts. */
export interface Architecture<C extends CausalLMConfig = CausalLMConfig> {
  /** The config.json `model_type` values it reads. */
  readonly modelTypes: readonly string[];
  /** Validate a config.json object (throws a ConfigError naming `where` and the field). */
  parseConfig(raw: Record<string, unknown>, where: string): C;
  /** A model of `config` (weights zero or randomly initialised, as `options.init` says). */
  build(config: C, options: ModelBuildOptions): CausalLM;
  /** Config fields (beyond modelType) that must agree for two checkpoints to be the same architecture. */
  readonly architectureFields: readonly (keyof C & string)[];
  /** Names a tied embedding matrix may be stored under; the first is the one Attune writes. */
  readonly tiedNames: readonly string[];
  /** Checkpoint tensors that are buffers the model does not use (e.g. rotary inv_freq). */
  readonly ignoredTensors: RegExp | null;
  /**
   * transformers' `base_model_prefix` plus '.', when a checkpoint saved from the bare base model
   * may hold the names without it (GPT-2 `wte.weight` for `transformer.wte.weight`).
   */
  readonly basePrefix: string | null;
  /** Name of layer `i`'s parameters' prefix, to count the layers a checkpoint holds. */
  layerPrefix(i: number): string;
  /** The config.json field that gives the number of layers (`num_hidden_layers`, GPT-2's `n_layer`). */
  readonly layerCountField: string;
  /** Config fields against the tensor sizes they imply (checked on load, one field per message). */
  shapeChecks(config: C): ShapeCheck[];
  /** PEFT's default LoRA `target_modules` for this model type. */
  readonly defaultLoraTargets: readonly string[];
}

const architectures = new Map<string, Architecture>();

/** Register `arch` under each of its model types (a type registered twice is an error). */
export function registerArchitecture<C extends CausalLMConfig>(arch: Architecture<C>): void {
  for (const type of arch.modelTypes) {
    if (architectures.has(type)) throw new ConfigError(`model_type '${type}' is already registered`);
    architectures.set(type, arch as unknown as Architecture);
  }
}

/** The model types that can be loaded, sorted. */
export function modelTypes(): string[] {
  return [...architectures.keys()].sort();
}

/** The architecture of a config.json object (throws naming `where` for an unknown model_type). */
export function architectureOf(raw: Record<string, unknown>, where = 'config.json'): Architecture {
  const type = raw.model_type;
  const arch = typeof type === 'string' ? architectures.get(type) : undefined;
  if (!arch) {
    throw new ConfigError(
      `${where}: 'model_type' = ${JSON.stringify(type)} is not supported (supported: ${modelTypes().join(', ')})`,
    );
  }
  return arch;
}

/** The architecture registered for `modelType` (throws for an unknown one). */
export function architectureFor(modelType: string): Architecture {
  return architectureOf({ model_type: modelType }, 'model');
}

/** Parse a config.json object with its architecture's parser. */
export function parseModelConfig(raw: Record<string, unknown>, where = 'config.json'): CausalLMConfig {
  return architectureOf(raw, where).parseConfig(raw, where);
}
