/** Dropout with counter-based (philox) masks: same (seed, offset) gives the same mask anywhere. */
import type { FloatArray } from '../../backend/kernels.ts';
import { needsGrad, record } from '../autograd.ts';
import type { Tensor } from '../tensor.ts';
import { emptyLike, floatOf, kernelsOf } from './util.ts';

/**
 * Zero each element of x with probability p and scale survivors by 1/(1 - p). Element i keeps iff
 * philoxUniform(seed, offset + i) >= p, so a tensor split into calls at the right offsets gets the
 * same mask as one call. Returns x itself when p is 0. Gradient: the same mask.
 */
export function dropout(x: Tensor, p: number, seed: number, offset = 0): Tensor {
  const xd = floatOf(x, 'dropout');
  if (!(p >= 0 && p <= 1)) throw new RangeError(`dropout: rate must be in [0, 1], found ${p}`);
  if (!Number.isInteger(offset) || offset < 0)
    throw new RangeError(`dropout: offset must be a non-negative integer, found ${offset}`);
  if (p === 0) return x;
  const s = seed >>> 0;
  const k = kernelsOf(x);
  const out = emptyLike(x);
  k.dropout(xd, out.data as FloatArray, x.size, p, s, offset);
  if (needsGrad(x)) {
    record('dropout', [x], [out], [], ([g]) => {
      const gx = emptyLike(x);
      k.dropoutBackward(g!.data as FloatArray, gx.data as FloatArray, x.size, p, s, offset);
      return [gx];
    });
  }
  return out;
}
