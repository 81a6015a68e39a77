/**
 * SparseDeltaLinear: a Linear (or GPT-2 Conv1D) with a trainable sparse delta,
 * `y = x (W + scatter(values at indices))^T + b` — sparse fine-tuning's layer.
 *
 * It takes the adapted layer's place in the module tree, registers that layer's `weight` and `bias`
 * (the same Parameter objects, frozen) under their own names, and a child `sft_delta` holding the
 * trainable `values` [k] and the k flat indices into the weight (in the weight's own layout: [out,
 * in] for a Linear, [in, out] for a Conv1D). So the Hub names stay `...q_proj.weight` and the delta's
 * are `...q_proj.sft_delta.values` / `.indices`, the names its files use. The forward is the
 * `sparseDeltaLinear` op (see its file for what it costs).
 */
import { ConfigError } from '../errors.ts';
import { Conv1D, type Linear, Module, Parameter } from '../nn/index.ts';
import { add, formatShape, reshape, sparseDeltaLinear, type Tensor } from '../tensor/index.ts';
import type { TunerLayer } from './targets.ts';

/** The k trainable values and their flat positions in one weight. */
export class SparseDelta extends Module {
  /** The trainable deltas [k]. */
  readonly values: Parameter;
  /** Flat positions in the weight (k distinct, in [0, numel)); replaced by regrowth. */
  indices: Int32Array;

  /** k values (zero) at `indices`, in `dtype` (f32 or f64). */
  constructor(indices: Int32Array, dtype: 'f32' | 'f64') {
    super();
    this.indices = indices;
    this.values = this.registerParameter('values', Parameter.zeros([indices.length], dtype));
  }
}

/** Throws unless `indices` are k distinct integers in [0, numel) (`where` names the tensor). */
export function checkIndices(indices: Int32Array, numel: number, where: string): void {
  const seen = new Uint8Array(numel);
  for (let j = 0; j < indices.length; j++) {
    const i = indices[j]!;
    if (!(i >= 0 && i < numel))
      throw new RangeError(`${where}: index ${i} (entry ${j}) is outside the weight's ${numel} entries`);
    if (seen[i]) throw new RangeError(`${where}: index ${i} appears twice (entry ${j})`);
    seen[i] = 1;
  }
}

/** A Linear with a trainable sparse delta; see the file comment. */
export class SparseDeltaLinear extends Module implements TunerLayer {
  readonly isTunerLayer = true;
  readonly inFeatures: number;
  readonly outFeatures: number;
  weight: Parameter;
  bias: Parameter | null;
  readonly sft_delta: SparseDelta;
  /** The replaced layer (its weight and bias are this layer's). */
  readonly base: Linear | Conv1D;
  /** Whether the weight is stored [in, out] (a Conv1D). */
  readonly fanInFanOut: boolean;
  private backup: Float32Array | Float64Array | null = null;

  /** Wrap `base` with k = indices.length zero deltas at `indices` (validated). */
  constructor(base: Linear | Conv1D, indices: Int32Array) {
    super();
    const w = base.weight;
    if (w.dtype !== 'f32' && w.dtype !== 'f64')
      throw new ConfigError(
        `sparse_ft: ${w.describe()} is ${w.dtype}; sparse deltas need an f32 (or f64) base weight: load the model in f32`,
      );
    checkIndices(indices, w.size, `sparse_ft: indices of ${w.describe()}`);
    this.base = base;
    this.fanInFanOut = base instanceof Conv1D;
    this.inFeatures = base.inFeatures;
    this.outFeatures = base.outFeatures;
    this.training = base.training;
    this.weight = this.registerParameter('weight', base.weight);
    this.bias = this.registerParameter('bias', base.bias);
    this.sft_delta = this.registerModule('sft_delta', new SparseDelta(indices, w.dtype));
    this.sft_delta.training = base.training;
  }

  /** Whether the delta is folded into the weight. */
  get merged(): boolean {
    return this.backup !== null;
  }

  /** x [..., in] -> [..., out]. When merged, the plain (updated) weight only. */
  forward(x: Tensor): Tensor {
    if (x.rank === 0 || x.shape[x.rank - 1] !== this.inFeatures)
      throw new RangeError(
        `SparseDeltaLinear(${this.inFeatures} -> ${this.outFeatures}): input ${formatShape(x.shape)} must end in ${this.inFeatures}`,
      );
    if (this.merged) return this.base.forward(x);
    const flat = x.rank === 2 ? x : reshape(x, [-1, this.inFeatures]);
    let y = sparseDeltaLinear(flat, this.weight, this.sft_delta.values, this.sft_delta.indices, {
      transB: !this.fanInFanOut,
    });
    if (this.bias) y = add(y, this.bias);
    return x.rank === 2 ? y : reshape(y, [...x.shape.slice(0, -1), this.outFeatures]);
  }

  /** W[indices] += values (no-op when merged); the original entries are kept for `unmerge`. */
  merge(): void {
    if (this.merged) return;
    const w = this.weight.data as Float32Array | Float64Array;
    const v = this.sft_delta.values.data as Float32Array | Float64Array;
    const idx = this.sft_delta.indices;
    const backup = w instanceof Float64Array ? new Float64Array(idx.length) : new Float32Array(idx.length);
    for (let j = 0; j < idx.length; j++) {
      backup[j] = w[idx[j]!]!;
      w[idx[j]!] = w[idx[j]!]! + v[j]!;
    }
    this.backup = backup;
  }

  /** Restore the weight's original entries exactly (no-op when not merged). */
  unmerge(): void {
    if (!this.backup) return;
    const w = this.weight.data as Float32Array | Float64Array;
    const idx = this.sft_delta.indices;
    for (let j = 0; j < idx.length; j++) w[idx[j]!] = this.backup[j]!;
    this.backup = null;
  }

  /** The replaced layer, to put back in the tree (merge first to keep the delta). */
  toLinear(): Linear | Conv1D {
    this.backup = null;
    this.base.train(this.training);
    return this.base;
  }
}
