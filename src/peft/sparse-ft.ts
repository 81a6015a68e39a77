/**
 * Sparse fine-tuning with drop and regrow (SpIEL: "Scaling Sparse Fine-Tuning to Large Language
 * Models"), registered as the tuner 'sparse_ft' (peft_type "SPARSE_FT"). Each target matrix gets k
 * flat indices and k trainable values (zero at first): `W_eff = W + scatter(values)`
 * (sparse-delta-linear.ts); every other parameter is frozen.
 *
 * Budget: `density` (default 0.01) of all the model's parameters, split among the targets in
 * proportion to their size (`density_of: model`, METHODS.md), or `density` of each target
 * (`density_of: target`). Initial indices are drawn uniformly (seeded by train.seed).
 *
 * Schedule (steps 1-based, R = reselection_steps 20, A = accumulation_steps 5): steps with
 * (s - 1) mod R < A form an accumulation window; after its last step s (s < total steps) the
 * indices are reselected: the `rate * k` smallest |value| are dropped (their delta is reset to 0),
 * `rate = drop_rate (1 - s / total)` (0.2 decayed linearly to 0); the first reselection (after step
 * A) replaces all k (`initial_reselection`). As many positions as were dropped are regrown among
 * those not kept:
 * - `regrow: gradient` (default): by the largest |sum of the dense weight gradient| over the window
 *   (the only steps where W's dense gradient is computed: W requires grad during the window, the
 *   gradient is added into an accumulator after each backward and released);
 * - `regrow: sm3`: by the SM3 moment estimate min(row[r], col[c]), where row / col accumulate
 *   (SM3-I) the largest squared value gradient of each row / column of the matrix every step. No
 *   dense gradient is ever computed.
 * Regrown values start at 0 and the optimizer's state at the replaced slots is zeroed.
 *
 * Files: adapter_config.json (peft_type "SPARSE_FT", target_modules, density, ...) and
 * adapter_model.safetensors with `base_model.model.<module>.sft_delta.indices` (I32 [k], flat
 * positions in the weight's layout, not sorted) and `.values` (F32 [k]); docs/formats.md.
 */
import { existsSync, mkdirSync } from 'node:fs';
import { join } from 'node:path';
import { z } from 'zod';
import { ConfigError, FormatError, TensorMismatchError } from '../errors.ts';
import { type JsonObject, openSafetensors, writeJsonAtomic, writeSafetensors } from '../io/index.ts';
import { Conv1D, Linear, type Module, type Parameter } from '../nn/index.ts';
import { Rng, Tensor } from '../tensor/index.ts';
import { checkIndices, SparseDeltaLinear } from './sparse-delta-linear.ts';
import { outputLayerNames, selectTargetModules, type TargetModules } from './targets.ts';
import { largestPositions, randomPositions } from './top-k.ts';
import {
  ADAPTER_CONFIG_FILE,
  ADAPTER_WEIGHTS_FILE,
  type Adapter,
  type OptimizerAccess,
  PEFT_KEY_PREFIX,
  registerTuner,
  restoreTrainable,
  type SaveAdapterOptions,
  snapshotTrainable,
  type Tuner,
} from './tuner.ts';

/** The peft_type of sparse_ft adapter directories (Attune's own). */
export const SPARSE_FT_PEFT_TYPE = 'SPARSE_FT';

export interface SparseFtConfig {
  /** Fraction of parameters trained (default 0.01). */
  density?: number;
  /** 'model': density of all parameters split by target size (default); 'target': of each target. */
  densityOf?: 'model' | 'target';
  /** PEFT-style target_modules (default 'all-linear'). */
  targetModules?: TargetModules;
  excludeModules?: TargetModules | null;
  /** Steps between reselections (default 20). */
  reselectionSteps?: number;
  /** Gradient-accumulation steps before each reselection (default 5). */
  accumulationSteps?: number;
  /** Fraction of k dropped at a reselection, decayed linearly to 0 over the run (default 0.2). */
  dropRate?: number;
  /** Regrowth criterion (default 'gradient'). */
  regrow?: 'gradient' | 'sm3';
  /** The first reselection replaces all k entries (default true). */
  initialReselection?: boolean;
  /** Seed of the initial indices (the run's train.seed). */
  seed?: number;
}

type Resolved = Required<SparseFtConfig>;

