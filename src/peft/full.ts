/**
 * Full fine-tuning, registered as the tuner 'full': every parameter is trained. There is no
 * separate update to merge (merge / unmerge are no-ops, `merged` is always false) and the state is
 * every parameter under its Hub name. `save` writes an adapter directory like every tuner's:
 * `adapter_config.json` with `peft_type: "FULL"` (Attune's; PEFT has no such type) and
 * `adapter_model.safetensors` holding every parameter as `base_model.model.<Hub name>`, so
 * `loadAdapter` and `attune export --merge` treat it like any adapter. The trainer also writes the
 * whole model as a Hub directory (`writesMergedModel`), which is what most users want from a full
 * fine-tune. Trainable weights must be f32 (or f64): a bf16 model is refused.
 */
import { existsSync, mkdirSync } from 'node:fs';
import { join } from 'node:path';
import { z } from 'zod';
import { ConfigError, FormatError, TensorMismatchError } from '../errors.ts';
import { type JsonObject, openSafetensors, writeJsonAtomic, writeSafetensors } from '../io/index.ts';
import { CausalLM, loadWeights } from '../models/index.ts';
import type { Module, Parameter } from '../nn/index.ts';
import { formatShape, type Tensor } from '../tensor/index.ts';
import {
  ADAPTER_CONFIG_FILE,
  ADAPTER_WEIGHTS_FILE,
  type Adapter,
  PEFT_KEY_PREFIX,
  registerTuner,
  restoreTrainable,
  type SaveAdapterOptions,
  snapshotTrainable,
  type Tuner,
} from './tuner.ts';

/** The peft_type of full fine-tuning adapter directories (Attune's own). */
export const FULL_PEFT_TYPE = 'FULL';

/** Full fine-tuning takes no options. */
export type FullConfig = Record<string, never>;

function causalLm(model: Module, action: string): CausalLM {
  if (!(model instanceof CausalLM)) {
    throw new ConfigError(
      `full: cannot ${action} a ${model.constructor.name}: only model-directory architectures can be saved`,
    );
  }
  return model;
}

/** Every parameter of the model trained; see the file comment. */
export class FullAdapter implements Adapter {
  readonly method = 'full';
  readonly merged = false;
  private detached = false;

  /** Use the 'full' tuner (`getTuner('full').apply`) rather than this constructor. */
  constructor(
    readonly model: Module,
    private readonly trainableFlags: ReadonlyMap<Parameter, boolean>,
  ) {}

  private check(action: string): void {
    if (this.detached)
      throw new ConfigError(`full: cannot ${action}: the adapter was unloaded from the model`);
  }

  /** Every parameter that requires grad, with its Hub name. */
  namedTrainableParameters(): [string, Parameter][] {
    return this.model.namedTrainableParameters();
  }

  /** Every parameter that requires grad. */
  trainableParameters(): Parameter[] {
    return this.model.trainableParameters();
  }

  /** Every parameter under its Hub name (tied parameters once); live tensors. */
  state(): Map<string, Tensor> {
    return new Map(this.model.namedParameters());
  }

  /** No-op: the weights are the model's own. */
  merge(): void {}

  /** No-op. */
  unmerge(): void {}

  /** Write adapter_model.safetensors (every parameter, `base_model.model.<name>`), then adapter_config.json. */
  save(dir: string, options: SaveAdapterOptions = {}): void {
    this.check('save');
    mkdirSync(dir, { recursive: true });
    const tensors = new Map<string, Tensor>();
    for (const [name, p] of this.model.namedParameters()) {
      if (p.dtype === 'f64')
        throw new ConfigError(`full: '${name}' is f64; convert the model to f32 before saving`);
      tensors.set(`${PEFT_KEY_PREFIX}${name}`, p);
    }
    writeSafetensors(join(dir, ADAPTER_WEIGHTS_FILE), tensors, { format: 'pt' });
    const json: JsonObject = {
      base_model_name_or_path: options.baseModelNameOrPath ?? null,
      peft_type: FULL_PEFT_TYPE,
      task_type: 'CAUSAL_LM',
    };
    writeJsonAtomic(join(dir, ADAPTER_CONFIG_FILE), json);
  }

  /**
   * Read weights into the model: from an adapter directory written by `save`, or from a Hub model
   * directory. Every name and shape is checked before anything is copied.
   */
  load(dir: string): void {
    this.check('load');
    const file = join(dir, ADAPTER_WEIGHTS_FILE);
    if (!existsSync(file)) {
      loadWeights(causalLm(this.model, 'load into'), dir);
      return;
    }
    const reader = openSafetensors(file);
    try {
      const params = this.model.namedParameters();
      const problems: string[] = [];
      for (const [name, p] of params) {
        const key = `${PEFT_KEY_PREFIX}${name}`;
        if (!reader.has(key)) problems.push(`missing tensor '${key}'`);
        else if (reader.info(key).shape.join() !== p.shape.join())
          problems.push(
            `tensor '${key}' has shape ${formatShape(reader.info(key).shape)}, expected ${formatShape(p.shape)}`,
          );
      }
      const known = new Set(params.map(([n]) => `${PEFT_KEY_PREFIX}${n}`));
      const extra = reader.names().filter((n) => !known.has(n));
      if (extra.length > 0) problems.push(`unexpected tensor(s) ${extra.slice(0, 5).join(', ')}`);
      if (problems.length > 0)
        throw new TensorMismatchError(`${file}: ${problems.slice(0, 5).join('; ')}; nothing was loaded`);
      for (const [name, p] of params) {
        const t = reader.read(`${PEFT_KEY_PREFIX}${name}`, { dtype: p.dtype === 'bf16' ? 'bf16' : 'f32' });
        (p as Parameter).copyFrom(t, true);
        t.release();
      }
    } finally {
      reader.close();
    }
  }

  /** Restore the trainable flags the model had before; the weights stay as trained. */
  unload(): Module {
    this.check('unload');
    restoreTrainable(this.trainableFlags);
    this.detached = true;
    return this.model;
  }

  /** Same as `unload` (there is nothing to merge). */
  mergeAndUnload(): Module {
    return this.unload();
  }
}

/** The 'full' tuner. */
export const fullTuner: Tuner<FullConfig | undefined> = {
  name: 'full',
  description: 'full fine-tuning: every parameter is trained',
  peftType: FULL_PEFT_TYPE,
  options: z.object({}),
  fromOptions: () => ({}),
  writesMergedModel: true,
  configFromAdapterJson(json, file) {
    if (json.peft_type !== FULL_PEFT_TYPE)
      throw new FormatError(file, `peft_type is ${JSON.stringify(json.peft_type)}, expected "FULL"`);
    return {};
  },
  apply(model: Module, config?: FullConfig): FullAdapter {
    if (config !== undefined && config !== null) {
      const keys = typeof config === 'object' ? Object.keys(config) : [String(config)];
      if (keys.length > 0)
        throw new ConfigError(`full: full fine-tuning takes no options, found ${keys.join(', ')}`);
    }
    const storage = model.namedParameters().filter(([, p]) => p.dtype !== 'f32' && p.dtype !== 'f64');
    if (storage.length > 0) {
      const [name, p] = storage[0]!;
      throw new ConfigError(
        `full: '${name}' is ${p.dtype}, which cannot be trained (${storage.length} such parameter(s)); load the model in f32 for full fine-tuning, or use LoRA on a ${p.dtype} base`,
      );
    }
    const flags = snapshotTrainable(model);
    model.unfreeze();
    return new FullAdapter(model, flags);
  },
};

registerTuner('full', fullTuner);
