/**
 * A linear map through a weight plus a sparse delta: `y = x op(W + scatter(values at indices))`,
 * the forward of sparse fine-tuning. W is frozen; the k values train.
 *
 * How it is computed: the forward adds the k values into W's entries at their flat indices in place,
 * runs one GEMM and writes the k original entries back (O(k); no copy of W, which stays
 * bit-identical). The backward does the same for dx (one GEMM, as LoRA's frozen path) and computes
 * the values' gradient — the weight gradient at the k indices only — as k dot products of rows of
 * g^T and x^T (`rowPairDots`: O(k N), no dense dW). When W requires grad (sparse FT's
 * regrowth-accumulation steps) the dense dW is computed instead (one more GEMM), becomes W's
 * gradient, and the values' gradient is gathered from it. No gradient memory persists beyond the
 * k values.
 */
import type { FloatArray } from '../../backend/kernels.ts';
import { needsGrad, noGrad, record } from '../autograd.ts';
import { formatShape, Tensor } from '../tensor.ts';
import { matmul } from './matmul.ts';
import { transpose } from './shape.ts';
import { kernelsOf } from './util.ts';

export interface SparseDeltaOptions {
  /** The weight is stored [out, in] and applied as x W^T (a Linear; default true); false: x W (Conv1D [in, out]). */
  transB?: boolean;
}

/**
 * `fn(W + scatter(values))`, with W's k entries at `indices` set to `W[i] + v` in place for the
 * call and restored exactly (the saved originals are written back) after it, even when it throws:
 * the effective weight is bit-identical to a copy's, without copying the whole matrix (O(k), not
 * O(numel), time and memory). Safe because nothing else reads W during the synchronous call.
 */
function withEffectiveWeight<T>(
  weight: Tensor,
  values: Tensor,
  indices: Int32Array,
  fn: (w: Tensor) => T,
): T {
  const wd = weight.data as FloatArray;
  const v = values.data as FloatArray;
  const k = indices.length;
  const saved = wd instanceof Float64Array ? new Float64Array(k) : new Float32Array(k);
  for (let j = 0; j < k; j++) {
    const i = indices[j]!;
    saved[j] = wd[i]!;
    wd[i] = saved[j]! + v[j]!;
  }
  try {
    return fn(weight);
  } finally {
    for (let j = 0; j < k; j++) wd[indices[j]!] = saved[j]!;
  }
}

/**
 * The weight gradient at the k flat `indices` only, `(g^T x)[r, c]` ([out, in] layout; Conv1D's
 * [in, out]: `(x^T g)[c, o]`), as k dot products of rows of g^T and x^T (the `rowPairDots` kernel):
 * O(k N) work and O(N (in + out)) transient memory instead of the dense dW's GEMM and [out, in].
 */
function sampledWeightGradient(
  x: Tensor,
  g: Tensor,
  weight: Tensor,
  indices: Int32Array,
  transB: boolean,
): Tensor {
  const cols = weight.shape[1]!;
  const rowIds = new Int32Array(indices.length);
  const colIds = new Int32Array(indices.length);
  for (let j = 0; j < indices.length; j++) {
    const r = Math.floor(indices[j]! / cols);
    rowIds[j] = r;
    colIds[j] = indices[j]! - r * cols;
  }
  // stored [rows, cols]: Linear [out, in] pairs rows of g^T with rows of x^T; Conv1D [in, out] the reverse
  const gT = transpose(g);
  const xT = transpose(x);
  const [a, b] = transB ? [gT, xT] : [xT, gT];
  const out = Tensor.alloc([indices.length], weight.dtype, false);
  kernelsOf(weight).rowPairDots(
    a.data as FloatArray,
    b.data as FloatArray,
    rowIds,
    colIds,
    out.data as FloatArray,
    indices.length,
    x.shape[0]!,
  );
  gT.release();
  xT.release();
  return out;
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
  const out = noGrad(() => withEffectiveWeight(weight, values, indices, (w) => matmul(x, w, { transB })));
  if (needsGrad(x, weight, values)) {
    record('sparseDeltaLinear', [x, weight, values], [out], [x, weight, values], ([g]) => {
      let gx: Tensor | null = null;
      if (x.requiresGrad)
        gx = withEffectiveWeight(weight, values, indices, (w) => matmul(g!, w, { transB: !transB }));
      let gw: Tensor | null = null;
      let gv: Tensor | null = null;
      if (weight.requiresGrad) {
        // regrowth accumulation: W's dense gradient is wanted anyway; the values' is gathered from it
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
        gw = dw;
      } else if (values.requiresGrad) {
        gv = sampledWeightGradient(x, g!, weight, indices, transB);
      }
      return [gx, gw, gv];
    });
  }
  return out;
}