function resolve(c: SparseFtConfig): Resolved {
  const r: Resolved = {
    density: c.density ?? 0.01,
    densityOf: c.densityOf ?? 'model',
    targetModules: c.targetModules ?? 'all-linear',
    excludeModules: c.excludeModules ?? null,
    reselectionSteps: c.reselectionSteps ?? 20,
    accumulationSteps: c.accumulationSteps ?? 5,
    dropRate: c.dropRate ?? 0.2,
    regrow: c.regrow ?? 'gradient',
    initialReselection: c.initialReselection ?? true,
    seed: c.seed ?? 0,
  };
  if (!(r.density > 0 && r.density <= 1))
    throw new ConfigError(`sparse_ft: density must be in (0, 1], found ${r.density}`);
  if (!Number.isInteger(r.reselectionSteps) || r.reselectionSteps < 1)
    throw new ConfigError(
      `sparse_ft: reselection_steps must be a positive integer, found ${r.reselectionSteps}`,
    );
  if (
    !Number.isInteger(r.accumulationSteps) ||
    r.accumulationSteps < 1 ||
    r.accumulationSteps > r.reselectionSteps
  )
    throw new ConfigError(
      `sparse_ft: accumulation_steps must be an integer in [1, reselection_steps = ${r.reselectionSteps}], found ${r.accumulationSteps}`,
    );
  if (!(r.dropRate >= 0 && r.dropRate <= 1))
    throw new ConfigError(`sparse_ft: drop_rate must be in [0, 1], found ${r.dropRate}`);
  if (r.regrow !== 'gradient' && r.regrow !== 'sm3')
    throw new ConfigError(`sparse_ft: regrow must be 'gradient' or 'sm3', found '${String(r.regrow)}'`);
  if (r.densityOf !== 'model' && r.densityOf !== 'target')
    throw new ConfigError(
      `sparse_ft: density_of must be 'model' or 'target', found '${String(r.densityOf)}'`,
    );
  return r;
}

/** k per target: see the file comment (at least 1, at most the target's size). */
export function sparseBudget(
  sizes: readonly number[],
  totalParameters: number,
  density: number,
  densityOf: 'model' | 'target',
): number[] {
  const targetTotal = sizes.reduce((s, n) => s + n, 0);
  return sizes.map((n) => {
    const k =
      densityOf === 'target'
        ? Math.round(density * n)
        : Math.floor((density * totalParameters * n) / targetTotal);
    return Math.max(1, Math.min(n, k));
  });
}

interface LayerState {
  name: string;
  layer: SparseDeltaLinear;
  /** Sum of W's dense gradient over the current window (regrow 'gradient'), or null. */
  accum: Float32Array | null;
  /** SM3-I accumulators of the matrix's rows and columns (regrow 'sm3'). */
  row: Float64Array | null;
  col: Float64Array | null;
}

/** Rows and columns of a weight as stored ([out, in], or [in, out] for a Conv1D). */
function matrixShape(layer: SparseDeltaLinear): [number, number] {
  return layer.weight.shape as [number, number];
}

/** Sparse fine-tuning's adapter; see the file comment. */
export class SparseFtAdapter implements Adapter {
  readonly method = 'sparse_ft';
  private detached = false;
  private readonly layers: LayerState[];

  /** Use the 'sparse_ft' tuner. */
  constructor(
    readonly model: Module,
    readonly config: Resolved,
    private readonly savedTargets: string[] | string,
    layers: [string, SparseDeltaLinear][],
    private readonly trainableFlags: ReadonlyMap<Parameter, boolean>,
  ) {
    this.layers = layers.map(([name, layer]) => {
      const [rows, cols] = matrixShape(layer);
      const sm3 = config.regrow === 'sm3';
      return {
        name,
        layer,
        accum: null,
        row: sm3 ? new Float64Array(rows) : null,
        col: sm3 ? new Float64Array(cols) : null,
      };
    });
  }

  private check(action: string): void {
    if (this.detached)
      throw new ConfigError(`sparse_ft: cannot ${action}: the adapter was unloaded from the model`);
  }

  /** The adapted layers with their dotted names. */
  get sparseLayers(): [string, SparseDeltaLinear][] {
    return this.layers.map((l) => [l.name, l.layer]);
  }

