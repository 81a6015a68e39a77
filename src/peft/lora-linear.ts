/**
 * LoraLinear: a Linear layer with a low-rank update, `y = x W^T + b + scaling * B(A(dropout(x)))`
 * (Hu et al.; PEFT's `lora.Linear`).
 *
 * It takes the place of the adapted Linear in the module tree and registers that layer's own
 * `weight` and `bias` Parameters (the same objects) under the same local names, plus the children
 * `lora_A` (Linear in -> r, weight [r, in]), `lora_B` (Linear r -> out, weight [out, r]) and
 * `lora_dropout`. So the base keeps its Hub names (`...q_proj.weight`) and the adapter's are
 * `...q_proj.lora_A.weight` / `...q_proj.lora_B.weight`, PEFT's names without the adapter name.
 * The replaced Linear is kept (unregistered) to be put back by `unload`.
 *
 * GPT-2's `Conv1D` (weight stored [in, out]) is adapted the same way, as PEFT does with
 * `fan_in_fan_out: true`: lora_A / lora_B keep their [r, in] / [out, r] shapes, the base path is
 * `x W + b`, and merging adds `scaling * (B A)^T` to the [in, out] weight.
 *
 * Numerics: the LoRA matrices are f32 (f64 when the base weight is f64, for gradient checks);
 * a bf16 base weight stays frozen bf16 storage. Merging adds `scaling * B A` (computed by the matmul
 * kernel in f32, or f64) to W: into an f32 weight with f32 rounding, so unmerge restores W to
 * within about 1 ulp; into a bf16 weight with bf16 rounding (relative error up to 2^-9 per element,
 * the precision PEFT's merge into a bf16 model has too) — the original bf16 bits are kept while
 * merged (one bf16 copy of the matrix) so `unmerge` restores them exactly. Under compute precision
 * 'bf16' (`setComputePrecision`, bf16-mixed training) the base GEMM takes bf16 inputs with f32
 * accumulation, while lora_A / lora_B are pinned to f32 (small GEMMs, trainable weights).
 */
import { ConfigError } from '../errors.ts';
import { Conv1D, Dropout, Linear, Module, type Parameter } from '../nn/index.ts';
import {
  add,
  type ComputePrecision,
  formatShape,
  matmul,
  mulScalar,
  noGrad,
  type Rng,
  readElement,
  reshape,
  scope,
  type Tensor,
  toBf16Bits,
} from '../tensor/index.ts';
import type { TunerLayer } from './targets.ts';

/** How A is initialised (B is always zero, so the adapted model starts equal to the base). */
export type LoraInit = 'kaiming' | 'gaussian';

export interface LoraLinearOptions {
  /** Rank r of the update. */
  r: number;
  /** Multiplier of B A: lora_alpha / r, or lora_alpha / sqrt(r) for rsLoRA. */
  scaling: number;
  /** Dropout rate on the LoRA path's input (default 0). */
  dropout?: number;
  /**
   * 'kaiming' (PEFT's default, `init_lora_weights=True`): A ~ U(-1/sqrt(in), 1/sqrt(in)), which is
   * kaiming_uniform_(a = sqrt 5); 'gaussian': A ~ N(0, (1/r)^2). Default 'kaiming'.
   */
  init?: LoraInit;
  /** Draws A and the dropout seed. */
  rng: Rng;
}

/** A Linear with a trainable low-rank update; see the file comment. */
export class LoraLinear extends Module implements TunerLayer {
  /** Marks a layer a tuner put in the tree (targets are never looked for inside it). */
  readonly isTunerLayer = true;
  readonly inFeatures: number;
  readonly outFeatures: number;
  /** The adapted layer's weight [out, in] ([in, out] for a Conv1D; the same Parameter object, frozen by the tuner). */
  weight: Parameter;
  /** The adapted layer's bias [out], or null. */
  bias: Parameter | null;
  readonly lora_A: Linear;
  readonly lora_B: Linear;
  readonly lora_dropout: Dropout;
  /** The rank r. */
  readonly r: number;
  /** Multiplier of B A. */
  scaling: number;
  /** The Linear (or Conv1D) this layer replaced (its weight and bias are this layer's). */
  readonly base: Linear | Conv1D;
  /** Whether the base weight is stored [in, out] (a Conv1D: PEFT's `fan_in_fan_out`). */
  readonly fanInFanOut: boolean;
  /** Precision of the base GEMM x W^T (see `Module.setComputePrecision`); inherited from the base. */
  computePrecision: ComputePrecision;
  private bf16Backup: Uint16Array | null = null;
  private isMerged = false;

