/**
 * SaRA ("SaRA: High-Efficient Diffusion Model Fine-tuning with Progressive Sparse Low-Rank
 * Adaptation"), registered as the tuner 'sara' (peft_type "SARA"). The paper fine-tunes diffusion
 * models (Stable Diffusion); Attune applies the same rule to decoder LMs' linear layers.
 *
 * Rule: per target matrix W (default all linear layers except the LM head), the `ratio` fraction of
 * entries with the smallest |W| (the "temporarily ineffective" parameters; the paper finds 10-20% of
 * a diffusion model's; default 0.1) train as a zero-initialised sparse delta
 * (`W_eff = W + scatter(values)`, the SparseDeltaLinear of sparse_ft / lt_sft / s2ft); every other
 * parameter is frozen and bit-identical. The released code selects by an absolute threshold
 * (|w| < 2e-3 in its README); a fraction is the same rule made independent of the weights' scale.
 *
 * Low-rank constraint: each optimizer step adds `lambda_rank * ||D||_*` to the loss, where D is the
 * dense delta matrix of ONE target drawn at random (as the released code does), among targets whose
 * smaller dimension exceeds `rank_min_dim` (64 in the code; all targets when none does). The draw
 * is a pure function of (seed, step), so a resumed run draws the same matrices. The term is built
 * as `lambda * sum(G * values)` with G = (U V^T) at the delta's indices from D's SVD: its value is
 * exactly lambda * sum(s) (since <D, U V^T> = tr(S)) and its gradient is the nuclear norm's
 * (sub)gradient U V^T restricted to the trainable entries. Deviations: the code's term is the
 * nuclear norm of the masked weight (W * mask), we penalise the delta (what is learned); the
 * progressive re-selection at `progressive_iter` and the paper's unstructured-backprop memory trick
 * are not implemented (the sparse-delta op already keeps no dense gradient of W).
 *
 * Files: the sparse delta layout of docs/formats.md (sparse-delta-adapter.ts) with `target_modules`
 * + `target_entries`, so loading rebuilds the layers and `export --merge` folds them.
 */
import { z } from 'zod';
import { ConfigError, FormatError } from '../errors.ts';
import { Conv1D, Linear, type Module, mixSeed, type Parameter } from '../nn/index.ts';
import { mul, Rng, sum, svd, Tensor } from '../tensor/index.ts';
import {
  installSparseDeltas,
  SparseDeltaAdapter,
  type SparseEntries,
  sparseEntriesFromJson,
} from './sparse-delta-adapter.ts';
import type { SparseDeltaLinear } from './sparse-delta-linear.ts';
import { outputLayerNames, selectTargetModules, type TargetModules } from './targets.ts';
import { largestPositions } from './top-k.ts';
import { type AuxiliaryLoss, registerTuner, snapshotTrainable, type Tuner } from './tuner.ts';

/** The peft_type of sara adapter directories (Attune's own). */
export const SARA_PEFT_TYPE = 'SARA';

export interface SaraConfig {
  /** Fraction of each target's entries (smallest |w|) that trains (default 0.1). */
  ratio?: number;
  targetModules?: TargetModules;
  excludeModules?: TargetModules | null;
  /** Weight of the nuclear-norm term (default 1e-3; 0 turns it off). */
  lambdaRank?: number;
  /** Only targets whose smaller dimension exceeds this get the nuclear-norm term (default 64). */
  rankMinDim?: number;
  /** Seed of the per-step matrix draw (the run's train.seed). */
  seed?: number;
  /** Exact targets and entry counts (an adapter directory being loaded). */
  stored?: SparseEntries;
}

/** Positions of the k = round(ratio * numel) (at least 1) smallest |w| of `w`, ascending. */
export function saraPositions(w: ArrayLike<number>, ratio: number): Int32Array {
  const k = Math.max(1, Math.round(ratio * w.length));
  const scores = new Float64Array(w.length);
  for (let i = 0; i < w.length; i++) scores[i] = -Math.abs(w[i]!);
  return largestPositions(scores, k);
}

/**
 * ||D||_* and its (sub)gradient U V^T for the dense `rows` x `cols` matrix `d` (row-major f64);
 * singular values at rounding level are left out of U V^T. Null gradient when D is zero.
 */