  /** Whether every layer's delta is folded into its weight. */
  get merged(): boolean {
    return this.layers.length > 0 && this.layers.every((l) => l.layer.merged);
  }

  /** The values of every target, `<module>.sft_delta.values`. */
  namedTrainableParameters(): [string, Parameter][] {
    return this.layers.map((l) => [`${l.name}.sft_delta.values`, l.layer.sft_delta.values]);
  }

  /** The values of every target. */
  trainableParameters(): Parameter[] {
    return this.layers.map((l) => l.layer.sft_delta.values);
  }

  /** `<module>.sft_delta.indices` (i32, live view) and `.values` of every target. */
  state(): Map<string, Tensor> {
    const out = new Map<string, Tensor>();
    for (const l of this.layers) {
      const d = l.layer.sft_delta;
      out.set(`${l.name}.sft_delta.indices`, Tensor.wrap(d.indices, [d.indices.length], { track: false }));
      out.set(`${l.name}.sft_delta.values`, d.values);
    }
    return out;
  }

  merge(): void {
    for (const l of this.layers) l.layer.merge();
  }

  unmerge(): void {
    for (const l of this.layers) l.layer.unmerge();
  }

  // --- schedule -------------------------------------------------------------------------------

  private inWindow(step: number): boolean {
    return (step - 1) % this.config.reselectionSteps < this.config.accumulationSteps;
  }

  /** Whether the indices are reselected after `step`. */
  isReselectionStep(step: number, totalSteps: number): boolean {
    const { reselectionSteps: R, accumulationSteps: A } = this.config;
    return step < totalSteps && (step - 1) % R === A - 1;
  }

  /** The step after which the window containing `step` ends with a reselection. */
  private windowEnd(step: number): number {
    const R = this.config.reselectionSteps;
    return Math.floor((step - 1) / R) * R + this.config.accumulationSteps;
  }

  /** During a gradient window that ends in a reselection, W's dense gradient is computed. */
  beginStep(step: number, totalSteps: number): void {
    const dense =
      this.config.regrow === 'gradient' && this.inWindow(step) && this.windowEnd(step) < totalSteps;
    for (const l of this.layers) {
      if (dense && !l.layer.weight.requiresGrad) l.layer.weight.requiresGrad = true;
      if (!dense && l.layer.weight.requiresGrad) l.layer.weight.freeze();
    }
  }

  /** Add W's dense gradient to the window's sum (and release it); update the SM3 accumulators. */
  afterBackward(): void {
    for (const l of this.layers) {
      const w = l.layer.weight;
      if (w.requiresGrad) {
        if (w.grad) {
          const g = w.grad.data as Float32Array;
          const acc = (l.accum ??= new Float32Array(g.length));
          for (let i = 0; i < g.length; i++) acc[i] = acc[i]! + g[i]!;
        }
        w.freeze();
      }
      if (l.row && l.col) this.accumulateSm3(l);
    }
  }

  private accumulateSm3(l: LayerState): void {
    const g = l.layer.sft_delta.values.grad;
    if (!g) return;
    const gd = g.data as Float32Array;
    const idx = l.layer.sft_delta.indices;
    const [rows, cols] = matrixShape(l.layer);
    const rowMax = new Float64Array(rows);
    const colMax = new Float64Array(cols);
    for (let j = 0; j < idx.length; j++) {
      const r = Math.floor(idx[j]! / cols);
      const c = idx[j]! - r * cols;
      const g2 = gd[j]! * gd[j]!;
      if (g2 > rowMax[r]!) rowMax[r] = g2;
      if (g2 > colMax[c]!) colMax[c] = g2;
    }
    for (let r = 0; r < rows; r++) l.row![r] = l.row![r]! + rowMax[r]!;
    for (let c = 0; c < cols; c++) l.col![c] = l.col![c]! + colMax[c]!;
  }

  /** Drop and regrow after a reselection step; see the file comment. */
  afterStep(step: number, totalSteps: number, optimizer: OptimizerAccess): void {
    if (!this.isReselectionStep(step, totalSteps)) return;
    const first = this.config.initialReselection && step === this.config.accumulationSteps;
    const rate = first ? 1 : this.config.dropRate * (1 - step / totalSteps);
    for (const l of this.layers) {
      const slots = this.reselect(l, rate);
      if (slots.length > 0) optimizer.resetEntries(l.layer.sft_delta.values, slots);
      l.accum = null;
    }
  }

