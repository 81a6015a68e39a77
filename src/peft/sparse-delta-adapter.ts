/**
 * The adapter shared by tuners whose update is a fixed set of sparse deltas per target matrix
 * (`lt_sft`, `s2ft`): each target is a SparseDeltaLinear (k flat indices + k trainable values,
 * `W_eff = W + scatter(values)`), every other parameter is frozen. Unlike sparse_ft's adapter the
 * indices are not reselected on a schedule; the tuner chooses them (once, or at a phase switch).
 *
 * Files: the sparse delta layout of docs/formats.md — `base_model.model.<module>.sft_delta.indices`
 * (I32 [k]) and `.values` (F32 [k]) per target — with the tuner's `peft_type` and, in
 * adapter_config.json, `target_modules` (exact module paths) and `target_entries` (k per module, in
 * the same order), from which loading rebuilds the layers before reading the indices.
 */
import { existsSync, mkdirSync } from 'node:fs';
import { join } from 'node:path';
import { ConfigError, FormatError, TensorMismatchError } from '../errors.ts';
import { type JsonObject, openSafetensors, writeJsonAtomic, writeSafetensors } from '../io/index.ts';
import type { Conv1D, Linear, Module, Parameter } from '../nn/index.ts';
import { Tensor } from '../tensor/index.ts';
import { checkIndices, SparseDeltaLinear } from './sparse-delta-linear.ts';
import {
  ADAPTER_CONFIG_FILE,
  ADAPTER_WEIGHTS_FILE,
  type Adapter,
  PEFT_KEY_PREFIX,
  restoreTrainable,
  type SaveAdapterOptions,
} from './tuner.ts';

/** Exact targets and their entry counts, as stored in adapter_config.json. */
export interface SparseEntries {
  targets: string[];
  entries: number[];
}

/** `target_modules` + `target_entries` of an adapter_config.json (`file` names it in errors). */
export function sparseEntriesFromJson(json: JsonObject, file: string): SparseEntries {
  const targets = json.target_modules;
  if (!Array.isArray(targets) || targets.length === 0 || targets.some((t) => typeof t !== 'string'))
    throw new FormatError(file, "'target_modules' must be a non-empty list of module names");
  const entries = json.target_entries;
  if (
    !Array.isArray(entries) ||
    entries.length !== targets.length ||
    entries.some((k) => typeof k !== 'number' || !Number.isInteger(k) || k < 1)
  )
    throw new FormatError(
      file,
      `'target_entries' must list one positive integer per target module (${targets.length}), found ${JSON.stringify(entries)?.slice(0, 80)}`,
    );
  return { targets: targets as string[], entries: entries as number[] };
}

/** Wrap each `[name, layer]` with a SparseDeltaLinear at `indicesOf(i)` and put it in the tree; freezes the model. */
export function installSparseDeltas(
  model: Module,
  modules: readonly [string, Linear | Conv1D][],
  indicesOf: (i: number) => Int32Array,
): [string, SparseDeltaLinear][] {
  const layers = modules.map(([name, m], i): [string, SparseDeltaLinear] => [
    name,
    new SparseDeltaLinear(m, indicesOf(i)),
  ]);
  model.freeze();
  for (const [name, layer] of layers) model.setSubmodule(name, layer);
  return layers;
}

/** Fixed sparse deltas on target matrices; see the file comment. */
export class SparseDeltaAdapter implements Adapter {
  private detached = false;

  /** Use a tuner (`lt_sft`, `s2ft`). `configJson` is what adapter_config.json adds to the layout. */
  constructor(
    readonly method: string,
    private readonly peftType: string,
    readonly model: Module,
    protected readonly layers: [string, SparseDeltaLinear][],
    private readonly trainableFlags: ReadonlyMap<Parameter, boolean>,
    private readonly configJson: () => JsonObject,
  ) {}

  protected check(action: string): void {
    if (this.detached)
      throw new ConfigError(`${this.method}: cannot ${action}: the adapter was unloaded from the model`);
  }

  /** The adapted layers with their dotted names. */
  get sparseLayers(): [string, SparseDeltaLinear][] {
    return [...this.layers];
  }

  /** Total number of trainable entries (sum of k). */
  get numEntries(): number {
    return this.layers.reduce((s, [, l]) => s + l.sft_delta.indices.length, 0);
  }

  /** Whether every layer's delta is folded into its weight. */
  get merged(): boolean {
    return this.layers.length > 0 && this.layers.every(([, l]) => l.merged);
  }

  /** The values of every target, `<module>.sft_delta.values`. */
  namedTrainableParameters(): [string, Parameter][] {
    return this.layers.map(([n, l]) => [`${n}.sft_delta.values`, l.sft_delta.values]);
  }

  /** What the optimizer updates. */
  trainableParameters(): Parameter[] {
    return this.namedTrainableParameters().map(([, p]) => p);
  }

