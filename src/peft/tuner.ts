/**
 * The tuner interface and registry. A tuner is `{ apply(model, config) -> Adapter }`: it rewrites
 * a model's modules for one fine-tuning method and returns the Adapter that lists the trainable
 * parameters, gives the method's state under PEFT's names, merges it into the base weights and
 * back, saves and loads it, and removes it again. A new method is one new file that calls
 * `registerTuner` (and one import line in `index.ts`).
 *
 * Adapter directories follow PEFT: `adapter_config.json` (its `peft_type` names the method) and
 * `adapter_model.safetensors`. `loadAdapter(model, dir)` reads one onto a model, all or nothing.
 */
import { existsSync } from 'node:fs';
import { join } from 'node:path';
import type { z } from 'zod';
import { Registry } from '../config/registry.ts';
import { ConfigError, FormatError } from '../errors.ts';
import { type JsonObject, readJsonObject, type Tokenizer } from '../io/index.ts';
import type { Module, Parameter } from '../nn/index.ts';
import type { Tensor } from '../tensor/index.ts';

/** PEFT's adapter config file name. */
export const ADAPTER_CONFIG_FILE = 'adapter_config.json';
/** PEFT's adapter weights file name (safetensors serialisation). */
export const ADAPTER_WEIGHTS_FILE = 'adapter_model.safetensors';
/** Prefix PEFT puts before the base model's module paths in saved keys (PeftModel.base_model.model). */
export const PEFT_KEY_PREFIX = 'base_model.model.';

export interface SaveAdapterOptions {
  /** Written as `base_model_name_or_path` (the Hub id or directory of the base model; default null). */
  baseModelNameOrPath?: string | null;
}

/** A fine-tuning method applied to one model. */
export interface Adapter {
  /** The tuner's registry name ('lora', 'full', ...). */
  readonly method: string;
  /** The model this adapter was applied to (rewritten in place). */
  readonly model: Module;
  /** Whether the method's update is currently folded into the base weights. */
  readonly merged: boolean;
  /** What the optimizer updates. */
  trainableParameters(): Parameter[];
  /** What the optimizer updates, with the model's dotted names. */
  namedTrainableParameters(): [string, Parameter][];
  /** The method's tensors under the names its files use (PEFT's for PEFT methods); live, not copies. */
  state(): Map<string, Tensor>;
  /** Fold the update into the base weights (forward then uses the base path only). */
  merge(): void;
  /** Undo `merge()`. */
  unmerge(): void;
  /** Write the method's files into `dir` (created if needed; each file written atomically). */
  save(dir: string, options?: SaveAdapterOptions): void;
  /**
   * Read weights written by `save()` from `dir` into this adapter. Everything is validated first
   * (names, shapes, dtypes; errors name the file and the tensor); on error nothing is changed.
   */
  load(dir: string): void;
  /** Remove the method without merging: the model is the base model again. Returns it. */
  unload(): Module;
  /** Merge, then remove the method's modules: the model is a plain model with updated weights. */
  mergeAndUnload(): Module;
  /** Called by the trainer before step `step` (1-based) of `totalSteps`: e.g. HFT's stage switch. */
  beginStep?(step: number, totalSteps: number): void;
  /** Called after the step's backward pass, before clipping: e.g. sparse FT's gradient accumulation. */
  afterBackward?(step: number, totalSteps: number): void;
  /** Called after the optimizer update of `step`: e.g. sparse FT's drop and regrow. */
  afterStep?(step: number, totalSteps: number, optimizer: OptimizerAccess): void;
  /** Method state beyond the trainable tensors that exact resume needs (indices, accumulators); copies. */
  trainingState?(): Map<string, Tensor>;
  /** Restore what `trainingState` returned (validated first; on error nothing changes). */
  loadTrainingState?(state: ReadonlyMap<string, Tensor>): void;
  /**
   * A regulariser of the method's own parameters (KaSA's), added to the loss once per optimizer
   * step; absent or null when the method has none.
   */
  auxiliaryLoss?(): AuxiliaryLoss | null;
  /**
   * Method measurements after a step, logged with the step's metrics and kept as the bench row's
   * extras (GreenTrainer's FLOPs saved); absent when the method has none.
   */
  metrics?(): Record<string, number>;
  /**
   * Weight decays the method sets for some of its trainable parameters, overriding the optimizer's
   * (LoRA's lora_b_weight_decay: decay on lora_B only); absent or empty when it sets none.
   */
  weightDecayOverrides?(): ReadonlyMap<Parameter, number>;
}

