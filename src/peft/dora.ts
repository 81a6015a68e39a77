/**
 * DoRA (Liu et al., "DoRA: Weight-Decomposed Low-Rank Adaptation"), as PEFT computes it
 * (peft/tuners/lora/dora.py `DoraLinearLayer`, variants.py `DoraLinearVariant`).
 *
 * Each adapted weight W [out, in] gets a trainable magnitude m [out], initialised to the row norms
 * ||W + s B A||_row (the L2 norm over the input dimension, one per output feature; with B = 0 that
 * is ||W||_row). The layer computes, with x' = dropout(x) and n = ||W + s B A||_row:
 *
 *   y = x W^T + b + (m / n - 1) * (x' W^T) + (m / n) * s * B A x'
 *
 * which equals (m / n) * (W + s B A) x + b when dropout is inactive (PEFT then reuses the base
 * result; with active dropout it recomputes x' W^T, as here). The norm n is detached, a constant
 * in backward (DoRA section 4.3: "we suggest treating ||V + dV||_c as a constant").
 *
 * Merging (PEFT's merge_safe / unmerge): W' = (m / n) * (W + s B A) with n taken from the
 * unmerged weights and kept, so unmerge is W = W' / (m / n) - s B A.
 */
import { kernels } from '../backend/index.ts';
import {
  add,
  addScalar,
  div,
  matmul,
  mul,
  mulScalar,
  noGrad,
  reshape,
  scope,
  sqrt,
  square,
  sum,
  Tensor,
} from '../tensor/index.ts';

/** What the DoRA computations need from an adapted layer. */
export interface DoraOperands {
  /** The base weight: [out, in], or [in, out] when `fanInFanOut` (Conv1D); f32, f64 or bf16. */
  weight: Tensor;
  /** lora_A [r, in]. */
  a: Tensor;
  /** lora_B [out, r]. */
  b: Tensor;
  scaling: number;
  fanInFanOut: boolean;
}

/** `w` as an f32/f64 tensor (a bf16 weight widened to a new f32 tensor by the backend kernel). */
export function floatWeight(w: Tensor): Tensor {
  if (w.dtype !== 'bf16') return w;
  const out = Tensor.alloc(w.shape, 'f32', false);
  kernels().bf16ToF32(w.data as Uint16Array, out.data as Float32Array, w.size);
  return out;
}

/**
 * W + s B A in the weight's own layout ([out, in]; [in, out] for a Conv1D), untracked, in the
 * LoRA matrices' dtype.
 */
export function doraCombinedWeight(o: DoraOperands): Tensor {
  return noGrad(() =>
    scope(() => {
      const delta = o.fanInFanOut ? matmul(o.a, o.b, { transA: true, transB: true }) : matmul(o.b, o.a);
      return add(floatWeight(o.weight), mulScalar(delta, o.scaling));
    }),
  );
}

/**
 * The row norms n = ||W + s B A|| over the input dimension, one per output feature [out]
 * (PEFT's `get_weight_norm`), untracked: a constant for autograd.
 */
export function doraWeightNorm(o: DoraOperands): Tensor {
  return noGrad(() => scope(() => sqrt(sum(square(doraCombinedWeight(o)), [o.fanInFanOut ? 0 : 1]))));
}

/**
 * DoRA's addition to the base result (PEFT's `DoraLinearLayer.forward`):
 * (m / n - 1) * base + (m / n) * s * lora, where `base` is x' W^T without bias and `lora` is
 * B A x' ([..., out] each), and n = `norm` (untracked). Gradients reach m and `lora`.
 */
export function doraDelta(
  magnitude: Tensor,
  norm: Tensor,
  base: Tensor,
  lora: Tensor,
  scaling: number,
): Tensor {
  const scale = div(magnitude, norm);
  const scaledLora = mul(scale, scaling === 1 ? lora : mulScalar(lora, scaling));
  return add(mul(addScalar(scale, -1), base), scaledLora);
}

/**
 * The merged weight (m / n) * (W + s B A) in the weight's layout, with n the norm of the
 * unmerged weights (returned too, for `doraUnmergedWeight`); untracked tensors.
 */
export function doraMergedWeight(o: DoraOperands, magnitude: Tensor): { merged: Tensor; norm: Tensor } {
  return noGrad(() =>
    scope(() => {
      const combined = doraCombinedWeight(o);
      const norm = sqrt(sum(square(combined), [o.fanInFanOut ? 0 : 1]));
      const factor = div(magnitude, norm);
      const shaped = o.fanInFanOut ? factor : reshape(factor, [factor.size, 1]);
      return { merged: mul(combined, shaped), norm };
    }),
  );
}

/**
 * Undo `doraMergedWeight` (PEFT's unmerge): W = W' / (m / n) - s B A, with `merged` W' (f32/f64,
 * the weight's layout) and n the norm kept from the merge; untracked.
 */
export function doraUnmergedWeight(o: DoraOperands, merged: Tensor, magnitude: Tensor, norm: Tensor): Tensor {
  return noGrad(() =>
    scope(() => {
      const factor = div(magnitude, norm);
      const shaped = o.fanInFanOut ? factor : reshape(factor, [factor.size, 1]);
      const delta = o.fanInFanOut ? matmul(o.a, o.b, { transA: true, transB: true }) : matmul(o.b, o.a);
      return add(div(merged, shaped), mulScalar(delta, -o.scaling));
    }),
  );
}
