/**
 * Conv1D as transformers defines it for GPT-2 (`transformers.pytorch_utils.Conv1D`): despite the
 * name, an affine map y = x W + b whose weight is stored [in, out] (transposed against Linear's
 * [out, in]). The weight stays in that layout, so the checkpoint's tensors load and save as they
 * are, and the forward is one GEMM without a transposed operand.
 */
import { add, type ComputePrecision, formatShape, matmul, reshape, type Tensor } from '../tensor/index.ts';
import { checkPositiveInt, type InitOptions, initRng } from './init.ts';
import { Module } from './module.ts';
import { Parameter } from './parameter.ts';

/**
 * Parameters: `weight` [inFeatures, outFeatures] and `bias` [outFeatures] (always present, as in
 * transformers). Default initialisation is transformers': weight N(0, 0.02), bias 0. A bf16 weight
 * needs f32 inputs; its bias is kept in f32.
 */
export class Conv1D extends Module {
  readonly inFeatures: number;
  readonly outFeatures: number;
  weight: Parameter;
  bias: Parameter | null;
  /** Precision of the layer's GEMM (see `Module.setComputePrecision`). */
  computePrecision: ComputePrecision = 'f32';

  /** A Conv1D layer mapping [..., inFeatures] to [..., outFeatures] (transformers' Conv1D(nf=out, nx=in)). */
  constructor(inFeatures: number, outFeatures: number, options: InitOptions = {}) {
    super();
    checkPositiveInt(inFeatures, 'inFeatures', 'Conv1D');
    checkPositiveInt(outFeatures, 'outFeatures', 'Conv1D');
    this.inFeatures = inFeatures;
    this.outFeatures = outFeatures;
    const dtype = options.dtype ?? 'f32';
    const biasDtype = dtype === 'bf16' ? 'f32' : dtype;
    const init = options.init ?? 'default';
    const shape = [inFeatures, outFeatures];
    const value = init === 'ones' ? 1 : 0;
    const weight =
      init === 'default'
        ? Parameter.normal(shape, 0, 0.02, initRng(options, 'Conv1D'), dtype)
        : Parameter.full(shape, value, dtype);
    this.weight = this.registerParameter('weight', weight);
    this.bias = this.registerParameter('bias', Parameter.full([outFeatures], value, biasDtype));
  }

  protected override applyComputePrecision(precision: ComputePrecision): void {
    this.computePrecision = precision;
  }

  /** x [..., inFeatures] (rank >= 1) -> [..., outFeatures]. */
  forward(x: Tensor): Tensor {
    if (x.rank === 0 || x.shape[x.rank - 1] !== this.inFeatures) {
      throw new RangeError(
        `Conv1D(${this.inFeatures} -> ${this.outFeatures}): input ${formatShape(x.shape)} must end in ${this.inFeatures}`,
      );
    }
    if (x.rank === 1) return reshape(this.forward(reshape(x, [1, x.shape[0]!])), [this.outFeatures]);
    const y = matmul(x, this.weight, { precision: this.computePrecision });
    return this.bias ? add(y, this.bias) : y;
  }
}
