/**
 * What prompt tuning and prefix tuning share (PEFT's "prompt learning" methods): an encoder of n
 * virtual tokens set as the model's `sequencePrefix` (models/sequence-prefix.ts), one saved tensor
 * `prompt_embeddings` (no `base_model.model.` prefix: PEFT saves the prompt encoder's output, not a
 * module of the model), and PEFT's PromptLearningConfig fields in adapter_config.json
 * (num_virtual_tokens, token_dim, num_transformer_submodules = 1 for CAUSAL_LM,
 * num_attention_heads, num_layers). The base model is untouched and frozen; nothing merges into
 * its weights, so merge() refuses.
 */
import { existsSync, mkdirSync } from 'node:fs';
import { join } from 'node:path';
import { ConfigError, FormatError, TensorMismatchError } from '../errors.ts';
import { type JsonObject, openSafetensors, writeJsonAtomic, writeSafetensors } from '../io/index.ts';
import { type CausalLM, isCausalLM, type SequencePrefix } from '../models/index.ts';
import type { Module, Parameter } from '../nn/index.ts';
import { formatShape, type Tensor } from '../tensor/index.ts';
import {
  ADAPTER_CONFIG_FILE,
  ADAPTER_WEIGHTS_FILE,
  type Adapter,
  restoreTrainable,
  type SaveAdapterOptions,
  snapshotTrainable,
} from './tuner.ts';

/** PEFT's key of the saved virtual tokens. */
export const PROMPT_EMBEDDINGS_KEY = 'prompt_embeddings';

/** A prompt-learning method's encoder: the model's prefix, its parameters and its saved form. */
export interface PromptEncoder extends SequencePrefix {
  /** Trainable parameters with their names. */
  namedParameters(): [string, Parameter][];
  /** The tensor PEFT saves as `prompt_embeddings` (the encoder's output, e.g. the projected prefix). */
  savedEmbeddings(): Tensor;
  /** Shape `prompt_embeddings` must have to load. */
  savedShape(): number[];
  /** Set the encoder from a loaded `prompt_embeddings` (shape already checked). */
  loadEmbeddings(t: Tensor): void;
}

/** The model as a CausalLM, or a ConfigError naming the method. */
export function causalLMOf(model: Module, method: string): CausalLM {
  if (!isCausalLM(model)) throw new ConfigError(`${method}: needs a causal language model from models/`);
  if (model.sequencePrefix)
    throw new ConfigError(
      `${method}: the model already has virtual tokens (one prompt-learning adapter at a time)`,
    );
  return model;
}

/** `json[field]` as a positive integer (or `fallback` when absent), else a FormatError naming `file`. */
export function positiveInt(json: JsonObject, field: string, file: string, fallback?: number): number {
  const v = json[field] ?? fallback;
  if (typeof v !== 'number' || !Number.isInteger(v) || v <= 0)
    throw new FormatError(file, `'${field}' must be a positive integer, found ${JSON.stringify(v ?? null)}`);
  return v;
}

/** Check PEFT's shape fields of a saved config against `model` (they must describe this model). */
export function checkModelFields(json: JsonObject, file: string, expected: Record<string, number>): void {
  if (json.task_type !== undefined && json.task_type !== null && json.task_type !== 'CAUSAL_LM')
    throw new FormatError(file, `'task_type' must be "CAUSAL_LM", found ${JSON.stringify(json.task_type)}`);
  for (const [field, want] of Object.entries(expected)) {
    const v = json[field];
    if (v === undefined || v === null) continue;
    if (v !== want)
      throw new FormatError(file, `'${field}' is ${JSON.stringify(v)} but this model needs ${want}`);
  }
}

/** The adapter of a prompt-learning method (see the file comment). */
export class PromptLearningAdapter implements Adapter {
  private detached = false;
  private readonly flags: ReadonlyMap<Parameter, boolean>;

  /** Freeze `model`, set `encoder` as its prefix. `fields` are the method's adapter_config.json fields. */
  constructor(
    readonly method: string,
    private readonly peftType: string,
    readonly model: CausalLM,
    readonly encoder: PromptEncoder,
    private readonly fields: JsonObject,
  ) {
    this.flags = snapshotTrainable(model);
    model.freeze();
    model.sequencePrefix = encoder;
  }

