/**
 * f32 -> bf16 conversion of whole tensors through the backend's `f32ToBf16` kernel (round to
 * nearest even, NaN kept quiet), for storing frozen weights in bf16. Not differentiable: bf16 is
 * storage, and what is converted (frozen weights) takes no gradient.
 */
import type { Tensor } from '../tensor.ts';
import { kernelsOf } from './util.ts';

/**
 * A fresh (not pooled) Uint16Array holding `t` (f32) rounded to bf16: the storage of a bf16
 * Parameter made from an f32 one.
 */
export function bf16ArrayOf(t: Tensor): Uint16Array {
  if (t.dtype !== 'f32') throw new TypeError(`bf16ArrayOf: expected an f32 tensor, found ${t.describe()}`);
  const out = new Uint16Array(t.size);
  kernelsOf(t).f32ToBf16(t.data as Float32Array, out, t.size);
  return out;
}