/** What a tuner's `afterStep` hook may ask of the optimizer. */
export interface OptimizerAccess {
  /** Zero the optimizer's per-entry state of `param` at the flat `positions` (entries replaced by a tuner). */
  resetEntries(param: Tensor, positions: ArrayLike<number>): void;
}

/** A differentiable scalar a tuner adds to the training loss, with named parts for the log. */
export interface AuxiliaryLoss {
  /** The scalar (its backward reaches the tuner's trainable parameters). */
  value: Tensor;
  /** Its named values for the metrics log (e.g. kasa_reg). */
  parts: Record<string, number>;
}

/** One tokenized example of calibration data (what data-driven inits such as CorDA run the model on). */
export interface CalibrationExample {
  /** Token ids of the example. */
  inputIds: Int32Array;
  /** Aligned labels (-100 where not trained). */
  labels: Int32Array;
}

/** What a tuner's `fromOptions` knows about the run besides its own options. */
export interface TunerContext {
  /** The run's seed (train.seed): initialisations and dropout masks derive from it. */
  seed: number;
  /**
   * Tokenized calibration examples, read when called (during `apply`): from the JSONL file `path`,
   * or the run's training data (data.train) when `path` is null. Absent outside a training run.
   */
  calibrationData?: (path: string | null) => CalibrationExample[];
  /** Token ids of `text` by the run's tokenizer (special tokens included), read during `apply` (prompt tuning's text init). */
  tokenize?: (text: string) => number[];
  /** The run's optimizer steps (train.steps), for inits that scale by them (LoRA-SB). */
  steps?: number;
  /** The run's tokenizer, read during `apply` (a head fitted on the model's own decoded answers). */
  tokenizer?: Tokenizer;
  /** What the run's `model` field names (a directory or a preset), for provenance records. */
  modelPath?: string;
  /** The training data file (data.train), for provenance records. */
  trainFile?: string;
}

/** A fine-tuning method. `C` is its config (validated by `apply`). */
export interface Tuner<C = unknown> {
  /** The registry name. */
  readonly name: string;
  /** One line for --help and the docs. */
  readonly description: string;
  /**
   * Its options in training configs (`method: {name, ...options}`), with the field names of its
   * ecosystem (PEFT's LoraConfig for LoRA), a default and a description each.
   */
  readonly options: z.ZodObject;
  /** The config `apply` takes, from validated `options` (defaults filled in). */
  fromOptions(options: Record<string, unknown>, context: TunerContext): C;
  /**
   * Whether the trainer also writes the merged model as `output_dir/model` (full fine-tuning, whose
   * natural artefact is a whole model), next to `output_dir/adapter` which every tuner writes.
   */
  readonly writesMergedModel?: boolean;
  /**
   * Whether the method trains no matrix of the base model (LoRA and other adapters): then
   * `precision: bf16-mixed` reads the base in bf16 directly instead of converting it after `apply`,
   * so the f32 copy is never in memory. Default false (the safe path for any tuner).
   */
  readonly freezesBaseMatrices?: boolean;
  /**
   * Whether the method trains the model's own weights in place (full fine-tuning, layer_freeze,
   * hft) rather than added parameters: benches give it full fine-tuning's learning rate.
   */
  readonly inPlace?: boolean;
  /**
   * False for a method fitted on its own objective instead of the token loss (an uncertainty head
   * on a frozen model's graded answers): the trainer then runs no token forward/backward and each
   * step trains on the adapter's `auxiliaryLoss` alone. Default true.
   */
  readonly tokenLoss?: boolean;
  /**
   * The `peft_type` its adapter_config.json carries ('LORA'); null when `save` writes something
   * else (full fine-tuning writes a model directory).
   */
  readonly peftType: string | null;
  /**
   * Rewrite `model` for this method and return its Adapter. Validates the config and the targets
   * before touching the model: on error the model is unchanged.
   */
  apply(model: Module, config: C): Adapter;
  /** The config stored in an adapter_config.json object (`file` names it in errors). */
  configFromAdapterJson?(json: JsonObject, file: string): C;
  /**
   * Named variants of this method (variant name -> option overrides, e.g. lora's
   * `dora: {use_dora: true}`): `attune bench methods` runs each as its own row under its name.
   */
  readonly variants?: Record<string, Record<string, unknown>>;
}

