/**
 * Planning a merge: open every input (headers only), check that they are one architecture — the
 * same config.json model_type, every tensor of the base present with the same shape in every model,
 * nothing unexpected — and resolve every parameter of every tensor, so all that can be wrong is
 * reported (all offenders in one error) before anything is written.
 */
import { TensorMismatchError } from '../errors.ts';
import { formatShape, shapeSize } from '../tensor/index.ts';
import type { MergeConfig, MergeModelEntry } from './config.ts';
import { MODEL_PARAMETER_DEFAULTS, type ModelParameterName, type Rescale } from './methods.ts';
import { MERGEABLE_DTYPES, ModelSource, TIED_NAMES } from './reference.ts';
import { evaluateSetting, tensorPosition } from './settings.ts';
import type { OutputDType } from './writer.ts';

/** A model that contributes to the merge, with its source. */
export interface PlannedEntry {
  /** Index in the config's `models`. */
  index: number;
  entry: MergeModelEntry;
  source: ModelSource;
}

/** Parameters of one tensor, resolved (per-model, then global, then the method's default). */
export interface TensorParameters {
  /** Per contributing entry, in plan order. */
  weight: number[];
  density: number[];
  gamma: number[];
  lambda: number;
  t: number;
  normalize: boolean;
  rescale: Rescale;
  scope: 'tensor' | 'global' | 'row';
  divisor: 'weights' | 'count';
  filterWise: boolean;
}

/** An opened, validated merge. `close()` releases the inputs. */
export interface MergePlan {
  config: MergeConfig;
  /** Where the output's layout, config and tokenizer come from: the base, else the first model. */
  layout: ModelSource;
  /** The base of task-vector methods, slerp and model stock (null for linear / greedy_soup). */
  base: ModelSource | null;
  /** The models merged (linear: every entry; others: the entries other than the base). */
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

function rescaleOf(value: unknown, fallback: Rescale): Rescale {
  if (value === true) return 'l1';
  if (value === false) return 'none';
  return typeof value === 'string' ? (value as Rescale) : fallback;
}

/** Resolve every tensor's parameters; problems (e.g. weights summing to 0 with normalize) appended. */
function resolveParameters(
  config: MergeConfig,
  entries: readonly PlannedEntry[],
  names: readonly string[],
  numLayers: number,
  problems: string[],
): Map<string, TensorParameters> {
  const { spec, parameters: global } = config;
  const params = new Map<string, TensorParameters>();
  const globalValue = (key: string, name: string, t: number) => {
    const s = global[key];
    return s === undefined ? undefined : evaluateSetting(s, name, t);
  };
  const modelValue = (e: MergeModelEntry, key: ModelParameterName, name: string, t: number): number => {
    const own = e.parameters[key];
    let v = own === undefined ? undefined : evaluateSetting(own, name, t);
    if (v === undefined) v = globalValue(key, name, t);
    return typeof v === 'number' ? v : MODEL_PARAMETER_DEFAULTS[key];
  };
  const zeroSums: string[] = [];
  for (const name of names) {
    const t = tensorPosition(name, numLayers);
    const lambda = globalValue('lambda', name, t);
    const tValue = globalValue('t', name, t);
    const normalize = global.normalize;
    const p: TensorParameters = {
      weight: entries.map((e) =>
        config.method === 'greedy_soup' ? 1 : modelValue(e.entry, 'weight', name, t),
      ),
      density: entries.map((e) => modelValue(e.entry, 'density', name, t)),
      gamma: entries.map((e) => modelValue(e.entry, 'gamma', name, t)),
      lambda: typeof lambda === 'number' ? lambda : 1,
      t: typeof tValue === 'number' ? tValue : 0.5,
      normalize: typeof normalize === 'boolean' ? normalize : spec.normalize,
      rescale: rescaleOf(global.rescale, spec.rescale),
      scope: (global.scope as TensorParameters['scope'] | undefined) ?? 'tensor',
      divisor: (global.divisor as TensorParameters['divisor'] | undefined) ?? 'weights',
      filterWise: global.filter_wise === true,
    };
    if (spec.kind === 'linear' && p.normalize && p.weight.reduce((a, b) => a + b, 0) === 0)
      zeroSums.push(name);
    if (spec.kind === 'slerp' && tValue === undefined)
      problems.push(`'t' has no value for tensor '${name}' (no filter matches it)`);
    params.set(name, p);
  }
  if (zeroSums.length > 0) {
    problems.push(
      `the weights sum to 0 for ${zeroSums.map((n) => `'${n}'`).join(', ')}: linear with normalize: true would divide by 0 (set normalize: false or change the weights)`,
    );
  }
  return params;
}

/** Open and validate a merge (see the file comment); throws before anything is written. */
export function planMerge(config: MergeConfig): MergePlan {
  const { sources, close } = openAll(config);
  try {
    const base = config.base ? sources.get(config.base.key)! : null;
    const layout = base ?? sources.get(config.models[0]!.ref.key)!;
    const isLinear = config.spec.kind === 'linear';
    const entries: PlannedEntry[] = config.models
      .map((entry, index) => ({ index, entry, source: sources.get(entry.ref.key)! }))
      .filter((e) => isLinear || e.source !== base);
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
    const paramProblems: string[] = [];
    const params = resolveParameters(config, entries, names, layout.numLayers, paramProblems);
    if (paramProblems.length > 0)
      throw new TensorMismatchError(`${config.source}: ${paramProblems.join('; ')}`);
    return {
      config,
      layout,
      base: isLinear ? null : base,
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
