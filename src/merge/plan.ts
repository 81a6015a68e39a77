/**
 * Planning a merge: open every input (headers only), check that they are one architecture — the
 * same config.json model_type, every tensor of the base present with the same shape in every model,
 * nothing unexpected — and resolve every parameter of every tensor, so all that can be wrong is
 * reported (all offenders in one error) before anything is written.
 */
import { TensorMismatchError } from '../errors.ts';
import { formatShape, shapeSize } from '../tensor/index.ts';
import type { MergeConfig, MergeModelEntry } from './config.ts';
import { optionDefaults } from './method.ts';
import { MERGEABLE_DTYPES, ModelSource, TIED_NAMES } from './reference.ts';
import { evaluateSetting, type Setting, tensorPosition } from './settings.ts';
import type { OutputDType } from './writer.ts';

/** A model that contributes to the merge, with its source. */
export interface PlannedEntry {
  /** Index in the config's `models`. */
  index: number;
  entry: MergeModelEntry;
  source: ModelSource;
}

/**
 * Parameters of one tensor, resolved per key of the method's options: a per-model parameter as one
 * number per contributing entry (its own setting, else the global one, else the default), a global
 * one as its value at this tensor (undefined when a conditional setting has no match and no default).
 */
export interface TensorParameters {
  /** Per-model parameters: one value per contributing entry, in plan order. */
  models: Readonly<Record<string, readonly number[]>>;
  /** Global parameters. */
  global: Readonly<Record<string, number | boolean | string | undefined>>;
}

/** An opened, validated merge. `close()` releases the inputs. */
export interface MergePlan {
  config: MergeConfig;
  /** Where the output's layout, config and tokenizer come from: the base, else the first model. */
  layout: ModelSource;
  /** The base of methods that use one (`usesBase`), else null. */
  base: ModelSource | null;
  /** The models merged: the entries other than the base (methods without a base: every entry). */
  entries: PlannedEntry[];
  /** Every opened input, once each. */
  sources: ModelSource[];
  /** Output tensor names, sorted (the file order). */
  names: string[];
  shapes: Map<string, number[]>;
  dtypes: Map<string, OutputDType>;
  params: Map<string, TensorParameters>;
  /** Bytes of the largest tensor as f32. */
  largestTensorBytes: number;
  close(): void;
}

/** Tensors copied from the layout unmerged (old transformers' rotary buffers). */
export function isBufferName(name: string): boolean {
  return name.endsWith('rotary_emb.inv_freq');
}

const OUTPUT: Record<'float32' | 'bfloat16' | 'float16', OutputDType> = {
  float32: 'F32',
  bfloat16: 'BF16',
  float16: 'F16',
};

function openAll(config: MergeConfig): { sources: Map<string, ModelSource>; close: () => void } {
  const sources = new Map<string, ModelSource>();
  const close = () => {
    for (const s of sources.values()) s.close();
  };
  try {
    const refs = [...(config.base ? [config.base] : []), ...config.models.map((m) => m.ref)];
    for (const ref of refs) if (!sources.has(ref.key)) sources.set(ref.key, ModelSource.open(ref));
  } catch (error) {
    close();
    throw error;
  }
  return { sources, close };
}

/** Every architecture problem of `others` against `layout` (all of them, not the first). */
export function architectureProblems(layout: ModelSource, others: readonly ModelSource[]): string[] {
  const problems: string[] = [];
  const names = layout.names();
  for (const name of names) {
    const dtype = layout.info(name).dtype;
    if (!MERGEABLE_DTYPES.includes(dtype))
      problems.push(`'${name}' is ${dtype} in ${layout.ref.text}; only float tensors can be merged`);
  }
  for (const other of others) {
    if (other.modelType !== layout.modelType) {
      problems.push(
        `${other.ref.text} is model_type '${other.modelType}', ${layout.ref.text} is '${layout.modelType}'`,
      );
    }
    const used = new Set<string>();
    for (const name of names) {
      if (isBufferName(name)) continue;
      const stored = other.resolve(name);
      if (stored === null) {
        problems.push(`'${name}' is missing from ${other.ref.text}`);
        continue;
      }
      used.add(stored);
      const mine = layout.info(name);
      const theirs = other.info(name);
      if (mine.shape.length !== theirs.shape.length || mine.shape.some((d, i) => d !== theirs.shape[i])) {
        problems.push(
          `'${name}' is ${formatShape(theirs.shape)} in ${other.ref.text} but ${formatShape(mine.shape)} in ${layout.ref.text}`,
        );
      } else if (!MERGEABLE_DTYPES.includes(theirs.dtype)) {
        problems.push(`'${name}' is ${theirs.dtype} in ${other.ref.text}; only float tensors can be merged`);
      }
    }
    for (const name of other.names()) {
      if (used.has(name) || isBufferName(name)) continue;
      // The base ties its embeddings and this model stores a separate LM head: the base's layout wins.
      if (layout.tiedEmbeddings && TIED_NAMES.includes(name)) continue;
      problems.push(`'${name}' in ${other.ref.text} has no counterpart in ${layout.ref.text}`);
    }
  }
  return problems;
}