/** Every fine-tuning method `method: {name, ...}` can name. */
export const tuners = new Registry<Tuner<unknown>>('fine-tuning method', 'method');

/** Register a tuner under `name` (replacing an earlier one of the same name). */
export function registerTuner<C>(name: string, tuner: Tuner<C>): void {
  if (tuner.name !== name)
    throw new ConfigError(`registerTuner('${name}'): the tuner calls itself '${tuner.name}'`);
  tuners.unregister(name);
  tuners.register(tuner as Tuner<unknown>);
}

/** Registered tuner names, sorted. */
export function tunerNames(): string[] {
  return tuners.names();
}

/**
 * Names of the fine-tuning methods proper, sorted: the tuners trained on the token loss (not the
 * ones fitted on an objective of their own, such as an uncertainty head); what benches run.
 */
export function fineTuningMethodNames(): string[] {
  return tuners.names().filter((n) => tuners.get(n).tokenLoss !== false);
}

/** The tuner registered under `name`; throws a ConfigError listing the known names. */
export function getTuner<C = unknown>(name: string): Tuner<C> {
  return tuners.get(name) as Tuner<C>;
}

/** The tuner whose adapter files carry `peftType`; throws naming `file` and the known types. */
export function getTunerByPeftType(peftType: string, file = ADAPTER_CONFIG_FILE): Tuner<unknown> {
  for (const tuner of tuners.list()) if (tuner.peftType === peftType) return tuner;
  const known = tuners.list().flatMap((t) => (t.peftType ? [t.peftType] : []));
  throw new FormatError(
    file,
    `peft_type '${peftType}' is not supported (supported: ${known.length > 0 ? known.sort().join(', ') : 'none registered: import src/peft/index.ts'})`,
  );
}

/** Apply the registered method `name` to `model` (shorthand for `getTuner(name).apply`). */
export function applyTuner(model: Module, name: string, config: unknown = {}): Adapter {
  return getTuner(name).apply(model, config);
}

/**
 * Load the adapter directory `dir` (adapter_config.json + adapter_model.safetensors, PEFT's layout)
 * onto `model`: the config's `peft_type` picks the tuner, which is applied and then given the
 * saved weights. All or nothing: on any error (unknown type, unsupported field, targets matching
 * nothing, a missing, unexpected or mis-shaped tensor) the model is left as it was.
 */
export function loadAdapter(model: Module, dir: string): Adapter {
  const file = join(dir, ADAPTER_CONFIG_FILE);
  if (!existsSync(file) && existsSync(join(dir, 'config.json'))) {
    throw new FormatError(
      file,
      'file not found: this is a model directory (config.json), not an adapter; load it as a model (full fine-tuning saves whole models)',
    );
  }
  const json = readJsonObject(file, 'a PEFT adapter config');
  const peftType = json.peft_type;
  if (typeof peftType !== 'string') {
    throw new FormatError(
      file,
      `'peft_type' must be a string such as "LORA", found ${JSON.stringify(peftType) ?? 'nothing'}`,
    );
  }
  const tuner = getTunerByPeftType(peftType, file);
  if (!tuner.configFromAdapterJson) {
    throw new FormatError(file, `the '${tuner.name}' tuner cannot read adapter configs`);
  }
  const config = tuner.configFromAdapterJson(json, file);
  let adapter: Adapter;
  try {
    adapter = tuner.apply(model, config);
  } catch (error) {
    // What the config asks for does not fit this model (or memory): name the file.
    if (error instanceof RangeError) throw new FormatError(file, `cannot be applied: ${error.message}`);
    if (error instanceof ConfigError) throw new ConfigError(`${file}: ${error.message}`);
    throw error;
  }
  try {
    adapter.load(dir);
  } catch (error) {
    adapter.unload();
    throw error;
  }
  return adapter;
}

/** Every parameter's `requiresGrad` flag, to restore after a tuner is removed. */
export function snapshotTrainable(model: Module): Map<Parameter, boolean> {
  return new Map(model.parameters().map((p) => [p, p.requiresGrad]));
}

/** Restore flags taken by `snapshotTrainable` (parameters added since are left alone). */
export function restoreTrainable(flags: ReadonlyMap<Parameter, boolean>): void {
  for (const [p, trainable] of flags) {
    if (trainable && !p.requiresGrad) p.unfreeze();
    else if (!trainable && p.requiresGrad) p.freeze();
  }
}
