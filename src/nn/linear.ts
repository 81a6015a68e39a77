/** Linear layer: y = x W^T + b with W [out, in] as stored on the Hub. */
import { add, type ComputePrecision, formatShape, matmul, reshape, type Tensor } from '../tensor/index.ts';
import { checkPositiveInt, type InitOptions, initRng } from './init.ts';
import { Module } from './module.ts';
import { Parameter } from './parameter.ts';

export interface LinearOptions extends InitOptions {
  /** Add a bias vector (default true). */
  bias?: boolean;
  /**
   * Pin the compute precision: `setComputePrecision` leaves this layer at the given one (LoRA's
   * small A / B stay f32 under bf16-mixed). Default: not pinned, f32 until set.
   */
  pinPrecision?: ComputePrecision;
}

/**
 * Affine map over the last axis. Parameters: `weight` [outFeatures, inFeatures] and, when
 * `bias`, `bias` [outFeatures]. Default initialisation matches PyTorch (kaiming-uniform with
 * a = sqrt(5)): weight and bias ~ U(-1/sqrt(in), 1/sqrt(in)), weight drawn first.
 * A bf16 weight (frozen base weight) needs f32 inputs; its bias is kept in f32. With compute
 * precision 'bf16' (`setComputePrecision`) the GEMMs of forward and backward take bf16-rounded
 * inputs and accumulate in f32; the bias add stays f32.
 */
export class Linear extends Module {
  readonly inFeatures: number;
  readonly outFeatures: number;
  weight: Parameter;
  bias: Parameter | null;
  /** Precision of the layer's GEMMs (see `Module.setComputePrecision`). */
  computePrecision: ComputePrecision;
  private readonly pinnedPrecision: boolean;

  /** A Linear layer mapping [..., inFeatures] to [..., outFeatures]. */
  constructor(inFeatures: number, outFeatures: number, options: LinearOptions = {}) {
    super();
    checkPositiveInt(inFeatures, 'inFeatures', 'Linear');
    checkPositiveInt(outFeatures, 'outFeatures', 'Linear');
    this.inFeatures = inFeatures;
    this.outFeatures = outFeatures;
    this.computePrecision = options.pinPrecision ?? 'f32';
    this.pinnedPrecision = options.pinPrecision !== undefined;
    const dtype = options.dtype ?? 'f32';
    const biasDtype = dtype === 'bf16' ? 'f32' : dtype;
    const init = options.init ?? 'default';
    const withBias = options.bias ?? true;
    let weight: Parameter;
    let bias: Parameter | null = null;
    if (init === 'default') {
      const rng = initRng(options, 'Linear');
      const bound = 1 / Math.sqrt(inFeatures);
      weight = Parameter.uniform([outFeatures, inFeatures], -bound, bound, rng, dtype);
      if (withBias) bias = Parameter.uniform([outFeatures], -bound, bound, rng, biasDtype);
    } else {
      const value = init === 'ones' ? 1 : 0;
      weight = Parameter.full([outFeatures, inFeatures], value, dtype);
      if (withBias) bias = Parameter.full([outFeatures], value, biasDtype);
    }
    this.weight = this.registerParameter('weight', weight);
    this.bias = this.registerParameter('bias', bias);
  }

  protected override applyComputePrecision(precision: ComputePrecision): void {
    if (!this.pinnedPrecision) this.computePrecision = precision;
  }

  /** x [..., inFeatures] (rank >= 1) -> [..., outFeatures]. */
  forward(x: Tensor): Tensor {
    if (x.rank === 0 || x.shape[x.rank - 1] !== this.inFeatures) {
      throw new RangeError(
        `Linear(${this.inFeatures} -> ${this.outFeatures}): input ${formatShape(x.shape)} must end in ${this.inFeatures}`,
      );
    }
    if (x.rank === 1) return reshape(this.forward(reshape(x, [1, x.shape[0]!])), [this.outFeatures]);
    const y = matmul(x, this.weight, { transB: true, precision: this.computePrecision });
    return this.bias ? add(y, this.bias) : y;
  }
}
