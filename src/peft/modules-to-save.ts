/**
 * PEFT's `modules_to_save`: modules trained whole next to an adapter (typically `lm_head` or
 * `embed_tokens`). As PEFT's ModulesToSaveWrapper, the model runs a trainable copy of each listed
 * module and the original is kept, frozen, to be put back by `unload`.
 *
 * Here the copy is made parameter by parameter: each Parameter of the module is replaced (under
 * its own Hub name) by an f32 (or f64) copy that requires grad, so the model's forward, the fused
 * LM head and the optimizer see the copy with no wrapper module. Saved keys are PEFT's after it
 * strips `modules_to_save.<adapter name>.`: `base_model.model.<module path>.<param>` (e.g.
 * `base_model.model.lm_head.weight`). Matching is PEFT's (`_set_trainable`): a module whose
 * dotted name ends with an entry (plain string suffix); modules inside a matched one are not
 * matched again.
 */
import { ConfigError } from '../errors.ts';
import { type Module, Parameter } from '../nn/index.ts';
import { readElement, type Tensor } from '../tensor/index.ts';
import { PEFT_KEY_PREFIX } from './tuner.ts';

/** One parameter of a module to save: its Hub name, the frozen original and the trained copy. */
export interface SavedParameter {
  /** Dotted Hub name (`lm_head.weight`). */
  name: string;
  original: Parameter;
  copy: Parameter;
}

/** Dotted names of the modules `names` selects in `model` (PEFT's suffix rule), outermost only, in tree order. */
export function selectModulesToSave(model: Module, names: readonly string[], method = 'lora'): string[] {
  const out: string[] = [];
  const hits = new Set<string>();
  for (const [path] of model.namedModules()) {
    if (path === '') continue;
    if (out.some((p) => path.startsWith(`${p}.`))) continue;
    const entry = names.find((n) => path.endsWith(n));
    if (entry === undefined) continue;
    out.push(path);
    hits.add(entry);
  }
  const missing = names.filter((n) => !hits.has(n) && !out.some((p) => p.endsWith(n)));
  if (missing.length > 0) {
    throw new ConfigError(
      `${method}: modules_to_save entry '${missing[0]}' matched no module of the model (a module is matched when its dotted name ends with the entry, e.g. 'lm_head', 'embed_tokens')`,
    );
  }
  return out;
}

/** The modules_to_save of one adapter: trained copies in the model, originals kept; see the file comment. */
export class ModulesToSave {
  /** The module paths, in tree order. */
  readonly paths: readonly string[];
  /** Every copied parameter. */
  readonly params: readonly SavedParameter[];

  /**
   * Replace each parameter of the modules at `paths` by a trainable copy (f32, or f64 for an f64
   * model; a bf16 parameter is widened). Call after the model is frozen.
   */
  constructor(
    private readonly model: Module,
    paths: readonly string[],
  ) {
    this.paths = [...paths];
    const params: SavedParameter[] = [];
    for (const path of paths) {
      const module = model.getSubmodule(path);
      for (const [local, original] of module.namedParameters()) {
        const dtype = original.dtype === 'f64' ? 'f64' : 'f32';
        if (original.dtype === 'i32')
          throw new ConfigError(`modules_to_save: '${path}.${local}' is i32 and cannot be trained`);
        const copy = Parameter.zeros(original.shape, dtype, { requiresGrad: true });
        const values = original.data;
        copy.fillWith((i) => readElement(values, i));
        params.push({ name: `${path}.${local}`, original, copy });
      }
    }
    for (const p of params) model.setParameter(p.name, p.copy);
    this.params = params;
  }

  /** The trained copies with their Hub names. */
  namedTrainableParameters(): [string, Parameter][] {
    return this.params.filter((p) => p.copy.requiresGrad).map((p) => [p.name, p.copy]);
  }

  /** The copies under PEFT's saved keys (`base_model.model.<name>`); live tensors. */
  state(): Map<string, Tensor> {
    return new Map(this.params.map((p) => [`${PEFT_KEY_PREFIX}${p.name}`, p.copy as Tensor]));
  }

  /** The copy of the parameter named `name`, or undefined. */
  copyOf(name: string): Parameter | undefined {
    return this.params.find((p) => p.name === name)?.copy;
  }

  /** Put the original parameters back (`unload`): the model is the base again. */
  restore(): void {
    for (const p of this.params) this.model.setParameter(p.name, p.original);
  }

  /**
   * Keep the trained copies as the model's parameters (`mergeAndUnload`), each trainable if its
   * original was before the adapter (`flags`, from snapshotTrainable).
   */
  keep(flags: ReadonlyMap<Parameter, boolean>): void {
    for (const p of this.params) {
      if (flags.get(p.original)) p.copy.unfreeze();
      else p.copy.freeze();
    }
  }
}