  /** Reselect one layer's indices, dropping `rate * k`; returns the replaced slots. */
  private reselect(l: LayerState, rate: number): Int32Array {
    const delta = l.layer.sft_delta;
    const k = delta.indices.length;
    const nDrop = Math.min(k, Math.floor(rate * k + 1e-9));
    if (nDrop === 0) return new Int32Array(0);
    const v = delta.values.data as Float32Array;
    // the nDrop smallest |value| (ties: lower slot)
    const negAbs = new Float64Array(k);
    for (let j = 0; j < k; j++) negAbs[j] = -Math.abs(v[j]!);
    const dropped = largestPositions(negAbs, nDrop);
    const numel = l.layer.weight.size;
    const kept = new Uint8Array(numel);
    const isDropped = new Uint8Array(k);
    for (const s of dropped) isDropped[s] = 1;
    for (let j = 0; j < k; j++) if (!isDropped[j]) kept[delta.indices[j]!] = 1;
    const grown = largestPositions(this.regrowScores(l), nDrop, kept);
    const indices = Int32Array.from(delta.indices);
    for (let i = 0; i < dropped.length; i++) {
      const slot = dropped[i]!;
      indices[slot] = grown[i]!;
      v[slot] = 0;
    }
    delta.indices = indices;
    return dropped;
  }

  private regrowScores(l: LayerState): Float64Array {
    const numel = l.layer.weight.size;
    const scores = new Float64Array(numel);
    if (l.row && l.col) {
      const [rows, cols] = matrixShape(l.layer);
      for (let r = 0; r < rows; r++) {
        const rr = l.row[r]!;
        for (let c = 0; c < cols; c++) scores[r * cols + c] = Math.min(rr, l.col[c]!);
      }
    } else if (l.accum) {
      for (let i = 0; i < numel; i++) scores[i] = Math.abs(l.accum[i]!);
    }
    return scores;
  }

  // --- resume ---------------------------------------------------------------------------------

  /** Indices, and the window's gradient sum / the SM3 accumulators when present (copies). */
  trainingState(): Map<string, Tensor> {
    const out = new Map<string, Tensor>();
    for (const l of this.layers) {
      const idx = l.layer.sft_delta.indices;
      out.set(`${l.name}.indices`, Tensor.wrap(Int32Array.from(idx), [idx.length], { track: false }));
      if (l.accum)
        out.set(`${l.name}.accum`, Tensor.wrap(l.accum.slice(), [l.accum.length], { track: false }));
      if (l.row && l.col) {
        out.set(`${l.name}.sm3_row`, Tensor.wrap(Float32Array.from(l.row), [l.row.length], { track: false }));
        out.set(`${l.name}.sm3_col`, Tensor.wrap(Float32Array.from(l.col), [l.col.length], { track: false }));
      }
    }
    return out;
  }

  /** Restore `trainingState()`; validated first. */
  loadTrainingState(state: ReadonlyMap<string, Tensor>): void {
    const where = 'sparse_ft: checkpoint state';
    const known = new Set<string>();
    for (const l of this.layers) {
      const idx = state.get(`${l.name}.indices`);
      known.add(`${l.name}.indices`);
      if (idx?.dtype !== 'i32' || idx.size !== l.layer.sft_delta.indices.length)
        throw new TensorMismatchError(
          `${where}: '${l.name}.indices' is missing or not i32 [${l.layer.sft_delta.indices.length}]`,
        );
      checkIndices(idx.data as Int32Array, l.layer.weight.size, `${where}: '${l.name}.indices'`);
      const [rows, cols] = matrixShape(l.layer);
      for (const [key, n] of [
        ['accum', l.layer.weight.size],
        ['sm3_row', rows],
        ['sm3_col', cols],
      ] as const) {
        const t = state.get(`${l.name}.${key}`);
        known.add(`${l.name}.${key}`);
        if (t && (t.dtype !== 'f32' || t.size !== n))
          throw new TensorMismatchError(`${where}: '${l.name}.${key}' must be f32 [${n}]`);
      }
    }
    const extra = [...state.keys()].filter((n) => !known.has(n));
    if (extra.length > 0)
      throw new TensorMismatchError(`${where}: unexpected tensor(s) ${extra.slice(0, 3).join(', ')}`);
    for (const l of this.layers) {
      l.layer.sft_delta.indices = Int32Array.from(state.get(`${l.name}.indices`)!.data as Int32Array);
      const accum = state.get(`${l.name}.accum`);
      l.accum = accum ? Float32Array.from(accum.data as Float32Array) : null;
      const row = state.get(`${l.name}.sm3_row`);
      const col = state.get(`${l.name}.sm3_col`);
      if (l.row && row) l.row.set(row.data as Float32Array);
      if (l.col && col) l.col.set(col.data as Float32Array);
    }
  }

