/** Normalisation layers over the last axis: RMSNorm (Llama) and LayerNorm (GPT-2). */
import { ConfigError } from '../errors.ts';
import { type DType, layerNorm, rmsNorm, type Tensor } from '../tensor/index.ts';
import { checkPositiveInt } from './init.ts';
import { Module } from './module.ts';
import { Parameter } from './parameter.ts';

function checkEps(eps: number, layer: string): void {
  if (!(eps > 0) || !Number.isFinite(eps))
    throw new ConfigError(`${layer}: eps must be a positive number, found ${eps}`);
}

/**
 * y = x / sqrt(mean(x^2) + eps) * weight over the last axis. Parameter: `weight` [dim], ones.
 */
export class RMSNorm extends Module {
  readonly dim: number;
  readonly eps: number;
  weight: Parameter;

  /** RMSNorm over a last axis of size `dim` (eps default 1e-6, as Llama's config). */
  constructor(dim: number, eps = 1e-6, options: { dtype?: DType } = {}) {
    super();
    checkPositiveInt(dim, 'dim', 'RMSNorm');
    checkEps(eps, 'RMSNorm');
    this.dim = dim;
    this.eps = eps;
    this.weight = this.registerParameter('weight', Parameter.full([dim], 1, options.dtype ?? 'f32'));
  }

  /** x [..., dim] -> same shape. */
  forward(x: Tensor): Tensor {
    return rmsNorm(x, this.weight, this.eps);
  }
}

export interface LayerNormOptions {
  dtype?: DType;
  /** Learn a bias (default true). */
  bias?: boolean;
  /** Learn a weight (and bias); false gives a parameter-free LayerNorm (default true). */
  elementwiseAffine?: boolean;
}

/**
 * y = (x - mean) / sqrt(var + eps) * weight + bias over the last axis. Parameters: `weight` [dim]
 * (ones) and `bias` [dim] (zeros), as PyTorch.
 */
export class LayerNorm extends Module {
  readonly dim: number;
  readonly eps: number;
  weight: Parameter | null;
  bias: Parameter | null;

  /** LayerNorm over a last axis of size `dim` (eps default 1e-5, as PyTorch). */
  constructor(dim: number, eps = 1e-5, options: LayerNormOptions = {}) {
    super();
    checkPositiveInt(dim, 'dim', 'LayerNorm');
    checkEps(eps, 'LayerNorm');
    this.dim = dim;
    this.eps = eps;
    const dtype = options.dtype ?? 'f32';
    const affine = options.elementwiseAffine ?? true;
    const withBias = affine && (options.bias ?? true);
    this.weight = this.registerParameter('weight', affine ? Parameter.full([dim], 1, dtype) : null);
    this.bias = this.registerParameter('bias', withBias ? Parameter.zeros([dim], dtype) : null);
  }

  /** x [..., dim] -> same shape. */
  forward(x: Tensor): Tensor {
    return layerNorm(x, this.weight, this.bias, this.eps);
  }
}
