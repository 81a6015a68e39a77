/**
 * Full fine-tuning, registered as the tuner 'full': every parameter is trained. There is no
 * separate update to merge (merge / unmerge are no-ops, `merged` is always false), the state is
 * every parameter under its Hub name, and `save` writes a whole Hub-format model directory with
 * `saveModel` (config.json, generation_config.json, model.safetensors; tokenizer files are the
 * caller's to copy, e.g. with `copyTokenizerFiles`). Such a directory is loaded as a model, not with
 * `loadAdapter`. Trainable weights must be f32 (or f64): a bf16 model is refused.
 */
import { ConfigError } from '../errors.ts';
import { CausalLM, loadWeights, saveModel } from '../models/index.ts';
import type { Module, Parameter } from '../nn/index.ts';
import type { Tensor } from '../tensor/index.ts';
import { type Adapter, registerTuner, restoreTrainable, snapshotTrainable, type Tuner } from './tuner.ts';

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

  /** Write the whole model as a Hub-format directory (`saveModel`). */
  save(dir: string): void {
    this.check('save');
    saveModel(causalLm(this.model, 'save'), dir);
  }

  /** Read a model directory's weights into the model (validated before copying). */
  load(dir: string): void {
    this.check('load');
    loadWeights(causalLm(this.model, 'load into'), dir);
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
  peftType: null,
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