  /** `<module>.sft_delta.indices` (i32, live view) and `.values` of every target. */
  state(): Map<string, Tensor> {
    const out = new Map<string, Tensor>();
    for (const [n, l] of this.layers) {
      const d = l.sft_delta;
      out.set(`${n}.sft_delta.indices`, Tensor.wrap(d.indices, [d.indices.length], { track: false }));
      out.set(`${n}.sft_delta.values`, d.values);
    }
    return out;
  }

  /** W[indices] += values in every target. */
  merge(): void {
    for (const [, l] of this.layers) l.merge();
  }

  /** Undo `merge()` exactly. */
  unmerge(): void {
    for (const [, l] of this.layers) l.unmerge();
  }

  /** The adapter_config.json object. */
  adapterConfigJson(options: SaveAdapterOptions = {}): JsonObject {
    return {
      base_model_name_or_path: options.baseModelNameOrPath ?? null,
      peft_type: this.peftType,
      task_type: 'CAUSAL_LM',
      target_modules: this.layers.map(([n]) => n),
      target_entries: this.layers.map(([, l]) => l.sft_delta.indices.length),
      num_entries: this.numEntries,
      ...this.configJson(),
    };
  }

  /** Write adapter_model.safetensors (indices I32, values F32 per target), then adapter_config.json. */
  save(dir: string, options: SaveAdapterOptions = {}): void {
    this.check('save');
    const tensors = new Map<string, Tensor>();
    for (const [n, l] of this.layers) {
      const d = l.sft_delta;
      const values =
        d.values.dtype === 'f32'
          ? d.values
          : Tensor.wrap(Float32Array.from(d.values.data as Float64Array), [d.values.size], { track: false });
      tensors.set(
        `${PEFT_KEY_PREFIX}${n}.sft_delta.indices`,
        Tensor.wrap(d.indices, [d.indices.length], { track: false }),
      );
      tensors.set(`${PEFT_KEY_PREFIX}${n}.sft_delta.values`, values);
    }
    mkdirSync(dir, { recursive: true });
    writeSafetensors(join(dir, ADAPTER_WEIGHTS_FILE), tensors, { format: 'pt' });
    writeJsonAtomic(join(dir, ADAPTER_CONFIG_FILE), this.adapterConfigJson(options));
  }

  /** Read indices and values written by `save`; everything is validated before anything changes. */
  load(dir: string): void {
    this.check('load');
    const file = join(dir, ADAPTER_WEIGHTS_FILE);
    if (!existsSync(file)) throw new FormatError(file, 'file not found');
    const reader = openSafetensors(file);
    try {
      const loaded: [SparseDeltaLinear, Int32Array, Tensor][] = [];
      const known = new Set<string>();
      for (const [n, l] of this.layers) {
        const ik = `${PEFT_KEY_PREFIX}${n}.sft_delta.indices`;
        const vk = `${PEFT_KEY_PREFIX}${n}.sft_delta.values`;
        known.add(ik);
        known.add(vk);
        for (const key of [ik, vk]) {
          if (!reader.has(key))
            throw new TensorMismatchError(`${file}: missing tensor '${key}'; nothing was loaded`);
          const k = l.sft_delta.indices.length;
          if (reader.info(key).shape.join() !== String(k))
            throw new TensorMismatchError(
              `${file}: tensor '${key}' has shape [${reader.info(key).shape.join(',')}], expected [${k}]; nothing was loaded`,
            );
        }
        const idx = reader.read(ik);
        if (idx.dtype !== 'i32')
          throw new TensorMismatchError(`${file}: tensor '${ik}' must be I32; nothing was loaded`);
        const indices = Int32Array.from(idx.data as Int32Array);
        try {
          checkIndices(indices, l.weight.size, `tensor '${ik}'`);
        } catch (e) {
          throw new FormatError(file, `${(e as Error).message}; nothing was loaded`);
        }
        loaded.push([l, indices, reader.read(vk)]);
      }
      const extra = reader.names().filter((n) => !known.has(n));
      if (extra.length > 0)
        throw new TensorMismatchError(
          `${file}: unexpected tensor(s) ${extra.slice(0, 5).join(', ')}; nothing was loaded`,
        );
      const wasMerged = this.merged;
      if (wasMerged) this.unmerge();
      for (const [l, indices, values] of loaded) {
        l.sft_delta.indices = indices;
        l.sft_delta.values.copyFrom(values, true);
        values.release();
      }
      if (wasMerged) this.merge();
    } finally {
      reader.close();
    }
  }

  /** Put the original layers back without the delta; restore the trainable flags. */
  unload(): Module {
    this.check('unload');
    this.unmerge();
    return this.detach();
  }

  /** Fold the deltas into the weights and put the plain layers back. */
  mergeAndUnload(): Module {
    this.check('merge and unload');
    this.merge();
    return this.detach();
  }

  private detach(): Module {
    for (const [n, l] of this.layers) this.model.setSubmodule(n, l.toLinear());
    restoreTrainable(this.trainableFlags);
    this.detached = true;
    return this.model;
  }
}