/** Resolve every tensor's parameters (see TensorParameters). */
function resolveParameters(
  config: MergeConfig,
  entries: readonly PlannedEntry[],
  names: readonly string[],
  numLayers: number,
): Map<string, TensorParameters> {
  const { mergeMethod: method, parameters: global } = config;
  const defaults = optionDefaults(method);
  const perModel = new Set(method.modelParameters);
  const globalKeys = Object.keys(defaults).filter((k) => !perModel.has(k));
  const settingAt = (setting: Setting | undefined, name: string, t: number) =>
    setting === undefined ? undefined : evaluateSetting(setting, name, t);
  const params = new Map<string, TensorParameters>();
  for (const name of names) {
    const t = tensorPosition(name, numLayers);
    const models: Record<string, number[]> = {};
    for (const key of perModel) {
      models[key] = entries.map((e) => {
        const v = settingAt(e.entry.parameters[key], name, t) ?? settingAt(global[key], name, t);
        return typeof v === 'number' ? v : (defaults[key] as number);
      });
    }
    const values: Record<string, number | boolean | string | undefined> = {};
    for (const key of globalKeys)
      values[key] =
        settingAt(global[key], name, t) ?? (defaults[key] as number | boolean | string | undefined);
    params.set(name, { models, global: values });
  }
  return params;
}

/** Open and validate a merge (see the file comment); throws before anything is written. */
export function planMerge(config: MergeConfig): MergePlan {
  const { sources, close } = openAll(config);
  try {
    const base = config.base ? sources.get(config.base.key)! : null;
    const layout = base ?? sources.get(config.models[0]!.ref.key)!;
    const usesBase = config.mergeMethod.usesBase;
    const entries: PlannedEntry[] = config.models
      .map((entry, index) => ({ index, entry, source: sources.get(entry.ref.key)! }))
      .filter((e) => !usesBase || e.source !== base);
    const others = [...sources.values()].filter((s) => s !== layout);
    const problems = architectureProblems(layout, others);
    if (problems.length > 0) {
      throw new TensorMismatchError(
        `${config.source}: the models cannot be merged (${problems.length} problem(s)): ${problems.join('; ')}`,
      );
    }
    const names = layout.names();
    const shapes = new Map<string, number[]>();
    const dtypes = new Map<string, OutputDType>();
    let largest = 0;
    for (const name of names) {
      const info = layout.info(name);
      shapes.set(name, info.shape);
      const stored = info.dtype === 'BF16' || info.dtype === 'F16' ? info.dtype : 'F32';
      dtypes.set(name, config.outDtype ? OUTPUT[config.outDtype] : stored);
      largest = Math.max(largest, shapeSize(info.shape) * 4);
    }
    const params = resolveParameters(config, entries, names, layout.numLayers);
    const paramProblems = config.mergeMethod.checkTensors?.(params) ?? [];
    if (paramProblems.length > 0)
      throw new TensorMismatchError(`${config.source}: ${paramProblems.join('; ')}`);
    return {
      config,
      layout,
      base: usesBase ? base : null,
      entries,
      sources: [...sources.values()],
      names: [...names].sort(),
      shapes,
      dtypes,
      params,
      largestTensorBytes: largest,
      close,
    };
  } catch (error) {
    close();
    throw error;
  }
}