  /** Wrap `base` with a rank-r update (A drawn from `options.rng`, B = 0). */
  constructor(base: Linear | Conv1D, options: LoraLinearOptions) {
    super();
    const { r, scaling } = options;
    if (!Number.isInteger(r) || r <= 0)
      throw new ConfigError(`LoRA: r must be a positive integer, found ${r}`);
    if (!Number.isFinite(scaling))
      throw new ConfigError(`LoRA: scaling must be a finite number, found ${scaling}`);
    this.base = base;
    this.fanInFanOut = base instanceof Conv1D;
    this.inFeatures = base.inFeatures;
    this.outFeatures = base.outFeatures;
    this.r = r;
    this.scaling = scaling;
    this.training = base.training;
    this.computePrecision = base.computePrecision;
    this.weight = this.registerParameter('weight', base.weight);
    this.bias = this.registerParameter('bias', base.bias);
    const dtype = base.weight.dtype === 'f64' ? 'f64' : 'f32';
    this.lora_dropout = this.registerModule(
      'lora_dropout',
      new Dropout(options.dropout ?? 0, { rng: options.rng }),
    );
    this.lora_A = this.registerModule(
      'lora_A',
      new Linear(this.inFeatures, r, { bias: false, dtype, init: 'zeros', pinPrecision: 'f32' }),
    );
    this.lora_B = this.registerModule(
      'lora_B',
      new Linear(r, this.outFeatures, { bias: false, dtype, init: 'zeros', pinPrecision: 'f32' }),
    );
    const init = options.init ?? 'kaiming';
    const rng = options.rng;
    if (init === 'kaiming') {
      // kaiming_uniform_(a = sqrt 5): gain sqrt(2 / (1 + 5)), bound gain * sqrt(3 / fan_in) = 1 / sqrt(in)
      const bound = 1 / Math.sqrt(this.inFeatures);
      this.lora_A.weight.fillWith(() => bound * (2 * rng.uniform() - 1));
    } else if (init === 'gaussian') {
      const std = 1 / r;
      this.lora_A.weight.fillWith(() => std * rng.normal());
    } else {
      throw new ConfigError(`LoRA: init must be 'kaiming' or 'gaussian', found '${String(init)}'`);
    }
    for (const m of [this.lora_dropout, this.lora_A, this.lora_B]) m.training = base.training;
  }

  /** Whether `scaling * B A` is currently folded into `weight`. */
  get merged(): boolean {
    return this.isMerged;
  }

  protected override applyComputePrecision(precision: ComputePrecision): void {
    this.computePrecision = precision;
  }

  /** x [..., in] (rank >= 1) -> [..., out]. When merged, only the (updated) base path runs. */
  forward(x: Tensor): Tensor {
    if (x.rank === 0 || x.shape[x.rank - 1] !== this.inFeatures) {
      throw new RangeError(
        `LoraLinear(${this.inFeatures} -> ${this.outFeatures}): input ${formatShape(x.shape)} must end in ${this.inFeatures}`,
      );
    }
    if (x.rank === 1) return reshape(this.forward(reshape(x, [1, x.shape[0]!])), [this.outFeatures]);
    let y = matmul(x, this.weight, { transB: !this.fanInFanOut, precision: this.computePrecision });
    if (this.bias) y = add(y, this.bias);
    if (this.isMerged) return y;
    const update = this.lora_B.forward(this.lora_A.forward(this.lora_dropout.forward(x)));
    return add(y, this.scaling === 1 ? update : mulScalar(update, this.scaling));
  }

  /**
   * Call `f` with the values of B A in the weight's layout: [out, in], or (B A)^T = A^T B^T
   * [in, out] for a Conv1D (unscaled; computed by the matmul kernel, untracked).
   */
  private withDelta(f: (values: ArrayLike<number>) => void): void {
    noGrad(() =>
      scope(() => {
        const delta = this.fanInFanOut
          ? matmul(this.lora_A.weight, this.lora_B.weight, { transA: true, transB: true })
          : matmul(this.lora_B.weight, this.lora_A.weight);
        f(delta.data as Float32Array | Float64Array);
      }),
    );
  }

  /** The update `scaling * B A` in the weight's layout ([out, in]; [in, out] for a Conv1D) as a new f64 array. */
  deltaWeight(): Float64Array {
    const out = new Float64Array(this.outFeatures * this.inFeatures);
    this.withDelta((d) => {
      for (let i = 0; i < out.length; i++) out[i] = this.scaling * d[i]!;
    });
    return out;
  }

  /** W += scaling * B A (no-op when merged). See the file comment for bf16 weights. */
  merge(): void {
    if (this.isMerged) return;
    const w = this.weight.data;
    const s = this.scaling;
    this.withDelta((d) => {
      if (w instanceof Uint16Array) {
        this.bf16Backup = Uint16Array.from(w);
        for (let i = 0; i < w.length; i++) w[i] = toBf16Bits(readElement(w, i) + s * d[i]!);
      } else {
        const wf = w as Float32Array | Float64Array;
        for (let i = 0; i < wf.length; i++) wf[i] = wf[i]! + s * d[i]!;
      }
    });
    this.isMerged = true;
  }

  /** W -= scaling * B A (no-op when not merged); a bf16 weight gets its original bits back. */
  unmerge(): void {
    if (!this.isMerged) return;
    const w = this.weight.data;
    if (w instanceof Uint16Array) {
      w.set(this.bf16Backup!);
      this.bf16Backup = null;
    } else {
      const s = this.scaling;
      const wf = w as Float32Array | Float64Array;
      this.withDelta((d) => {
        for (let i = 0; i < wf.length; i++) wf[i] = wf[i]! - s * d[i]!;
      });
    }
    this.isMerged = false;
  }

  /**
   * The plain Linear (or Conv1D) to put back in the tree (the replaced layer, holding this layer's
   * weight and bias). Call `merge()` first to keep the update; any bf16 backup is dropped.
   */
  toLinear(): Linear | Conv1D {
    if (this.base.weight !== this.weight) this.base.setParameter('weight', this.weight);
    if (this.base.bias !== this.bias && this.bias) this.base.setParameter('bias', this.bias);
    this.bf16Backup = null;
    this.base.train(this.training);
    this.base.computePrecision = this.computePrecision;
    return this.base;
  }
}
