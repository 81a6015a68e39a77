/**
 * IntrinsicLinear: a Linear (or GPT-2 Conv1D) whose weight is `W_0 + reshape(P z)`, with z [d]
 * the intrinsic vector shared by every target (held, not registered: the adapter owns it) and P
 * this layer's fixed projection. P z fills the weight in its stored layout (row-major [out, in]
 * for a Linear, [in, out] for a Conv1D).
 *
 * P z is computed once for a value of z: the layer keeps the last delta with a copy of the z it
 * came from and reuses it while z is unchanged (an O(d) comparison), so the micro-batches of a
 * step and every token of a generation share one projection; the backward runs P^T once per
 * backward pass (the `project` op).
 */

import type { FloatArray } from '../backend/kernels.ts';
import { ConfigError } from '../errors.ts';
import { Conv1D, type Linear, Module, type Parameter } from '../nn/index.ts';
import {
  add,
  formatShape,
  matmul,
  project,
  reshape,
  type Tensor,
  type VectorProjection,
} from '../tensor/index.ts';
import type { TunerLayer } from './targets.ts';

/** A Linear whose weight is W_0 + P z; see the file comment. */
export class IntrinsicLinear extends Module implements TunerLayer {
  readonly isTunerLayer = true;
  readonly inFeatures: number;
  readonly outFeatures: number;
  weight: Parameter;
  bias: Parameter | null;
  /** The replaced layer (its weight and bias are this layer's). */
  readonly base: Linear | Conv1D;
  /** Whether the weight is stored [in, out] (a Conv1D). */
  readonly fanInFanOut: boolean;
  private backup: FloatArray | null = null;
  private cache: { z: FloatArray; delta: FloatArray } | null = null;

  /** Wrap `base`; `z` is the shared intrinsic vector, `projection` maps it to this weight's entries. */
  constructor(
    base: Linear | Conv1D,
    readonly z: Parameter,
    readonly projection: VectorProjection,
  ) {
    super();
    const w = base.weight;
    if (w.dtype !== 'f32' && w.dtype !== 'f64')
      throw new ConfigError(
        `intrinsic_dim: ${w.describe()} is ${w.dtype}; the projected delta needs an f32 (or f64) base weight: load the model in f32`,
      );
    if (projection.outSize !== w.size || projection.inSize !== z.size)
      throw new RangeError(
        `intrinsic_dim: projection ${projection.inSize} -> ${projection.outSize} does not fit z [${z.size}] and ${w.describe()}`,
      );
    this.base = base;
    this.fanInFanOut = base instanceof Conv1D;
    this.inFeatures = base.inFeatures;
    this.outFeatures = base.outFeatures;
    this.training = base.training;
    this.weight = this.registerParameter('weight', base.weight);
    this.bias = this.registerParameter('bias', base.bias);
  }

  /** Whether P z is folded into the weight. */
  get merged(): boolean {
    return this.backup !== null;
  }

  /** P z for z's current values (cached while z is unchanged; the arrays are the layer's). */
  delta(): FloatArray {
    const zd = this.z.data as FloatArray;
    const c = this.cache;
    if (c && c.z.length === zd.length && c.delta.constructor === zd.constructor) {
      let same = true;
      for (let i = 0; i < zd.length; i++)
        if (c.z[i] !== zd[i]) {
          same = false;
          break;
        }
      if (same) return c.delta;
    }
    const delta =
      zd instanceof Float64Array ? new Float64Array(this.weight.size) : new Float32Array(this.weight.size);
    this.projection.forward(zd, delta);
    this.cache = { z: zd.slice(), delta };
    return delta;
  }

  /** x [..., in] -> [..., out] through W_0 + P z (the base path only when merged). */
  forward(x: Tensor): Tensor {
    if (x.rank === 0 || x.shape[x.rank - 1] !== this.inFeatures)
      throw new RangeError(
        `IntrinsicLinear(${this.inFeatures} -> ${this.outFeatures}): input ${formatShape(x.shape)} must end in ${this.inFeatures}`,
      );
    if (this.merged) return this.base.forward(x);
    const flat = x.rank === 2 ? x : reshape(x, [-1, this.inFeatures]);
    const w = add(this.weight, reshape(project(this.z, this.projection, this.delta()), this.weight.shape));
    let y = matmul(flat, w, { transB: !this.fanInFanOut });
    if (this.bias) y = add(y, this.bias);
    return x.rank === 2 ? y : reshape(y, [...x.shape.slice(0, -1), this.outFeatures]);
  }

  /** W += P z (no-op when merged); the original weight is kept for an exact `unmerge`. */
  merge(): void {
    if (this.merged) return;
    const w = this.weight.data as FloatArray;
    const delta = this.delta();
    this.backup = w.slice();
    for (let i = 0; i < w.length; i++) w[i] = w[i]! + delta[i]!;
  }

  /** Restore the original weight exactly (no-op when not merged). */
  unmerge(): void {
    if (!this.backup) return;
    (this.weight.data as FloatArray).set(this.backup);
    this.backup = null;
  }

  /** The replaced layer, to put back in the tree (merge first to keep the update). */
  toLinear(): Linear | Conv1D {
    this.backup = null;
    this.cache = null;
    this.base.train(this.training);
    return this.base;
  }
}
