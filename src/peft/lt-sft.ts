/**
 * Lottery-ticket sparse fine-tuning (LT-SFT: "Composable Sparse Fine-Tuning for Cross-Lingual
 * Transfer"), registered as the tuner 'lt_sft'. Two phases within one run's `train.steps`:
 *
 * 1. full phase, steps 1..P with P = round(full_fraction * steps) (default half, clamped to
 *    [1, steps - 1]): every target matrix W trains densely in place (the other parameters stay
 *    frozen: only the targets' entries can be kept);
 * 2. after step P, per target the k entries of largest |W - W0| are kept (k: `density` of all
 *    parameters split by target size, as sparse_ft's budget, sparse-ft.ts), W is reset to W0
 *    bit for bit, and steps P+1..steps train only those k entries as a sparse delta from zero
 *    (`reset_values: false` starts them at the phase-1 change instead).
 *
 * The optimizer covers both phases' parameters (W of the targets, then the k values; each is frozen
 * outside its phase: no gradient, skipped by the optimizer). The learning-rate schedule spans the
 * whole run (the paper restarts it per phase). W0 is a copy of the targets taken at `apply`, kept
 * during phase 1 only; a resumed run retakes it from the freshly loaded base.
 *
 * Files: the sparse_ft layout exactly (`peft_type: "SPARSE_FT"`, the same `density` /
 * `density_of`, hence the same k per target), so the adapter loads as a sparse_ft adapter,
 * `attune export --merge` folds it, and `sparse_sum` merges compose several by addition.
 */
import { z } from 'zod';
import { ConfigError, TensorMismatchError } from '../errors.ts';
import { Conv1D, Linear, type Module, type Parameter } from '../nn/index.ts';
import { Tensor } from '../tensor/index.ts';
import { installSparseDeltas, SparseDeltaAdapter } from './sparse-delta-adapter.ts';
import { checkIndices, type SparseDeltaLinear } from './sparse-delta-linear.ts';
import { SPARSE_FT_PEFT_TYPE, sparseBudget } from './sparse-ft.ts';
import { outputLayerNames, selectTargetModules, type TargetModules } from './targets.ts';
import { largestPositions } from './top-k.ts';
import {
  type OptimizerAccess,
  registerTuner,
  type SaveAdapterOptions,
  snapshotTrainable,
  type Tuner,
} from './tuner.ts';

export interface LtSftConfig {
  /** Fraction of all parameters kept (default 0.01). */
  density?: number;
  /** 'model': density of all parameters split by target size (default); 'target': of each target. */
  densityOf?: 'model' | 'target';
  /** PEFT-style target_modules (default 'all-linear', the LM head excluded). */
  targetModules?: TargetModules;
  excludeModules?: TargetModules | null;
  /** Fraction of the steps spent in the full phase (default 0.5). */
  fullFraction?: number;
  /** Start the kept entries at 0 (default true, the paper's reset) or at their phase-1 change. */
  resetValues?: boolean;
}

type Resolved = Required<LtSftConfig>;

function resolve(c: LtSftConfig): Resolved {
  const r: Resolved = {
    density: c.density ?? 0.01,
    densityOf: c.densityOf ?? 'model',
    targetModules: c.targetModules ?? 'all-linear',
    excludeModules: c.excludeModules ?? null,
    fullFraction: c.fullFraction ?? 0.5,
    resetValues: c.resetValues ?? true,
  };
  if (!(r.density > 0 && r.density <= 1))
    throw new ConfigError(`lt_sft: density must be in (0, 1], found ${r.density}`);
  if (!(r.fullFraction > 0 && r.fullFraction < 1))
    throw new ConfigError(`lt_sft: full_fraction must be in (0, 1), found ${r.fullFraction}`);
  if (r.densityOf !== 'model' && r.densityOf !== 'target')
    throw new ConfigError(`lt_sft: density_of must be 'model' or 'target', found '${String(r.densityOf)}'`);
  return r;
}

/** The last step (1-based) of the full phase of a `totalSteps` run: round(fraction * steps) in [1, steps - 1]. */
export function ltSftFullSteps(totalSteps: number, fullFraction: number): number {
  if (!Number.isInteger(totalSteps) || totalSteps < 2)
    throw new ConfigError(
      `lt_sft: train.steps must be at least 2 (a full phase and a sparse phase), found ${totalSteps}`,
    );
  return Math.min(totalSteps - 1, Math.max(1, Math.round(fullFraction * totalSteps)));
}

