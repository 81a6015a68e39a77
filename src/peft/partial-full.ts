/**
 * Selective fine-tuning's common adapter: a chosen subset of the model's own parameters is trained
 * in place and every other parameter is frozen (no gradient buffer, bit-identical). `layer_freeze`
 * and `hft` build one from their selection rule.
 *
 * Files (the "partial FULL" layout, docs/formats.md): `adapter_config.json` with the tuner's
 * `peft_type` (`LAYER_FREEZE`, `HFT`), `trained_parameters` (the Hub names saved) and the tuner's
 * options, and `adapter_model.safetensors` holding only those tensors, whole (not deltas), as
 * `base_model.model.<Hub name>` — FULL's layout restricted to the tensors that changed. Merging is
 * copying them over the base, which they already are in place (merge / unmerge are no-ops).
 */
import { existsSync, mkdirSync } from 'node:fs';
import { join } from 'node:path';
import { ConfigError, FormatError, TensorMismatchError } from '../errors.ts';
import { type JsonObject, openSafetensors, writeJsonAtomic, writeSafetensors } from '../io/index.ts';
import type { Module, Parameter } from '../nn/index.ts';
import { formatShape, type Tensor } from '../tensor/index.ts';
import {
  ADAPTER_CONFIG_FILE,
  ADAPTER_WEIGHTS_FILE,
  type Adapter,
  PEFT_KEY_PREFIX,
  restoreTrainable,
  type SaveAdapterOptions,
} from './tuner.ts';

/** Refuse parameters that cannot be trained in place (bf16 storage), naming the first. */
export function checkTrainableDtypes(method: string, model: Module, names: Iterable<string>): void {
  const byName = new Map(model.namedParameters());
  for (const n of names) {
    const p = byName.get(n);
    if (!p) throw new ConfigError(`${method}: the model has no parameter '${n}'`);
    if (p.dtype !== 'f32' && p.dtype !== 'f64')
      throw new ConfigError(
        `${method}: '${n}' is ${p.dtype}, which cannot be trained; load the model in f32 for ${method}`,
      );
  }
}

/** A subset of the model's parameters trained in place; see the file comment. */
export class PartialFullAdapter implements Adapter {
  readonly merged = false;
  private detached = false;
  /** Every parameter the run may train (all stages), by Hub name, in model order. */
  private readonly candidates: [string, Parameter][];

  /**
   * Use a tuner (`layer_freeze`, `hft`). `trained` lists every parameter that may train during the
   * run; `active` those trained now (default all of `trained`). The model is frozen except `active`.
   */
  constructor(
    readonly method: string,
    private readonly peftType: string,
    readonly model: Module,
    trained: ReadonlySet<string>,
    private readonly trainableFlags: ReadonlyMap<Parameter, boolean>,
    private readonly configJson: JsonObject,
    active: ReadonlySet<string> = trained,
  ) {
    this.candidates = model.namedParameters().filter(([n]) => trained.has(n));
    this.setActive(active);
  }

  private check(action: string): void {
    if (this.detached)
      throw new ConfigError(`${this.method}: cannot ${action}: the adapter was unloaded from the model`);
  }

  /** Train exactly the parameters named in `active` (a subset of the run's candidates); freeze the rest. */
  setActive(active: ReadonlySet<string>): void {
    for (const [n, p] of this.model.namedParameters()) {
      if (active.has(n)) {
        if (!p.requiresGrad) p.unfreeze();
      } else if (p.requiresGrad) p.freeze();
    }
  }

  /** Every parameter the run may train (for the optimizer and checkpoints), with its Hub name. */
  namedTrainableParameters(): [string, Parameter][] {
    return [...this.candidates];
  }

  /** Every parameter the run may train. */
  trainableParameters(): Parameter[] {
    return this.candidates.map(([, p]) => p);
  }

  /** The trained parameters under their Hub names; live tensors. */
  state(): Map<string, Tensor> {
    return new Map(this.candidates);
  }

  /** No-op: the trained weights are the model's own. */
  merge(): void {}

  /** No-op. */
  unmerge(): void {}

  /** Write adapter_model.safetensors (the trained tensors only), then adapter_config.json. */
  save(dir: string, options: SaveAdapterOptions = {}): void {
    this.check('save');
    const tensors = new Map<string, Tensor>();
    for (const [name, p] of this.candidates) {
      if (p.dtype === 'f64')
        throw new ConfigError(`${this.method}: '${name}' is f64; convert the model to f32 before saving`);
      tensors.set(`${PEFT_KEY_PREFIX}${name}`, p);
    }
    mkdirSync(dir, { recursive: true });
    writeSafetensors(join(dir, ADAPTER_WEIGHTS_FILE), tensors, { format: 'pt' });
    writeJsonAtomic(join(dir, ADAPTER_CONFIG_FILE), {
      base_model_name_or_path: options.baseModelNameOrPath ?? null,
      peft_type: this.peftType,
      task_type: 'CAUSAL_LM',
      ...this.configJson,
      trained_parameters: this.candidates.map(([n]) => n),
    });
  }

  /** Read the trained tensors written by `save`; every name and shape is checked before any copy. */
  load(dir: string): void {
    this.check('load');
    const file = join(dir, ADAPTER_WEIGHTS_FILE);
    if (!existsSync(file)) throw new FormatError(file, 'file not found');
    const reader = openSafetensors(file);
    try {
      const problems: string[] = [];
      for (const [name, p] of this.candidates) {
        const key = `${PEFT_KEY_PREFIX}${name}`;
        if (!reader.has(key)) problems.push(`missing tensor '${key}'`);
        else if (reader.info(key).shape.join() !== p.shape.join())
          problems.push(
            `tensor '${key}' has shape ${formatShape(reader.info(key).shape)}, expected ${formatShape(p.shape)}`,
          );
      }
      const known = new Set(this.candidates.map(([n]) => `${PEFT_KEY_PREFIX}${n}`));
      const extra = reader.names().filter((n) => !known.has(n));
      if (extra.length > 0) problems.push(`unexpected tensor(s) ${extra.slice(0, 5).join(', ')}`);
      if (problems.length > 0)
        throw new TensorMismatchError(`${file}: ${problems.slice(0, 5).join('; ')}; nothing was loaded`);
      for (const [name, p] of this.candidates) {
        const t = reader.read(`${PEFT_KEY_PREFIX}${name}`);
        p.copyFrom(t, true);
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

/** The `trained_parameters` list of an adapter_config.json (`file` names it in errors). */
export function trainedParametersFromJson(json: JsonObject, file: string): string[] {
  const list = json.trained_parameters;
  if (!Array.isArray(list) || list.some((n) => typeof n !== 'string'))
    throw new FormatError(file, "'trained_parameters' must be a list of parameter names");
  return list as string[];
}