export function nuclearNormGrad(
  d: Float64Array,
  rows: number,
  cols: number,
): { value: number; grad: Float64Array | null } {
  let frob = 0;
  for (let i = 0; i < d.length; i++) frob += d[i]! * d[i]!;
  if (frob === 0) return { value: 0, grad: null };
  const { s, u, v } = svd({ rows, cols, data: d });
  const k = s.length;
  const tol = s[0]! * Math.max(rows, cols) * 2 ** -52;
  const grad = new Float64Array(rows * cols);
  let value = 0;
  for (let r = 0; r < k; r++) {
    value += s[r]!;
    if (s[r]! <= tol) continue;
    for (let i = 0; i < rows; i++) {
      const ui = u!.data[i * u!.cols + r]!;
      if (ui === 0) continue;
      for (let j = 0; j < cols; j++) grad[i * cols + j]! += ui * v!.data[j * v!.cols + r]!;
    }
  }
  return { value, grad };
}

/** The dense delta of `layer` as a [out, in] row-major f64 matrix (a Conv1D's [in, out] transposed). */
function denseDelta(layer: SparseDeltaLinear): { d: Float64Array; rows: number; cols: number } {
  const rows = layer.outFeatures;
  const cols = layer.inFeatures;
  const d = new Float64Array(rows * cols);
  const v = layer.sft_delta.values.data as Float32Array | Float64Array;
  const idx = layer.sft_delta.indices;
  for (let j = 0; j < idx.length; j++) {
    const p = idx[j]!;
    // weight layout: [out, in] (Linear) or [in, out] (Conv1D)
    const pos = layer.fanInFanOut ? (p % rows) * cols + Math.floor(p / rows) : p;
    d[pos] = v[j]!;
  }
  return { d, rows, cols };
}

/** SaRA's adapter: a SparseDeltaAdapter with the nuclear-norm term; see the file comment. */
export class SaraAdapter extends SparseDeltaAdapter {
  private step = 1;
  /** Positions in `layers` eligible for the nuclear-norm term. */
  readonly rankTargets: number[];

  /** Use the 'sara' tuner. */
  constructor(
    model: Module,
    layers: [string, SparseDeltaLinear][],
    flags: ReadonlyMap<Parameter, boolean>,
    private readonly lambdaRank: number,
    rankMinDim: number,
    private readonly seed: number,
    json: Record<string, number>,
  ) {
    super('sara', SARA_PEFT_TYPE, model, layers, flags, () => json);
    const big = layers.flatMap(([, l], i) => (Math.min(l.inFeatures, l.outFeatures) > rankMinDim ? [i] : []));
    this.rankTargets = big.length > 0 ? big : layers.map((_, i) => i);
  }

  /** Remember the step: the nuclear-norm term's matrix is drawn from (seed, step). */
  beginStep(step: number): void {
    this.step = step;
  }

  /** The layer (position in `sparseLayers`) whose delta gets the nuclear-norm term at `step`. */
  rankTargetAt(step: number): number {
    const rng = new Rng(mixSeed(mixSeed(this.seed >>> 0, 0x5a7a), step));
    return this.rankTargets[rng.int(this.rankTargets.length)]!;
  }

  /** lambda_rank * ||D||_* of this step's drawn target, differentiable in its values (null when 0). */
  auxiliaryLoss(): AuxiliaryLoss | null {
    if (this.lambdaRank === 0) return null;
    const layer = this.layers[this.rankTargetAt(this.step)]![1];
    const { d, rows, cols } = denseDelta(layer);
    const { value, grad } = nuclearNormGrad(d, rows, cols);
    if (!grad) return null;
    const values = layer.sft_delta.values;
    const idx = layer.sft_delta.indices;
    const g = values.dtype === 'f64' ? new Float64Array(idx.length) : new Float32Array(idx.length);
    for (let j = 0; j < idx.length; j++) {
      const p = idx[j]!;
      const pos = layer.fanInFanOut ? (p % rows) * cols + Math.floor(p / rows) : p;
      g[j] = this.lambdaRank * grad[pos]!;
    }
    const term = sum(mul(values, Tensor.wrap(g, [idx.length], { track: false })));
    return { value: term, parts: { sara_nuclear: this.lambdaRank * value } };
  }
}