/** LT-SFT's adapter: dense W in phase 1, a SparseDeltaAdapter in phase 2; see the file comment. */
export class LtSftAdapter extends SparseDeltaAdapter {
  private sparsePhase = false;
  /** W0 of every target during the full phase (null after the switch). */
  private originals: (Float32Array | Float64Array)[] | null;

  /** Use the 'lt_sft' tuner. */
  constructor(
    model: Module,
    readonly config: Resolved,
    layers: [string, SparseDeltaLinear][],
    flags: ReadonlyMap<Parameter, boolean>,
  ) {
    super('lt_sft', SPARSE_FT_PEFT_TYPE, model, layers, flags, () => ({
      density: config.density,
      density_of: config.densityOf,
      method: 'lt_sft',
      full_fraction: config.fullFraction,
      reset_values: config.resetValues,
    }));
    this.originals = layers.map(([, l]) => (l.weight.data as Float32Array | Float64Array).slice());
    for (const [, l] of layers) {
      l.weight.unfreeze();
      l.sft_delta.values.freeze();
    }
  }

  /** Whether the sparse phase has begun (the entries are chosen). */
  get inSparsePhase(): boolean {
    return this.sparsePhase;
  }

  /** The targets' W (full phase) and the k values (sparse phase): every parameter the run trains. */
  override namedTrainableParameters(): [string, Parameter][] {
    const values = super.namedTrainableParameters();
    if (this.sparsePhase) return values;
    return [...this.layers.map(([n, l]): [string, Parameter] => [`${n}.weight`, l.weight]), ...values];
  }

  /** Switch to the sparse phase after the full phase's last step. */
  afterStep(step: number, totalSteps: number, _optimizer: OptimizerAccess): void {
    if (!this.sparsePhase && step >= ltSftFullSteps(totalSteps, this.config.fullFraction))
      this.selectAndReset();
  }

  /** Keep the top-k |W - W0| per target, reset W to W0, train only those entries from here on. */
  selectAndReset(): void {
    const originals = this.originals;
    if (this.sparsePhase || !originals) return;
    this.layers.forEach(([, l], i) => {
      const w = l.weight.data as Float32Array | Float64Array;
      const w0 = originals[i]!;
      const change = new Float64Array(w.length);
      for (let j = 0; j < w.length; j++) change[j] = Math.abs(w[j]! - w0[j]!);
      const delta = l.sft_delta;
      const kept = largestPositions(change, delta.indices.length);
      const v = delta.values.data as Float32Array | Float64Array;
      for (let j = 0; j < kept.length; j++) v[j] = this.config.resetValues ? 0 : w[kept[j]!]! - w0[kept[j]!]!;
      delta.indices = kept;
      w.set(w0);
      l.weight.freeze();
      delta.values.unfreeze();
    });
    this.originals = null;
    this.sparsePhase = true;
  }

  /** In the sparse phase: the chosen indices (W and the values are checkpointed as parameters). */
  trainingState(): Map<string, Tensor> {
    const out = new Map<string, Tensor>();
    if (!this.sparsePhase) return out;
    for (const [n, l] of this.layers) {
      const idx = l.sft_delta.indices;
      out.set(`${n}.indices`, Tensor.wrap(Int32Array.from(idx), [idx.length], { track: false }));
    }
    return out;
  }

  /** Restore `trainingState()` (validated first): indices present means the sparse phase had begun. */
  loadTrainingState(state: ReadonlyMap<string, Tensor>): void {
    if (state.size === 0) return;
    const where = 'lt_sft: checkpoint state';
    const known = new Set(this.layers.map(([n]) => `${n}.indices`));
    const extra = [...state.keys()].filter((k) => !known.has(k));
    if (extra.length > 0)
      throw new TensorMismatchError(`${where}: unexpected tensor(s) ${extra.slice(0, 3).join(', ')}`);
    for (const [n, l] of this.layers) {
      const t = state.get(`${n}.indices`);
      const k = l.sft_delta.indices.length;
      if (t?.dtype !== 'i32' || t.size !== k)
        throw new TensorMismatchError(`${where}: '${n}.indices' is missing or not i32 [${k}]`);
      checkIndices(t.data as Int32Array, l.weight.size, `${where}: '${n}.indices'`);
    }
    for (const [n, l] of this.layers) {
      l.sft_delta.indices = Int32Array.from(state.get(`${n}.indices`)!.data as Int32Array);
      l.weight.freeze();
      l.sft_delta.values.unfreeze();
    }
    this.originals = null;
    this.sparsePhase = true;
  }

