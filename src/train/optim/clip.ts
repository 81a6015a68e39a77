/** Gradient clipping by global L2 norm (torch.nn.utils.clip_grad_norm_). */
import { kernelsFor } from '../../backend/index.ts';
import type { FloatArray } from '../../backend/kernels.ts';
import { ConfigError } from '../../errors.ts';
import type { Tensor } from '../../tensor/index.ts';

export interface ClipGradNormOptions {
  /** Throw when the total norm is NaN or infinite (default false: scale like PyTorch). */
  errorIfNonfinite?: boolean;
}

/**
 * Scale the gradients of `params` in place so that their global L2 norm is at most `maxNorm`, and
 * return the norm before clipping. Squares are accumulated in f64. As PyTorch, grads are
 * multiplied by min(1, maxNorm / (norm + 1e-6)); parameters without a gradient are skipped.
 */
export function clipGradNorm(
  params: Iterable<Tensor>,
  maxNorm: number,
  options: ClipGradNormOptions = {},
): number {
  if (!(maxNorm > 0)) throw new ConfigError(`clipGradNorm: maxNorm must be positive, found ${maxNorm}`);
  const grads: Tensor[] = [];
  for (const p of params) if (p.grad) grads.push(p.grad);
  let sumSq = 0;
  for (const g of grads) {
    const data = g.floatData();
    sumSq += kernelsFor(data instanceof Float64Array).sumSquares(data, g.size);
  }
  const total = Math.sqrt(sumSq);
  if (!Number.isFinite(total) && options.errorIfNonfinite) {
    throw new ConfigError(`clipGradNorm: the total gradient norm is ${total}`);
  }
  const coef = maxNorm / (total + 1e-6);
  if (coef < 1 || Number.isNaN(coef)) {
    for (const g of grads) {
      const data = g.data as FloatArray;
      kernelsFor(data instanceof Float64Array).unary('mul_scalar', data, data, g.size, coef);
    }
  }
  return total;
}