const targetModulesOption = z.union([z.array(z.string()).min(1), z.string()]);

/** The sara options of a training config. */
export const saraOptions = z.object({
  ratio: z
    .number()
    .gt(0)
    .max(1)
    .default(0.1)
    .describe('fraction of each target matrix (its smallest |w|) that trains as a sparse delta'),
  target_modules: targetModulesOption
    .default('all-linear')
    .describe("matrices adapted (PEFT's target_modules rules; the LM head is refused)"),
  exclude_modules: targetModulesOption
    .nullable()
    .default(null)
    .describe('modules to skip even when targeted'),
  lambda_rank: z
    .number()
    .min(0)
    .default(1e-3)
    .describe('weight of the nuclear norm of one random target delta per step (0: off)'),
  rank_min_dim: z
    .number()
    .int()
    .min(0)
    .default(64)
    .describe('only targets whose smaller dimension exceeds this get the nuclear-norm term'),
});

/** The 'sara' tuner. */
export const saraTuner: Tuner<SaraConfig> = {
  name: 'sara',
  description:
    'SaRA: the smallest-|w| fraction of each matrix trains as a sparse delta, with a nuclear-norm low-rank penalty',
  peftType: SARA_PEFT_TYPE,
  options: saraOptions,
  fromOptions(options, context): SaraConfig {
    const o = saraOptions.parse(options);
    return {
      ratio: o.ratio,
      targetModules: o.target_modules,
      excludeModules: o.exclude_modules,
      lambdaRank: o.lambda_rank,
      rankMinDim: o.rank_min_dim,
      seed: context.seed,
    };
  },
  configFromAdapterJson(json, file): SaraConfig {
    if (json.peft_type !== SARA_PEFT_TYPE)
      throw new FormatError(file, `peft_type is ${JSON.stringify(json.peft_type)}, expected "SARA"`);
    return { stored: sparseEntriesFromJson(json, file) };
  },
  apply(model, config = {}) {
    const ratio = config.ratio ?? 0.1;
    const lambdaRank = config.lambdaRank ?? 1e-3;
    const rankMinDim = config.rankMinDim ?? 64;
    if (!(ratio > 0 && ratio <= 1)) throw new ConfigError(`sara: ratio must be in (0, 1], found ${ratio}`);
    if (!(lambdaRank >= 0)) throw new ConfigError(`sara: lambda_rank must be >= 0, found ${lambdaRank}`);
    const stored = config.stored;
    const { modules } = selectTargetModules<Linear | Conv1D>(
      model,
      stored?.targets ?? config.targetModules ?? 'all-linear',
      {
        exclude: stored ? null : (config.excludeModules ?? null),
        method: 'sara',
        supported: [Linear, Conv1D],
      },
    );
    const heads = outputLayerNames(model);
    for (const [name, m] of modules) {
      if (heads.has(name))
        throw new ConfigError(
          `sara: target '${name}' is the LM head, which the model applies through its fused loss kernel; leave it out of target_modules`,
        );
      if (m.weight.dtype !== 'f32' && m.weight.dtype !== 'f64')
        throw new ConfigError(`sara: '${name}.weight' is ${m.weight.dtype}; load the model in f32 for sara`);
    }
    if (stored) {
      const names = modules.map(([n]) => n);
      if (names.join() !== stored.targets.join())
        throw new ConfigError(`sara: the stored target_modules do not all match modules of this model`);
      modules.forEach(([n, m], i) => {
        if (stored.entries[i]! > m.weight.size)
          throw new ConfigError(
            `sara: '${n}' has ${m.weight.size} entries, fewer than the stored ${stored.entries[i]}`,
          );
      });
    }
    const flags = snapshotTrainable(model);
    // a stored adapter gets placeholder positions; load() reads the real ones
    const layers = installSparseDeltas(model, modules, (i) =>
      stored
        ? Int32Array.from({ length: stored.entries[i]! }, (_, j) => j)
        : saraPositions(modules[i]![1].weight.data as Float32Array, ratio),
    );
    return new SaraAdapter(model, layers, flags, lambdaRank, rankMinDim, config.seed ?? 0, {
      ratio,
      lambda_rank: lambdaRank,
      rank_min_dim: rankMinDim,
    });
  },
};

registerTuner('sara', saraTuner);