  // --- files ----------------------------------------------------------------------------------

  /** adapter_config.json's object. */
  adapterConfigJson(options: SaveAdapterOptions = {}): JsonObject {
    const c = this.config;
    return {
      base_model_name_or_path: options.baseModelNameOrPath ?? null,
      peft_type: SPARSE_FT_PEFT_TYPE,
      task_type: 'CAUSAL_LM',
      target_modules: this.layers.map((l) => l.name),
      target_modules_requested: this.savedTargets as string[] | string,
      density: c.density,
      density_of: c.densityOf,
      num_entries: this.layers.reduce((s, l) => s + l.layer.sft_delta.indices.length, 0),
      reselection_steps: c.reselectionSteps,
      accumulation_steps: c.accumulationSteps,
      drop_rate: c.dropRate,
      regrow: c.regrow,
    };
  }

  /** Write adapter_model.safetensors (indices I32, values F32 per target), then adapter_config.json. */
  save(dir: string, options: SaveAdapterOptions = {}): void {
    this.check('save');
    const tensors = new Map<string, Tensor>();
    for (const l of this.layers) {
      const d = l.layer.sft_delta;
      const values =
        d.values.dtype === 'f32'
          ? d.values
          : Tensor.wrap(Float32Array.from(d.values.data as Float64Array), [d.values.size], { track: false });
      tensors.set(
        `${PEFT_KEY_PREFIX}${l.name}.sft_delta.indices`,
        Tensor.wrap(d.indices, [d.indices.length], { track: false }),
      );
      tensors.set(`${PEFT_KEY_PREFIX}${l.name}.sft_delta.values`, values);
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
      const loaded: [LayerState, Int32Array, Tensor][] = [];
      const known = new Set<string>();
      for (const l of this.layers) {
        const ik = `${PEFT_KEY_PREFIX}${l.name}.sft_delta.indices`;
        const vk = `${PEFT_KEY_PREFIX}${l.name}.sft_delta.values`;
        known.add(ik);
        known.add(vk);
        if (!reader.has(ik) || !reader.has(vk))
          throw new TensorMismatchError(
            `${file}: missing tensor '${reader.has(ik) ? vk : ik}'; nothing was loaded`,
          );
        const k = l.layer.sft_delta.indices.length;
        for (const key of [ik, vk])
          if (reader.info(key).shape.join() !== String(k))
            throw new TensorMismatchError(
              `${file}: tensor '${key}' has shape [${reader.info(key).shape.join(',')}], expected [${k}]; nothing was loaded`,
            );
        const idx = reader.read(ik);
        if (idx.dtype !== 'i32')
          throw new TensorMismatchError(
            `${file}: tensor '${ik}' must be an integer tensor; nothing was loaded`,
          );
        const indices = Int32Array.from(idx.data as Int32Array);
        try {
          checkIndices(indices, l.layer.weight.size, `${file}: tensor '${ik}'`);
        } catch (e) {
          throw new FormatError(file, (e as Error).message.replace(`${file}: `, ''));
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
        l.layer.sft_delta.indices = indices;
        l.layer.sft_delta.values.copyFrom(values, true);
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
    for (const l of this.layers) this.model.setSubmodule(l.name, l.layer.toLinear());
    restoreTrainable(this.trainableFlags);
    this.detached = true;
    return this.model;
  }

  /** Fold the deltas into the weights and put the plain layers back. */
  mergeAndUnload(): Module {
    this.check('merge and unload');
    this.merge();
    for (const l of this.layers) this.model.setSubmodule(l.name, l.layer.toLinear());
    restoreTrainable(this.trainableFlags);
    this.detached = true;
    return this.model;
  }
}

const targetModulesOption = z.union([z.array(z.string()).min(1), z.string()]);

/** The sparse_ft options of a training config. */
export const sparseFtOptions = z.object({
  density: z.number().gt(0).max(1).default(0.01).describe('fraction of parameters trained'),
  density_of: z
    .enum(['model', 'target'])
    .default('model')
    .describe("'model': density of all parameters, split among targets by size; 'target': of each target"),
  target_modules: targetModulesOption
    .default('all-linear')
    .describe("modules given a sparse delta (PEFT's target_modules rules)"),
  exclude_modules: targetModulesOption
    .nullable()
    .default(null)
    .describe('modules to skip even when targeted'),
  reselection_steps: z
    .number()
    .int()
    .positive()
    .default(20)
    .describe('steps between drop-and-regrow reselections'),
  accumulation_steps: z
    .number()
    .int()
    .positive()
    .default(5)
    .describe('steps whose dense gradient is accumulated before each reselection'),
  drop_rate: z
    .number()
    .min(0)
    .max(1)
    .default(0.2)
    .describe('fraction of entries dropped per reselection, decayed linearly to 0'),
  regrow: z
    .enum(['gradient', 'sm3'])
    .default('gradient')
    .describe('regrowth criterion: accumulated |gradient|, or the SM3 row x column moment estimate'),
  initial_reselection: z.boolean().default(true).describe('the first reselection replaces all entries'),
});

/** The 'sparse_ft' tuner. */
export const sparseFtTuner: Tuner<SparseFtConfig> = {
  name: 'sparse_ft',
  description: 'sparse fine-tuning (SpIEL): k trainable deltas per matrix, dropped and regrown on schedule',
  peftType: SPARSE_FT_PEFT_TYPE,
  options: sparseFtOptions,
  fromOptions(options, context): SparseFtConfig {
    const o = sparseFtOptions.parse(options);
    return {
      density: o.density,
      densityOf: o.density_of,
      targetModules: o.target_modules,
      excludeModules: o.exclude_modules,
      reselectionSteps: o.reselection_steps,
      accumulationSteps: o.accumulation_steps,
      dropRate: o.drop_rate,
      regrow: o.regrow,
      initialReselection: o.initial_reselection,
      seed: context.seed,
    };
  },
  configFromAdapterJson(json, file): SparseFtConfig {
    if (json.peft_type !== SPARSE_FT_PEFT_TYPE)
      throw new FormatError(file, `peft_type is ${JSON.stringify(json.peft_type)}, expected "SPARSE_FT"`);
    const targets = json.target_modules;
    if (!Array.isArray(targets) || targets.length === 0 || targets.some((t) => typeof t !== 'string'))
      throw new FormatError(file, "'target_modules' must be a non-empty list of module names");
    const density = json.density;
    if (typeof density !== 'number') throw new FormatError(file, "'density' must be a number");
    const densityOf = json.density_of ?? 'model';
    if (densityOf !== 'model' && densityOf !== 'target')
      throw new FormatError(
        file,
        `'density_of' must be "model" or "target", found ${JSON.stringify(densityOf)}`,
      );
    // exact module paths: a path matches itself (and nothing shorter)
    return { targetModules: targets as string[], density, densityOf };
  },
  apply(model, config = {}) {
    const c = resolve(config);
    const { modules, saved } = selectTargetModules<Linear | Conv1D>(model, c.targetModules, {
      exclude: c.excludeModules,
      method: 'sparse_ft',
      supported: [Linear, Conv1D],
    });
    const heads = outputLayerNames(model);
    const head = modules.find(([name]) => heads.has(name));
    if (head)
      throw new ConfigError(
        `sparse_ft: target '${head[0]}' is the LM head, which the model applies through its fused loss kernel; leave it out of target_modules`,
      );
    const total = model.numParameters();
    const ks = sparseBudget(
      modules.map(([, m]) => m.weight.size),
      total,
      c.density,
      c.densityOf,
    );
    const rng = new Rng(c.seed);
    const layers = modules.map(([name, m], i): [string, SparseDeltaLinear] => [
      name,
      new SparseDeltaLinear(m, randomPositions(m.weight.size, ks[i]!, rng)),
    ]);
    const flags = snapshotTrainable(model);
    model.freeze();
    for (const [name, layer] of layers) model.setSubmodule(name, layer);
    return new SparseFtAdapter(model, c, saved, layers, flags);
  },
};

registerTuner('sparse_ft', sparseFtTuner);