  get merged(): boolean {
    return false;
  }

  private check(action: string): void {
    if (this.detached) throw new ConfigError(`${this.method}: cannot ${action}: the adapter was unloaded`);
  }

  namedTrainableParameters(): [string, Parameter][] {
    return this.encoder.namedParameters();
  }

  trainableParameters(): Parameter[] {
    return this.encoder.namedParameters().map(([, p]) => p);
  }

  /** `prompt_embeddings` as saved (computed when the encoder projects). */
  state(): Map<string, Tensor> {
    return new Map([[PROMPT_EMBEDDINGS_KEY, this.encoder.savedEmbeddings()]]);
  }

  /** Refused: virtual tokens are extra inputs, not a change of the weights. */
  merge(): void {
    throw new ConfigError(
      `${this.method}: virtual tokens cannot be merged into the base weights (PEFT defines no merge for prompt learning); use the adapter unmerged (attune export --format peft, or load it with --adapter)`,
    );
  }

  /** Nothing to undo (never merged). */
  unmerge(): void {
    this.check('unmerge');
  }

  /** The adapter_config.json object (keys sorted). */
  adapterConfigJson(options: SaveAdapterOptions = {}): JsonObject {
    const json: JsonObject = {
      auto_mapping: null,
      base_model_name_or_path: options.baseModelNameOrPath ?? null,
      inference_mode: true,
      modules_to_save: null,
      num_transformer_submodules: 1,
      peft_type: this.peftType,
      revision: null,
      task_type: 'CAUSAL_LM',
      ...this.fields,
    };
    return Object.fromEntries(Object.entries(json).sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0)));
  }

  /** adapter_model.safetensors, then adapter_config.json, each atomically. */
  save(dir: string, options: SaveAdapterOptions = {}): void {
    this.check('save');
    mkdirSync(dir, { recursive: true });
    const state = this.state();
    writeSafetensors(join(dir, ADAPTER_WEIGHTS_FILE), state, { format: 'pt' });
    writeJsonAtomic(join(dir, ADAPTER_CONFIG_FILE), this.adapterConfigJson(options));
  }

  /** Read `prompt_embeddings` (name and shape checked first; on error nothing changes). */
  load(dir: string): void {
    this.check('load');
    const file = join(dir, ADAPTER_WEIGHTS_FILE);
    if (!existsSync(file)) throw new FormatError(file, 'file not found');
    const reader = openSafetensors(file);
    let t: Tensor;
    try {
      const shape = this.encoder.savedShape();
      const unexpected = reader.names().filter((n) => n !== PROMPT_EMBEDDINGS_KEY);
      if (!reader.has(PROMPT_EMBEDDINGS_KEY))
        throw new TensorMismatchError(
          `${file}: missing tensor '${PROMPT_EMBEDDINGS_KEY}'; nothing was loaded`,
        );
      if (unexpected.length > 0)
        throw new TensorMismatchError(
          `${file}: unexpected tensor(s) ${unexpected.slice(0, 5).join(', ')} (a ${this.peftType} adapter holds '${PROMPT_EMBEDDINGS_KEY}' only); nothing was loaded`,
        );
      const found = reader.info(PROMPT_EMBEDDINGS_KEY).shape;
      if (found.length !== shape.length || found.some((d, i) => d !== shape[i]))
        throw new TensorMismatchError(
          `${file}: tensor '${PROMPT_EMBEDDINGS_KEY}' has shape ${formatShape(found)}, expected ${formatShape(shape)}; nothing was loaded`,
        );
      t = reader.read(PROMPT_EMBEDDINGS_KEY);
    } finally {
      reader.close();
    }
    this.encoder.loadEmbeddings(t);
    t.release();
  }

  /** Take the prefix off the model and restore its trainable flags. */
  unload(): Module {
    this.check('unload');
    this.model.sequencePrefix = null;
    restoreTrainable(this.flags);
    this.detached = true;
    return this.model;
  }

  /** Refused like merge(): there is nothing to fold in. */
  mergeAndUnload(): Module {
    this.merge();
    return this.model;
  }
}
