/**
 * The merge-method registry. A merge method is one file in methods/ that declares its name, a
 * one-line description, its parameters (a zod object with mergekit's names, defaults, ranges and a
 * `.describe()` line each; which of them a model entry may set), and its tensor rule. The config
 * schema, the planner, the engine, the bench and the docs iterate `mergeMethods`; nothing outside a
 * method's file names a method.
 */
import type { z } from 'zod';
import { Registry, type RegistryEntry } from '../config/registry.ts';
import type { MemoryTracker } from './memory.ts';
import type { MergePlan, PlannedEntry, TensorParameters } from './plan.ts';
import type { TensorInputs } from './tensor-inputs.ts';

/** What a method's checks see of a config (after its fields validated). */
export interface MergeConfigView {
  /** Global parameters as validated (the method's defaults filled in). */
  parameters: Readonly<Record<string, unknown>>;
  /** Each model entry's own parameters (no defaults). */
  models: readonly { parameters: Readonly<Record<string, unknown>> }[];
  /** Models other than the base (all of them when there is no base). */
  others: number;
  /** Whether an `eval` block was given. */
  hasEval: boolean;
}

/** A problem found by a method's check: a message, and the config path it is about (for its line). */
export type ReportProblem = (message: string, path?: readonly (string | number)[]) => void;

/** What a method's tensor rule reads for one output tensor. */
export interface TensorContext {
  /** The tensor's name and shape. */
  name: string;
  shape: readonly number[];
  /** Row length of a matrix (its last dimension), 0 for a vector. */
  rowLength: number;
  /** This tensor's resolved parameters. */
  params: TensorParameters;
  /** The contributing model entries, in plan order (`index` is the position in the config's `models`). */
  entries: readonly PlannedEntry[];
  /** The config's `seed` (DARE's drops). */
  seed: number;
  /** The base's values (only for methods with `usesBase`). Mutable: the rule may write the output into it. */
  base(): Float32Array;
  /** Entry `i`'s values (read once per tensor; mutable like `base`). */
  model(i: number): Float32Array;
  /** A scratch array of `n` entries, counted like an input. */
  scratch(n: number): Float32Array;
  /** What the method's `prepare` returned (null without one). */
  prepared: unknown;
  /** Add `by` to a named counter that the method's `report` turns into report fields. */
  count(counter: string, by?: number): void;
}

/** What a method's `prepare` sees: the plan and the means to stream its inputs. */
export interface PrepareContext {
  plan: MergePlan;
  tracker: MemoryTracker;
  /** A fresh reader of one tensor's inputs (call `releaseAll` when done with it). */
  inputs(): TensorInputs;
}

/** A registered merge method. */
export interface MergeMethod extends RegistryEntry {
  /** Keys of `options` a model entry may set (the global `parameters` may set them as defaults). */
  readonly modelParameters: readonly string[];
  /** Whether `base_model` is required and taken as the base (its entries are then not merged as models). */
  readonly usesBase: boolean;
  /** Whether the method reads the config's `eval` block. */
  readonly usesEval?: boolean;
  /** Config checks beyond the parameter schema (model counts, required parameters). */
  check?(config: MergeConfigView, problem: ReportProblem): void;
  /** Problems with the parameters resolved per tensor (e.g. weights that sum to 0), found before writing. */
  checkTensors?(params: ReadonlyMap<string, TensorParameters>): string[];
  /** A pass over the inputs before the merge (e.g. model-wide magnitude cuts); `passes` it took. */
  prepare?(context: PrepareContext): { state: unknown; passes: number } | null;
  /** Merge one tensor; returns the output (one of the input arrays, merged in place, or the scratch). */
  mergeTensor(context: TensorContext): Float32Array;
  /** Choose which models to merge before streaming (greedy soup): indices into `models`, and report fields. */
  select?(
    plan: MergePlan,
    note?: (line: string) => void,
  ): { keep: number[]; report: Record<string, unknown> };
  /**
   * How `attune bench merge` runs the method on a base and three random fine-tuned copies: how many
   * of them it merges (default all), global parameters, and per-model ones besides weight 1 / count.
   * Without a recipe the method is not benched.
   */
  readonly bench?: {
    models?: number;
    parameters?: Record<string, unknown>;
    modelParameters?: Record<string, unknown>;
  };
  /** Report fields from the counters of `TensorContext.count`. */
  report?(counters: Readonly<Record<string, number>>): Record<string, unknown>;
}

/** Every method `merge_method:` can name. */
export const mergeMethods = new Registry<MergeMethod>('merge method', 'merge_method');

/** What a method file passes to `registerMergeMethod` (`options` typed by its schema). */
export type MergeMethodDefinition<S extends z.ZodObject> = Omit<
  MergeMethod,
  'options' | 'modelParameters'
> & {
  options: S;
  modelParameters: readonly (keyof z.output<S> & string)[];
};

/** Make a merge method available as `merge_method: <name>`. */
export function registerMergeMethod<S extends z.ZodObject>(method: MergeMethodDefinition<S>): MergeMethod {
  for (const key of method.modelParameters) {
    if (!(key in method.options.shape))
      throw new TypeError(
        `merge method '${method.name}': per-model parameter '${key}' is not one of its options`,
      );
  }
  return mergeMethods.register(method as unknown as MergeMethod);
}

/** mergekit methods Attune does not run (named in the error instead of a spelling suggestion). */
export const UNSUPPORTED_MERGEKIT_METHODS: readonly string[] = [
  'passthrough',
  'nuslerp',
  'multislerp',
  'della',
  'della_linear',
  'sce',
  'karcher',
  'arcee_fusion',
  'nearswap',
];

/** The value of each option when it is not written (undefined for required / optional ones). */
export function optionDefaults(method: MergeMethod): Record<string, unknown> {
  const out: Record<string, unknown> = {};
  for (const [key, field] of Object.entries(method.options.shape)) {
    const r = (field as z.ZodType).safeParse(undefined);
    out[key] = r.success ? r.data : undefined;
  }
  return out;
}
