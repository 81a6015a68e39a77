/**
 * A linear map through a weight plus a sparse delta: `y = x op(W + scatter(values at indices))`,
 * the forward of sparse fine-tuning. W is frozen; the k values train.
 *
 * How it is computed with the kernels there are (no sparse kernel yet): the forward copies W,
 * adds the k values at their flat indices (O(k)) and runs one GEMM; the copy is released at once.
 * The backward recomputes that effective weight for dx (one GEMM, as LoRA's frozen path), computes
 * the dense weight gradient dW (one more GEMM, transient: released before the op returns unless W
 * itself requires grad) and gathers the values' gradient `dW[indices]`. So a step costs one GEMM
 * more per target than a frozen linear, and no gradient memory persists beyond the k values. When
 * W requires grad (sparse FT's regrowth-accumulation steps) dW is W's gradient.
 */
import type { FloatArray } from '../../backend/kernels.ts';
import { needsGrad, noGrad, record } from '../autograd.ts';
import { formatShape, Tensor } from '../tensor.ts';
import { matmul } from './matmul.ts';

export interface SparseDeltaOptions {
  /** The weight is stored [out, in] and applied as x W^T (a Linear; default true); false: x W (Conv1D [in, out]). */
  transB?: boolean;
}

function effectiveWeight(weight: Tensor, values: Tensor, indices: Int32Array): Tensor {
  const w = Tensor.alloc(weight.shape, weight.dtype, false);
  const wd = w.data as FloatArray;
  wd.set(weight.data as FloatArray);
  const v = values.data as FloatArray;
  for (let j = 0; j < indices.length; j++) wd[indices[j]!] = wd[indices[j]!]! + v[j]!;
  return w;
}

/**
 * x [N, in] (2-D) through `weight` (f32/f64, 2-D) plus `values` [k] added at the flat positions
 * `indices` (i32, k distinct positions of the weight, validated by the caller) -> [N, out].
 * Gradients: x, values (gathered dense dW), and weight when it requires grad.
 */
export function sparseDeltaLinear(
  x: Tensor,
  weight: Tensor,
  values: Tensor,
  indices: Int32Array,
  options: SparseDeltaOptions = {},
): Tensor {
  const transB = options.transB ?? true;
  if (x.rank !== 2 || weight.rank !== 2)
    throw new RangeError(`sparseDeltaLinear: x ${x.describe()} and weight ${weight.describe()} must be 2-D`);
  if (weight.dtype !== 'f32' && weight.dtype !== 'f64')
    throw new TypeError(`sparseDeltaLinear: weight ${weight.describe()} must be f32 or f64`);
  if (values.dtype !== weight.dtype || values.size !== indices.length)
    throw new RangeError(
      `sparseDeltaLinear: values ${values.describe()} must be ${weight.dtype} with one value per index (${indices.length})`,
    );
  const out = noGrad(() => {
    const w = effectiveWeight(weight, values, indices);
    const y = matmul(x, w, { transB });
    w.release();
    return y;
  });
  if (needsGrad(x, weight, values)) {
    record('sparseDeltaLinear', [x, weight, values], [out], [x, weight, values], ([g]) => {
      let gx: Tensor | null = null;
      if (x.requiresGrad) {
        const w = effectiveWeight(weight, values, indices);
        gx = matmul(g!, w, { transB: !transB });
        w.release();
      }
      let gw: Tensor | null = null;
      let gv: Tensor | null = null;
      if (weight.requiresGrad || values.requiresGrad) {
        // dW in the weight's layout: [out, in] = g^T x, or [in, out] = x^T g
        const dw = transB ? matmul(g!, x, { transA: true }) : matmul(x, g!, { transA: true });
        if (dw.shape.join() !== weight.shape.join())
          throw new RangeError(
            `sparseDeltaLinear: gradient ${formatShape(dw.shape)} does not fit ${weight.describe()}`,
          );
        if (values.requiresGrad) {
          gv = Tensor.alloc(values.shape, values.dtype, false);
          const gvd = gv.data as FloatArray;
          const dwd = dw.data as FloatArray;
          for (let j = 0; j < indices.length; j++) gvd[j] = dwd[indices[j]!]!;
        }
        if (weight.requiresGrad) gw = dw;
        else dw.release();
      }
      return [gx, gw, gv];
    });
  }
  return out;
}
