/**
 * DseeLinear: a Linear with a LoRA update and a sparse residual,
 * `y = x (W + scatter(values at indices))^T + scaling * B A x + b` — DSEE's layer. W is frozen;
 * A [r, in], B [out, r] and the k values train. The sparse part is the `sparseDeltaLinear` op
 * (gradient at the k entries only); the LoRA part two small GEMMs, as LoraLinear's.
 *
 * Names: `...<module>.weight` / `.bias` (the base's Parameters), `.lora_A.weight`, `.lora_B.weight`
 * (PEFT's) and `.sft_delta.values` / `.indices` (sparse FT's). Merging adds both updates into W and,
 * with `pruneRatio` > 0, then zeroes the `pruneRatio` fraction of smallest-|w| entries of the merged
 * weight (DSEE's magnitude pruning of the final weights); unmerge restores W exactly.
 */
import { ConfigError } from '../errors.ts';
import { type Conv1D, Linear, Module, type Parameter } from '../nn/index.ts';
import {
  add,
  formatShape,
  matmul,
  mulScalar,
  noGrad,
  type Rng,
  reshape,
  scope,
  sparseDeltaLinear,
  type Tensor,
} from '../tensor/index.ts';
import { SparseDelta } from './sparse-delta-linear.ts';
import type { TunerLayer } from './targets.ts';
import { largestPositions } from './top-k.ts';

export interface DseeLinearOptions {
  r: number;
  scaling: number;
  /** Flat positions of the sparse residual in W ([out, in]). */
  indices: Int32Array;
  /** Draws A (kaiming-uniform, as PEFT's LoRA). */
  rng: Rng;
  /** Fraction of the merged weight's entries zeroed by magnitude at merge (default 0). */
  pruneRatio?: number;
}

/** A Linear with LoRA + a sparse residual; see the file comment. */
export class DseeLinear extends Module implements TunerLayer {
  readonly isTunerLayer = true;
  readonly inFeatures: number;
  readonly outFeatures: number;
  weight: Parameter;
  bias: Parameter | null;
  readonly lora_A: Linear;
  readonly lora_B: Linear;
  readonly sft_delta: SparseDelta;
  readonly scaling: number;
  readonly pruneRatio: number;
  readonly base: Linear;
  private backup: Float32Array | Float64Array | null = null;

  /** Wrap `base` (a Linear with an f32 / f64 weight). */
  constructor(base: Linear | Conv1D, options: DseeLinearOptions) {
    super();
    if (!(base instanceof Linear))
      throw new ConfigError('dsee: only Linear layers are supported (not GPT-2 Conv1D)');
    const w = base.weight;
    if (w.dtype !== 'f32' && w.dtype !== 'f64')
      throw new ConfigError(`dsee: ${w.describe()} is ${w.dtype}; load the model in f32 for dsee`);
    this.base = base;
    this.inFeatures = base.inFeatures;
    this.outFeatures = base.outFeatures;
    this.scaling = options.scaling;
    this.pruneRatio = options.pruneRatio ?? 0;
    this.training = base.training;
    this.weight = this.registerParameter('weight', base.weight);
    this.bias = this.registerParameter('bias', base.bias);
    const dtype = w.dtype;
    this.lora_A = this.registerModule(
      'lora_A',
      new Linear(this.inFeatures, options.r, { bias: false, dtype, init: 'zeros', pinPrecision: 'f32' }),
    );
    this.lora_B = this.registerModule(
      'lora_B',
      new Linear(options.r, this.outFeatures, { bias: false, dtype, init: 'zeros', pinPrecision: 'f32' }),
    );
    // kaiming_uniform_(a = sqrt 5): bound 1 / sqrt(in), as PEFT's LoRA; B = 0 so the model starts as the base
    const bound = 1 / Math.sqrt(this.inFeatures);
    this.lora_A.weight.fillWith(() => bound * (2 * options.rng.uniform() - 1));
    this.sft_delta = this.registerModule('sft_delta', new SparseDelta(options.indices, dtype));
    for (const m of [this.lora_A, this.lora_B, this.sft_delta]) m.training = base.training;
  }

  /** Whether the updates are folded into the weight. */
  get merged(): boolean {
    return this.backup !== null;
  }

  /** x [..., in] -> [..., out]. */
  forward(x: Tensor): Tensor {
    if (x.rank === 0 || x.shape[x.rank - 1] !== this.inFeatures)
      throw new RangeError(
        `DseeLinear(${this.inFeatures} -> ${this.outFeatures}): input ${formatShape(x.shape)} must end in ${this.inFeatures}`,
      );
    if (this.merged) return this.base.forward(x);
    const flat = x.rank === 2 ? x : reshape(x, [-1, this.inFeatures]);
    let y = sparseDeltaLinear(flat, this.weight, this.sft_delta.values, this.sft_delta.indices);
    const update = this.lora_B.forward(this.lora_A.forward(flat));
    y = add(y, this.scaling === 1 ? update : mulScalar(update, this.scaling));
    if (this.bias) y = add(y, this.bias);
    return x.rank === 2 ? y : reshape(y, [...x.shape.slice(0, -1), this.outFeatures]);
  }

  /** W += scaling B A + scatter(values), then the magnitude pruning (no-op when merged). */
  merge(): void {
    if (this.merged) return;
    const w = this.weight.data as Float32Array | Float64Array;
    this.backup = w.slice();
    noGrad(() =>
      scope(() => {
        const d = matmul(this.lora_B.weight, this.lora_A.weight).data as Float32Array | Float64Array;
        for (let i = 0; i < w.length; i++) w[i] = w[i]! + this.scaling * d[i]!;
      }),
    );
    const v = this.sft_delta.values.data as Float32Array | Float64Array;
    const idx = this.sft_delta.indices;
    for (let j = 0; j < idx.length; j++) w[idx[j]!] = w[idx[j]!]! + v[j]!;
    const pruned = Math.floor(this.pruneRatio * w.length);
    if (pruned > 0) {
      const negAbs = Float64Array.from(w, (a) => -Math.abs(a));
      for (const p of largestPositions(negAbs, pruned)) w[p] = 0;
    }
  }

  /** Restore the weight exactly (no-op when not merged). */
  unmerge(): void {
    if (!this.backup) return;
    (this.weight.data as Float32Array | Float64Array).set(this.backup);
    this.backup = null;
  }

  /** The replaced layer, to put back in the tree (merge first to keep the update). */
  toLinear(): Linear {
    this.backup = null;
    this.base.train(this.training);
    return this.base;
  }
}
