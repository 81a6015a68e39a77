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
 *
 * Options PEFT's LoraConfig has too: `useDora` adds DoRA's trainable magnitude vector
 * `lora_magnitude_vector` [out] (see dora.ts for the forward, merge and unmerge), and the PiSSA /
 * OLoRA inits (lora-init.ts) start A and B from the SVD / QR of W and replace W by the residual
 * W - scaling B A; the initial A0, B0 are kept (`initialLora`) for the conversion to a plain LoRA
 * and so `toLinear()` without merging can give back W = residual + scaling B0 A0.
 *
 * KaSA (`kasa`, PEFT's `kasa_config`): W is replaced by its SVD truncation without its r smallest
 * singular components (kept as triplets so `restoreBaseWeight` can add them back), and the update
 * is `scaling * B diag(lora_diag) A` with a trainable `lora_diag` [r] (PEFT's key name).
 */
import { ConfigError } from '../errors.ts';
import { Conv1D, Dropout, Linear, Module, Parameter, QuantizedParameter } from '../nn/index.ts';
import {
  add,
  type ComputePrecision,
  formatShape,
  type Matrix64,
  matmul,
  matmul64,
  matrix64,
  mul,
  mulScalar,
  noGrad,
  type Rng,
  readElement,
  reshape,
  scope,
  svd,
  Tensor,
  tensorToMatrix64,
  toBf16Bits,
  transpose64,
} from '../tensor/index.ts';
import { type CordaEigens, cordaInit } from './corda.ts';
import {
  type DoraOperands,
  doraDelta,
  doraMergedWeight,
  doraUnmergedWeight,
  doraWeightNorm,
} from './dora.ts';
import { isMutatingInit, type LoraInit, mutatingInit } from './lora-init.ts';
import type { TunerLayer } from './targets.ts';

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
  /** DoRA: a trainable magnitude per output feature (default false). */
  useDora?: boolean;
  /** KaSA: truncate W by its r smallest singular components and train a diagonal between A and B (default false). */
  kasa?: boolean;
  /** The CorDA triplets of this layer (needed by, and only by, init 'corda'; corda.ts). */
  cordaEigens?: CordaEigens;
  /**
   * PEFT's `lora_bias`: lora_B gets a trainable bias b [out], zero-initialised, so the update is
   * `scaling * (B A x + b)`; merging adds `scaling * b` to the base bias (default false).
   */
  loraBias?: boolean;
  /** Draws A and the dropout seed. */
  rng: Rng;
}

/** A LoRA layer's rank and scaling, checked the same way for every layer kind (Linear, Embedding). */
export function checkLoraRankAndScaling(r: number, scaling: number): void {
  if (!Number.isInteger(r) || r <= 0) throw new ConfigError(`LoRA: r must be a positive integer, found ${r}`);
  if (!Number.isFinite(scaling))
    throw new ConfigError(`LoRA: scaling must be a finite number, found ${scaling}`);
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
  /** DoRA's magnitude m [out] (null without DoRA). */
  readonly lora_magnitude_vector: Parameter | null;
  /** A0 [r, in] and B0 [out, r] of a PiSSA / OLoRA / CorDA init (f64 copies; null for other inits). */
  readonly initialLora: { a: Matrix64; b: Matrix64 } | null = null;
  /** Precision of the base GEMM x W^T (see `Module.setComputePrecision`); inherited from the base. */
  computePrecision: ComputePrecision;
  /** KaSA's trainable diagonal lambda [r] between A and B (null without KaSA). */
  readonly lora_diag: Parameter | null;
  /** The r smallest singular triplets KaSA removed from W (u [out, r], s [r], v [in, r]); null without KaSA. */
  readonly kasaRemoved: { u: Matrix64; s: Float64Array; v: Matrix64 } | null = null;
  private bf16Backup: Uint16Array | null = null;
  /** DoRA's norm of the unmerged weights, kept while merged (PEFT caches it for unmerge). */
  private mergedNorm: Tensor | null = null;
  private isMerged = false;

  /** Wrap `base` with a rank-r update (A drawn from `options.rng`, B = 0). */
  constructor(base: Linear | Conv1D, options: LoraLinearOptions) {
    super();
    const { r, scaling } = options;
    checkLoraRankAndScaling(r, scaling);
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
      new Linear(r, this.outFeatures, {
        bias: options.loraBias ?? false,
        dtype,
        init: 'zeros',
        pinPrecision: 'f32',
      }),
    );
    const init = options.init ?? 'kaiming';
    // a quantised base (model_dtype int8 / nf4) has no element values to read
    if (
      base.weight instanceof QuantizedParameter &&
      (options.useDora || options.kasa || isMutatingInit(init))
    )
      throw new ConfigError(
        `LoRA: ${options.useDora ? 'DoRA (use_dora)' : options.kasa ? 'KaSA' : `init_lora_weights '${init}'`} needs the values of '${base.weight.name ?? 'weight'}', which model_dtype ${base.weight.format} stores quantised; use model_dtype f32 or bf16`,
      );
    if (options.loraBias && (init !== 'kaiming' || options.useDora || options.kasa)) {
      throw new ConfigError(
        `LoRA: lora_bias ${options.useDora ? 'is not supported with DoRA (use_dora), as in PEFT' : options.kasa ? 'is not supported with KaSA' : `is supported only with init_lora_weights true, as in PEFT, found '${init}'`}`,
      );
    }
    const rng = options.rng;
    if (isMutatingInit(init)) {
      if (init === 'olora' && this.fanInFanOut) {
        throw new ConfigError(
          "LoRA: init_lora_weights 'olora' does not support Conv1D (fan_in_fan_out) layers: PEFT's olora_init decomposes the stored [in, out] weight; use 'pissa'",
        );
      }
      if (init === 'corda' && (this.fanInFanOut || !options.cordaEigens)) {
        throw new ConfigError(
          this.fanInFanOut
            ? "LoRA: init_lora_weights 'corda' supports Linear layers only (PEFT's CorDA targets nn.Linear), not Conv1D"
            : "LoRA: init_lora_weights 'corda' needs the layer's CorDA triplets (cordaEigens)",
        );
      }
      const w = tensorToMatrix64(base.weight);
      const { a, b, residual } =
        init === 'corda'
          ? cordaInit(w, options.cordaEigens!, scaling, dtype)
          : mutatingInit(this.fanInFanOut ? transpose64(w) : w, init, r, scaling, dtype);
      this.lora_A.weight.fillWith((i) => a.data[i]!);
      this.lora_B.weight.fillWith((i) => b.data[i]!);
      const stored = this.fanInFanOut ? transpose64(residual) : residual;
      this.weight.fillWith((i) => stored.data[i]!);
      this.initialLora = { a, b };
    } else if (init === 'kaiming') {
      // kaiming_uniform_(a = sqrt 5): gain sqrt(2 / (1 + 5)), bound gain * sqrt(3 / fan_in) = 1 / sqrt(in)
      const bound = 1 / Math.sqrt(this.inFeatures);
      this.lora_A.weight.fillWith(() => bound * (2 * rng.uniform() - 1));
    } else if (init === 'gaussian') {
      const std = 1 / r;
      this.lora_A.weight.fillWith(() => std * rng.normal());
    } else {
      throw new ConfigError(
        `LoRA: init must be 'kaiming', 'gaussian', 'pissa', 'pissa_niter_N' or 'olora', found '${String(init)}'`,
      );
    }
    for (const m of [this.lora_dropout, this.lora_A, this.lora_B]) m.training = base.training;
    let diag: Parameter | null = null;
    if (options.kasa) {
      if (this.fanInFanOut || options.useDora || isMutatingInit(init)) {
        throw new ConfigError(
          `LoRA: KaSA (kasa_config) ${this.fanInFanOut ? 'supports Linear layers only, not Conv1D' : options.useDora ? 'cannot be combined with DoRA (use_dora), as in PEFT' : `cannot be combined with init_lora_weights '${init}'`}`,
        );
      }
      this.kasaRemoved = kasaTruncate(this.weight, r);
      // lambda ~ N(0, 1) as KaSA's reference code; B = 0 keeps the update zero at the start
      diag = Parameter.from(
        Tensor.wrap(
          dtype === 'f64'
            ? Float64Array.from({ length: r }, () => rng.normal())
            : Float32Array.from({ length: r }, () => rng.normal()),
          [r],
          { track: false },
        ),
      );
    }
    this.lora_diag = this.registerParameter('lora_diag', diag);
    let magnitude: Parameter | null = null;
    if (options.useDora) {
      // m starts at the row norms of W + scaling B A (after the init), so the layer starts as the base
      magnitude = scope(() => Parameter.from(doraWeightNorm(this.doraOperands())));
    }
    this.lora_magnitude_vector = this.registerParameter('lora_magnitude_vector', magnitude);
  }

  /** Whether this layer uses DoRA. */
  get useDora(): boolean {
    return this.lora_magnitude_vector !== null;
  }

  private doraOperands(): DoraOperands {
    return {
      weight: this.weight,
      a: this.lora_A.weight,
      b: this.lora_B.weight,
      scaling: this.scaling,
      fanInFanOut: this.fanInFanOut,
    };
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
    const base = matmul(x, this.weight, { transB: !this.fanInFanOut, precision: this.computePrecision });
    const y = this.bias ? add(base, this.bias) : base;
    if (this.isMerged) return y;
    const dropped = this.lora_dropout.activeRate() !== 0;
    const xd = this.lora_dropout.forward(x);
    const ax = this.lora_A.forward(xd);
    const update = this.lora_B.forward(this.lora_diag ? mul(ax, this.lora_diag) : ax);
    const m = this.lora_magnitude_vector;
    if (m) {
      // PEFT reuses the base result when dropout is inactive and recomputes it on x' otherwise
      const baseD = dropped
        ? matmul(xd, this.weight, { transB: !this.fanInFanOut, precision: this.computePrecision })
        : base;
      return add(y, doraDelta(m, doraWeightNorm(this.doraOperands()), baseD, update, this.scaling));
    }
    return add(y, this.scaling === 1 ? update : mulScalar(update, this.scaling));
  }

  /**
   * Call `f` with the values of B A in the weight's layout: [out, in], or (B A)^T = A^T B^T
   * [in, out] for a Conv1D (unscaled; computed by the matmul kernel, untracked).
   */
  private withDelta(f: (values: ArrayLike<number>) => void): void {
    noGrad(() =>
      scope(() => {
        // KaSA: B diag(lambda) A, the columns of B scaled by lambda
        const b = this.lora_diag ? mul(this.lora_B.weight, this.lora_diag) : this.lora_B.weight;
        const delta = this.fanInFanOut
          ? matmul(this.lora_A.weight, b, { transA: true, transB: true })
          : matmul(b, this.lora_A.weight);
        f(delta.data as Float32Array | Float64Array);
      }),
    );
  }

  /**
   * The LoRA update `scaling * B A` in the weight's layout ([out, in]; [in, out] for a Conv1D) as a
   * new f64 array (with DoRA the merged weight also rescales rows by m / n: see dora.ts).
   */
  deltaWeight(): Float64Array {
    const out = new Float64Array(this.outFeatures * this.inFeatures);
    this.withDelta((d) => {
      for (let i = 0; i < out.length; i++) out[i] = this.scaling * d[i]!;
    });
    return out;
  }

  /**
   * W += scaling * B A (no-op when merged); with DoRA W = (m / n) (W + scaling B A). See the file
   * comment for bf16 weights.
   */
  merge(): void {
    if (this.isMerged) return;
    if (this.lora_magnitude_vector) {
      this.mergeDora(this.lora_magnitude_vector);
      return;
    }
    const loraBias = this.lora_B.bias;
    if (loraBias && !this.bias) {
      throw new ConfigError(
        'LoRA: cannot merge lora_bias into a layer without a bias (the base layer has none), as in PEFT; keep the adapter unmerged',
      );
    }
    const w = this.weight.data;
    const s = this.scaling;
    if (loraBias) this.addLoraBias(s);
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

  private mergeDora(m: Parameter): void {
    scope(() => {
      const { merged, norm } = doraMergedWeight(this.doraOperands(), m);
      const w = this.weight.data;
      if (w instanceof Uint16Array) this.bf16Backup = Uint16Array.from(w);
      const values = merged.data as Float32Array | Float64Array;
      this.weight.fillWith((i) => values[i]!);
      this.mergedNorm = Parameter.from(norm, { requiresGrad: false });
    });
    this.isMerged = true;
  }

  /** W -= scaling * B A (no-op when not merged); a bf16 weight gets its original bits back. */
  unmerge(): void {
    if (!this.isMerged) return;
    const w = this.weight.data;
    const m = this.lora_magnitude_vector;
    if (w instanceof Uint16Array) {
      w.set(this.bf16Backup!);
      this.bf16Backup = null;
    } else if (m) {
      scope(() => {
        const restored = doraUnmergedWeight(this.doraOperands(), this.weight, m, this.mergedNorm!);
        (w as Float32Array | Float64Array).set(restored.data as Float32Array | Float64Array);
      });
    } else {
      const s = this.scaling;
      const wf = w as Float32Array | Float64Array;
      this.withDelta((d) => {
        for (let i = 0; i < wf.length; i++) wf[i] = wf[i]! - s * d[i]!;
      });
    }
    if (this.lora_B.bias) this.addLoraBias(-this.scaling);
    this.mergedNorm = null;
    this.isMerged = false;
  }

  /** Base bias += factor * lora_B.bias (lora_bias merge / unmerge; biases are f32 or f64). */
  private addLoraBias(factor: number): void {
    if (this.bias!.data instanceof Uint16Array)
      throw new ConfigError(
        'LoRA: cannot merge lora_bias into a bf16 base bias (an f32 or f64 bias is needed)',
      );
    const b = this.bias!.data as Float32Array | Float64Array;
    const lb = this.lora_B.bias!.data as Float32Array | Float64Array;
    for (let i = 0; i < b.length; i++) b[i] = b[i]! + factor * lb[i]!;
  }

  /**
   * Undo a PiSSA / OLoRA init's rewrite of the (unmerged) base weight: W = residual + scaling B0 A0
   * (equal to the original W up to the rounding of its dtype). No-op for other inits.
   */
  restoreBaseWeight(): void {
    const removed = this.kasaRemoved;
    if (removed && !this.isMerged) {
      const usv = matmul64(removed.u, scaleColumns(removed.v, removed.s), { transB: true });
      const current = this.weight.toArray();
      this.weight.fillWith((i) => current[i]! + usv.data[i]!);
      return;
    }
    const init = this.initialLora;
    if (!init || this.isMerged) return;
    const ba = matmul64(init.b, init.a);
    const layout = this.fanInFanOut ? transpose64(ba) : ba;
    const current = this.weight.toArray();
    const s = this.scaling;
    this.weight.fillWith((i) => current[i]! + s * layout.data[i]!);
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

/** `v` [n, r] with column j multiplied by s[j]. */
function scaleColumns(v: Matrix64, s: Float64Array): Matrix64 {
  const out = matrix64(v.rows, v.cols);
  for (let i = 0; i < v.rows; i++)
    for (let j = 0; j < v.cols; j++) out.data[i * v.cols + j] = v.data[i * v.cols + j]! * s[j]!;
  return out;
}

/**
 * KaSA's truncation: W [out, in] loses its r smallest singular components (W - U_r S_r V_r^T over
 * the bottom r of the full SVD), written back into `weight` in its dtype. Returns the removed triplets.
 */
export function kasaTruncate(weight: Parameter, r: number): { u: Matrix64; s: Float64Array; v: Matrix64 } {
  const w = tensorToMatrix64(weight);
  const k = Math.min(w.rows, w.cols);
  if (r >= k) {
    throw new ConfigError(
      `LoRA: KaSA requires r < min(out, in) = ${k} (at least one singular component must stay in the base), found r = ${r}`,
    );
  }
  const full = svd(w);
  const u = matrix64(w.rows, r);
  const v = matrix64(w.cols, r);
  const s = full.s.slice(k - r, k);
  for (let j = 0; j < r; j++) {
    for (let o = 0; o < w.rows; o++) u.data[o * r + j] = full.u!.data[o * full.u!.cols + k - r + j]!;
    for (let i = 0; i < w.cols; i++) v.data[i * r + j] = full.v!.data[i * full.v!.cols + k - r + j]!;
  }
  const usv = matmul64(u, scaleColumns(v, s), { transB: true });
  weight.fillWith((i) => w.data[i]! - usv.data[i]!);
  return { u, s, v };
}
