/**
 * The streaming merge: after `planMerge` validated everything, each output tensor is read from
 * every input (f32), merged in place and appended to the output file, then dropped — so at most
 * about (inputs + 1) x the largest tensor is alive (counted by a MemoryTracker and reported).
 * `scope: global` first streams the inputs once or twice more to find each model's magnitude cuts.
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
import { Rng } from '../tensor/index.ts';
import {
  combineTaskVectors,
  linearCombine,
  modelStockTensors,
  slerpTensors,
  type TaskVector,
} from './combine.ts';
import type { MergeConfig } from './config.ts';
import { type GreedySoupReport, runGreedySoupSelection } from './greedy-soup.ts';
import { MemoryTracker } from './memory.ts';
import { isBufferName, type MergePlan, type PlannedEntry, planMerge } from './plan.ts';
import { RadixRankSelector, type RankCut } from './select.ts';
import { rankBand, sparsifyTaskVector } from './sparsify.ts';
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
  /** Streaming passes over the inputs (1, or up to 3 with scope: global). */
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

function fnv1a(text: string): number {
  let h = 0x811c9dc5;
  for (let i = 0; i < text.length; i++) h = Math.imul(h ^ text.charCodeAt(i), 0x01000193) >>> 0;
  return h;
}

/** The seed of DARE's drops for one (tensor, model): independent of the tensor order. */
export function dropSeed(seed: number, tensorName: string, modelIndex: number): number {
  return ((seed >>> 0) ^ fnv1a(tensorName) ^ Math.imul(modelIndex + 1, 0x9e3779b9)) >>> 0;
}

const SCRATCH = '\0scratch';

/** Reads the distinct inputs of one tensor once each, counting their bytes. */
class TensorInputs {
  private readonly arrays = new Map<string, Float32Array>();

  constructor(private readonly tracker: MemoryTracker) {}

  get(
    source: { ref: { key: string }; read(name: string, tracker?: MemoryTracker): Float32Array },
    name: string,
  ): Float32Array {
    let values = this.arrays.get(source.ref.key);
    if (!values) {
      values = source.read(name, this.tracker);
      this.arrays.set(source.ref.key, values);
    }
    return values;
  }

  /** A scratch f32 array of `n` entries (one per tensor, counted like an input). */
  scratch(n: number): Float32Array {
    let values = this.arrays.get(SCRATCH);
    if (!values || values.length !== n) {
      if (values) this.tracker.remove(values.byteLength);
      values = new Float32Array(n);
      this.tracker.add(values.byteLength);
      this.arrays.set(SCRATCH, values);
    }
    return values;
  }

  releaseAll(): void {
    for (const values of this.arrays.values()) this.tracker.remove(values.byteLength);
    this.arrays.clear();
  }
}

/** |Δ| cuts for scope: global, one pair per entry (null where the entry is not trimmed). */
function globalCuts(
  plan: MergePlan,
  tracker: MemoryTracker,
): { cuts: ({ start: RankCut; end: RankCut } | null)[]; passes: number } {
  const { spec } = plan.config;
  const base = plan.base!;
  const names = plan.names.filter((n) => !isBufferName(n));
  const total = names.reduce((sum, n) => sum + plan.shapes.get(n)!.reduce((p, d) => p * d, 1), 0);
  const first = plan.params.get(names[0]!)!;
  const method = spec.sparsification === 'magnitude_outliers' ? 'magnitude_outliers' : 'magnitude';
  const selectors = plan.entries.map((_, i) => {
    if (first.density[i]! >= 1) return null;
    const band = rankBand(method, total, first.density[i]!, first.gamma[i]!);
    return new RadixRankSelector([band.start, band.end]);
  });
  const pass = (visit: (selector: RadixRankSelector, bits: Uint32Array) => void) => {
    for (const name of names) {
      const inputs = new TensorInputs(tracker);
      const b = inputs.get(base, name);
      plan.entries.forEach((e, i) => {
        const selector = selectors[i];
        if (!selector) return;
        const theta = e.source.read(name, tracker);
        const mags = inputs.scratch(b.length);
        const bits = new Uint32Array(mags.buffer);
        for (let j = 0; j < theta.length; j++) mags[j] = Math.abs(theta[j]! - b[j]!);
        tracker.remove(theta.byteLength);
        visit(selector, bits);
      });
      inputs.releaseAll();
    }
  };
  pass((s, bits) => s.addHighBits(bits));
  for (const s of selectors) s?.finishHigh();
  let passes = 1;
  if (selectors.some((s) => s?.needsLow)) {
    pass((s, bits) => s.addLowBits(bits));
    passes++;
  }
  return {
    cuts: selectors.map((s) => {
      if (!s) return null;
      const [start, end] = s.cuts();
      return { start: start!, end: end! };
    }),
    passes,
  };
}

