/**
 * A fixed linear map of a trainable vector, `y = P z` with P given as a pair of functions (its
 * product and its transpose's) rather than a tensor: intrinsic-dimension tuning's projection
 * (a Fastfood transform, or a dense seeded matrix). The backward is `dL/dz = P^T dL/dy`, computed
 * once per backward pass by `transpose`; nothing of P is a tensor, so nothing of it is on the tape.
 */
import type { FloatArray } from '../../backend/kernels.ts';
import { needsGrad, record } from '../autograd.ts';
import { Tensor } from '../tensor.ts';
import { floatOf } from './util.ts';

/** A fixed linear map R^inSize -> R^outSize, given by its product and its transpose's. */
export interface VectorProjection {
  /** Length of z. */
  readonly inSize: number;
  /** Length of P z. */
  readonly outSize: number;
  /** out [outSize] = P z (z [inSize]); out is overwritten. Both arrays of one float type. */
  forward(z: FloatArray, out: FloatArray): void;
  /** out [inSize] = P^T y (y [outSize]); out is overwritten. */
  transpose(y: FloatArray, out: FloatArray): void;
}

/**
 * `P z` for a 1-D `z` [p.inSize] -> [p.outSize] (z's dtype). When `precomputed` is given it must
 * hold `P z` for z's current values (a cache of the caller's): it is copied instead of recomputed,
 * and the backward is unchanged. Gradient: `P^T g` into z.
 */
export function project(z: Tensor, p: VectorProjection, precomputed?: FloatArray): Tensor {
  const zd = floatOf(z, 'project', 'z');
  if (z.rank !== 1 || z.size !== p.inSize)
    throw new RangeError(`project: z ${z.describe()} must be 1-D of length ${p.inSize}`);
  if (precomputed && precomputed.length !== p.outSize)
    throw new RangeError(`project: precomputed has ${precomputed.length} values, expected ${p.outSize}`);
  const out = Tensor.alloc([p.outSize], z.dtype, false);
  const od = out.data as FloatArray;
  if (precomputed) od.set(precomputed);
  else p.forward(zd, od);
  if (needsGrad(z)) {
    record('project', [z], [out], [], ([g]) => {
      const gz = Tensor.alloc([p.inSize], z.dtype, false);
      p.transpose(floatOf(g!, 'project backward', 'gradient'), gz.data as FloatArray);
      return [gz];
    });
  }
  return out;
}