  private requireSparse(action: string): void {
    if (!this.sparsePhase)
      throw new ConfigError(
        `lt_sft: cannot ${action} during the full phase: the sparse entries are chosen after step round(full_fraction * steps)`,
      );
  }

  /** Write the sparse delta (sparse phase only). */
  override save(dir: string, options: SaveAdapterOptions = {}): void {
    this.requireSparse('save');
    super.save(dir, options);
  }

  /** Fold the deltas in (sparse phase only). */
  override merge(): void {
    this.requireSparse('merge');
    super.merge();
  }

  /** Fold the deltas in and remove the layers (sparse phase only). */
  override mergeAndUnload(): Module {
    this.requireSparse('merge');
    return super.mergeAndUnload();
  }

  /** Remove the method: in the full phase W is put back to W0 first. */
  override unload(): Module {
    if (this.originals) {
      const originals = this.originals;
      this.layers.forEach(([, l], i) => {
        (l.weight.data as Float32Array | Float64Array).set(originals[i]!);
      });
      this.originals = null;
    }
    return super.unload();
  }
}

const targetModulesOption = z.union([z.array(z.string()).min(1), z.string()]);

/** The lt_sft options of a training config. */
export const ltSftOptions = z.object({
  density: z.number().gt(0).max(1).default(0.01).describe('fraction of parameters kept for the sparse phase'),
  density_of: z
    .enum(['model', 'target'])
    .default('model')
    .describe("'model': density of all parameters, split among targets by size; 'target': of each target"),
  target_modules: targetModulesOption
    .default('all-linear')
    .describe("matrices fine-tuned and sparsified (PEFT's target_modules rules)"),
  exclude_modules: targetModulesOption
    .nullable()
    .default(null)
    .describe('modules to skip even when targeted'),
  full_fraction: z
    .number()
    .gt(0)
    .lt(1)
    .default(0.5)
    .describe('fraction of train.steps spent in the dense phase before the top-k selection'),
  reset_values: z
    .boolean()
    .default(true)
    .describe('the kept entries restart from 0 (true, the paper) or from their dense-phase change'),
});

/** The 'lt_sft' tuner. */
export const ltSftTuner: Tuner<LtSftConfig> = {
  name: 'lt_sft',
  description:
    'lottery-ticket sparse fine-tuning: dense phase, keep the top-k |delta| per matrix, reset, retrain those entries',
  // writes SPARSE_FT adapters, which the sparse_ft tuner loads
  peftType: null,
  options: ltSftOptions,
  inPlace: true,
  fromOptions(options, context): LtSftConfig {
    const o = ltSftOptions.parse(options);
    // a run too short for two phases is refused before it starts
    if (context.steps !== undefined) ltSftFullSteps(context.steps, o.full_fraction);
    return {
      density: o.density,
      densityOf: o.density_of,
      targetModules: o.target_modules,
      excludeModules: o.exclude_modules,
      fullFraction: o.full_fraction,
      resetValues: o.reset_values,
    };
  },
  apply(model, config = {}) {
    const c = resolve(config);
    const { modules } = selectTargetModules<Linear | Conv1D>(model, c.targetModules, {
      exclude: c.excludeModules,
      method: 'lt_sft',
      supported: [Linear, Conv1D],
    });
    const heads = outputLayerNames(model);
    const head = modules.find(([name]) => heads.has(name));
    if (head)
      throw new ConfigError(
        `lt_sft: target '${head[0]}' is the LM head, which the model applies through its fused loss kernel; leave it out of target_modules`,
      );
    for (const [name, m] of modules)
      if (m.weight.dtype !== 'f32' && m.weight.dtype !== 'f64')
        throw new ConfigError(
          `lt_sft: '${name}.weight' is ${m.weight.dtype}; load the model in f32 for lt_sft`,
        );
    const ks = sparseBudget(
      modules.map(([, m]) => m.weight.size),
      model.numParameters(),
      c.density,
      c.densityOf,
    );
    const flags = snapshotTrainable(model);
    // placeholder positions 0..k-1 with zero values until the selection after the full phase
    const layers = installSparseDeltas(model, modules, (i) =>
      Int32Array.from({ length: ks[i]! }, (_, j) => j),
    );
    return new LtSftAdapter(model, c, layers, flags);
  },
};

registerTuner('lt_sft', ltSftTuner);
