/** SwiGLU gating: silu(gate) * up (the Llama MLP). */
import type { FloatArray } from '../../backend/kernels.ts';
import { needsGrad, record } from '../autograd.ts';
import type { Tensor } from '../tensor.ts';
import { formatShape } from '../tensor.ts';
import { emptyLike, floatOf, kernelsOf, sameDtype, sameShape } from './util.ts';

/** silu(gate) * up elementwise (equal shapes and dtypes); gradients flow to gate and up. */
export function swiglu(gate: Tensor, up: Tensor): Tensor {
  const gd = floatOf(gate, 'swiglu', 'gate');
  const ud = floatOf(up, 'swiglu', 'up');
  sameDtype(gate, up, 'swiglu');
  if (!sameShape(gate.shape, up.shape)) {
    throw new RangeError(
      `swiglu: gate ${formatShape(gate.shape)} and up ${formatShape(up.shape)} must have the same shape`,
    );
  }
  const k = kernelsOf(gate);
  const out = emptyLike(gate);
  k.swiglu(gd, ud, out.data as FloatArray, gate.size);
  if (needsGrad(gate, up)) {
    record('swiglu', [gate, up], [out], [gate, up], ([g]) => {
      const gGate = emptyLike(gate);
      const gUp = emptyLike(up);
      k.swigluBackward(
        gd,
        ud,
        g!.data as FloatArray,
        gGate.data as FloatArray,
        gUp.data as FloatArray,
        gate.size,
      );
      return [gGate, gUp];
    });
  }
  return out;
}
