/**
 * The streaming merge: after `planMerge` validated everything, each output tensor is read from
 * every input (f32), merged in place and appended to the output file, then dropped — so at most
 * about (inputs + 1) x the largest tensor is alive (counted by a MemoryTracker and reported).
 * A method's `prepare` may stream the inputs first (`scope: global`: once or twice, for the magnitude cuts).
 *
 * The output folder is written as a temporary sibling (config.json with torch_dtype per `dtype`,
 * generation_config.json and tokenizer files copied from the base, model.safetensors) and renamed
 * into place at the end; a failure leaves no output behind.
 */
import { randomBytes } from 'node:crypto';
import { copyFileSync, existsSync, mkdirSync, renameSync, rmSync } from 'node:fs';
import { basename, dirname, join, resolve } from 'node:path';
import { ConfigError } from '../errors.ts';
import {
  CONFIG_FILE,
  GENERATION_CONFIG_FILE,
  SAFETENSORS_FILE,
  TOKENIZER_FILE,
  writeJsonAtomic,
} from '../io/index.ts';
import { copyTokenizerFiles } from '../models/index.ts';
import type { MergeConfig } from './config.ts';
import type { GreedySoupReport } from './greedy-soup.ts';
import { MemoryTracker } from './memory.ts';
import type { TensorContext } from './method.ts';
import { isBufferName, type MergePlan, planMerge } from './plan.ts';
import { TensorInputs } from './tensor-inputs.ts';
import { StreamingSafetensorsWriter } from './writer.ts';

/** Options of `runMerge`. */
export interface RunMergeOptions {
  /** The output model dir (must not exist unless `overwrite`). */
  out: string;
  /** Replace an existing output dir (after the merge succeeded). */
  overwrite?: boolean;
  /** Called after each output tensor: (done, total). */
  onProgress?: (done: number, total: number) => void;
  /** Diagnostic lines (greedy soup's steps, skipped records). */
  note?: (line: string) => void;
}

/** What a merge did (also the `--json` object of `attune merge`). */
export interface MergeReport {
  method: string;
  out: string;
  /** Models merged (excluding the base). */
  models: number;
  /** Tensors read for each output tensor (distinct inputs, the base included). */
  inputs: number;
  tensors: number;
  /** Streaming passes over the inputs (1, plus a method's pre-passes: up to 3 with scope: global). */
  passes: number;
  seconds: number;
  /** Output dtype ('as base' when each tensor kept its stored dtype). */
  dtype: string;
  /** Most bytes of tensor data alive at once. */
  peakTensorBytes: number;
  /** The largest tensor, as f32. */
  largestTensorBytes: number;
  /** (inputs + 1) x largestTensorBytes: the streaming bound. */
  boundBytes: number;
  /** Whether tokenizer files were copied from the base. */
  tokenizer: boolean;
  /** slerp: tensors where the colinear fallback (lerp) was used. */
  lerpFallbacks?: number;
  /** greedy_soup: the selection. */
  greedySoup?: GreedySoupReport;
}

/** Merge one tensor with the method's rule; returns the output values. */
function mergeTensor(
  plan: MergePlan,
  name: string,
  inputs: TensorInputs,
  prepared: unknown,
  counters: Record<string, number>,
): Float32Array {
  if (isBufferName(name)) return inputs.get(plan.layout, name);
  const shape = plan.shapes.get(name)!;
  const context: TensorContext = {
    name,
    shape,
    rowLength: shape.length >= 2 ? shape[shape.length - 1]! : 0,
    params: plan.params.get(name)!,
    entries: plan.entries,
    seed: plan.config.seed,
    base: () => {
      if (!plan.base)
        throw new TypeError(`merge method '${plan.config.method}' has no base (usesBase is false)`);
      return inputs.get(plan.base, name);
    },
    model: (i) => inputs.get(plan.entries[i]!.source, name),
    scratch: (n) => inputs.scratch(n),
    prepared,
    count: (counter, by = 1) => {
      counters[counter] = (counters[counter] ?? 0) + by;
    },
  };
  return plan.config.mergeMethod.mergeTensor(context);
}