/** Merge one tensor; returns the output values (one of the input arrays, merged in place). */
function mergeTensor(
  plan: MergePlan,
  name: string,
  inputs: TensorInputs,
  cuts: ({ start: RankCut; end: RankCut } | null)[] | null,
  stats: { lerp: number },
): Float32Array {
  const { spec, seed } = plan.config;
  if (isBufferName(name)) return inputs.get(plan.layout, name);
  const p = plan.params.get(name)!;
  const shape = plan.shapes.get(name)!;
  const rowLength = shape.length >= 2 ? shape[shape.length - 1]! : 0;
  if (spec.kind === 'linear') {
    const thetas = plan.entries.map((e) => inputs.get(e.source, name));
    linearCombine(thetas, p.weight, p.normalize, thetas[0]!);
    return thetas[0]!;
  }
  const base = inputs.get(plan.base!, name);
  if (spec.kind === 'slerp') {
    const other = inputs.get(plan.entries[0]!.source, name);
    if (slerpTensors(p.t, base, other, base).lerp) stats.lerp++;
    return base;
  }
  if (spec.kind === 'model_stock') {
    const thetas = plan.entries.map((e) => inputs.get(e.source, name));
    modelStockTensors(base, thetas, p.filterWise, rowLength, base);
    return base;
  }
  // every input first (a LoRA fold's temporary update is gone before the scratch array exists)
  const thetas = plan.entries.map((e) => inputs.get(e.source, name));
  const scratch =
    spec.sparsification && spec.sparsification !== 'random' ? inputs.scratch(base.length) : undefined;
  const vectors: TaskVector[] = plan.entries.map((e: PlannedEntry, i) => {
    const theta = thetas[i]!;
    let scale = 1;
    if (spec.sparsification) {
      scale = sparsifyTaskVector(
        theta,
        base,
        {
          method: spec.sparsification,
          density: p.density[i]!,
          gamma: p.gamma[i]!,
          rescale: p.rescale,
          scope: p.scope === 'row' ? 'row' : 'tensor',
          rowLength,
          rng: spec.sparsification === 'random' ? new Rng(dropSeed(seed, name, e.index)) : undefined,
          cuts: cuts?.[i] ?? undefined,
        },
        scratch,
      ).scale;
    }
    return { theta, weight: p.weight[i]!, scale };
  });
  combineTaskVectors(
    base,
    vectors,
    { consensus: spec.consensus, normalize: p.normalize, divisor: p.divisor, lambda: p.lambda },
    base,
  );
  return base;
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
  const global =
    plan.base !== null &&
    plan.config.spec.sparsification !== null &&
    plan.params.get(plan.names[0]!)?.scope === 'global';
  const selection = global ? globalCuts(plan, tracker) : null;
  mkdirSync(dirname(out), { recursive: true });
  const temp = join(dirname(out), `.${basename(out)}.tmp-${process.pid}-${randomBytes(4).toString('hex')}`);
  mkdirSync(temp);
  let writer: StreamingSafetensorsWriter | null = null;
  const stats = { lerp: 0 };
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
        writer!.write(name, mergeTensor(plan, name, inputs, selection?.cuts ?? null, stats));
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
    passes: 1 + (selection?.passes ?? 0),
    seconds: (performance.now() - started) / 1000,
    dtype: plan.config.outDtype ?? 'as base',
    peakTensorBytes: tracker.peak,
    largestTensorBytes: plan.largestTensorBytes,
    boundBytes: (inputs + 1) * plan.largestTensorBytes,
    tokenizer,
    ...(plan.config.spec.kind === 'slerp' ? { lerpFallbacks: stats.lerp } : {}),
  };
}

/**
 * Run a validated merge config into the folder `options.out`. Everything is checked (inputs,
 * architectures, parameters, the output folder) before anything is written. greedy_soup first
 * selects its ingredients by eval loss (loading whole models, see greedy-soup.ts), then streams
 * the uniform average of the accepted ones.
 */
export function runMerge(config: MergeConfig, options: RunMergeOptions): MergeReport {
  const started = performance.now();
  const out = resolve(options.out);
  let plan = planMerge(config);
  try {
    checkOutput(plan, out, options.overwrite ?? false);
    if (config.method !== 'greedy_soup') return streamMerge(plan, out, options, started);
    const soup = runGreedySoupSelection(plan, options.note);
    const accepted = new Set(soup.accepted);
    const soupConfig: MergeConfig = { ...config, models: config.models.filter((_, i) => accepted.has(i)) };
    plan.close();
    plan = planMerge(soupConfig);
    return { ...streamMerge(plan, out, options, started), greedySoup: soup };
  } finally {
    plan.close();
  }
}