/** Write config.json (torch_dtype per the output dtype), generation_config.json and the tokenizer. */
function writeSideFiles(plan: MergePlan, dir: string): boolean {
  const from = plan.layout.ref.dir;
  const config: Record<string, unknown> = { ...plan.layout.config };
  if (plan.config.outDtype) config.torch_dtype = plan.config.outDtype;
  writeJsonAtomic(join(dir, CONFIG_FILE), config);
  if (existsSync(join(from, GENERATION_CONFIG_FILE)))
    copyFileSync(join(from, GENERATION_CONFIG_FILE), join(dir, GENERATION_CONFIG_FILE));
  if (!existsSync(join(from, TOKENIZER_FILE))) return false;
  copyTokenizerFiles(from, dir);
  return true;
}

function checkOutput(plan: MergePlan, out: string, overwrite: boolean): void {
  const inputDirs = plan.sources.flatMap((s) => [s.ref.dir, ...(s.ref.adapterDir ? [s.ref.adapterDir] : [])]);
  if (inputDirs.includes(out))
    throw new ConfigError(`--out ${out} is one of the merge's inputs; choose another folder`);
  if (existsSync(out) && !overwrite)
    throw new ConfigError(`${out} already exists (pass --overwrite to replace it)`);
}

/** Stream the planned merge into `out` (see the file comment). */
function streamMerge(plan: MergePlan, out: string, options: RunMergeOptions, started: number): MergeReport {
  const tracker = new MemoryTracker();
  const method = plan.config.mergeMethod;
  const prepared = method.prepare?.({ plan, tracker, inputs: () => new TensorInputs(tracker) }) ?? null;
  mkdirSync(dirname(out), { recursive: true });
  const temp = join(dirname(out), `.${basename(out)}.tmp-${process.pid}-${randomBytes(4).toString('hex')}`);
  mkdirSync(temp);
  let writer: StreamingSafetensorsWriter | null = null;
  const counters: Record<string, number> = {};
  let tokenizer = false;
  try {
    tokenizer = writeSideFiles(plan, temp);
    writer = new StreamingSafetensorsWriter(
      join(temp, SAFETENSORS_FILE),
      plan.names.map((name) => ({ name, dtype: plan.dtypes.get(name)!, shape: plan.shapes.get(name)! })),
    );
    const order = writer.order;
    order.forEach((name, i) => {
      const inputs = new TensorInputs(tracker);
      try {
        writer!.write(name, mergeTensor(plan, name, inputs, prepared?.state ?? null, counters));
      } finally {
        inputs.releaseAll();
      }
      options.onProgress?.(i + 1, order.length);
    });
    writer.finish();
    writer = null;
    if (existsSync(out)) rmSync(out, { recursive: true, force: true });
    renameSync(temp, out);
  } catch (error) {
    writer?.abort();
    rmSync(temp, { recursive: true, force: true });
    throw error;
  }
  const inputs = new Set([...(plan.base ? [plan.base] : []), ...plan.entries.map((e) => e.source)]).size;
  return {
    method: plan.config.method,
    out,
    models: plan.entries.length,
    inputs,
    tensors: plan.names.length,
    passes: 1 + (prepared?.passes ?? 0),
    seconds: (performance.now() - started) / 1000,
    dtype: plan.config.outDtype ?? 'as base',
    peakTensorBytes: tracker.peak,
    largestTensorBytes: plan.largestTensorBytes,
    boundBytes: (inputs + 1) * plan.largestTensorBytes,
    tokenizer,
    ...method.report?.(counters),
  };
}

/**
 * Run a validated merge config into the folder `options.out`. Everything is checked (inputs,
 * architectures, parameters, the output folder) before anything is written. A method with a
 * `select` step (greedy_soup: by eval loss, loading whole models) first chooses its models, then
 * the merge of the chosen ones is streamed.
 */
export function runMerge(config: MergeConfig, options: RunMergeOptions): MergeReport {
  const started = performance.now();
  const out = resolve(options.out);
  let plan = planMerge(config);
  try {
    checkOutput(plan, out, options.overwrite ?? false);
    const select = config.mergeMethod.select;
    if (!select) return streamMerge(plan, out, options, started);
    const selection = select(plan, options.note);
    const keep = new Set(selection.keep);
    const selected: MergeConfig = { ...config, models: config.models.filter((_, i) => keep.has(i)) };
    plan.close();
    plan = planMerge(selected);
    return { ...streamMerge(plan, out, options, started), ...selection.report };
  } finally {
    plan.close();
  }
}
