/** RMSNorm and LayerNorm over the last axis, with gradients for x, weight and bias. */
import type { FloatArray } from '../../backend/kernels.ts';
import { needsGrad, record } from '../autograd.ts';
import { formatShape, Tensor } from '../tensor.ts';
import { emptyLike, floatOf, kernelsOf } from './util.ts';

/** Checks an optional per-feature parameter ([cols], x's dtype) and returns its data. */
function paramData(p: Tensor | null, x: Tensor, cols: number, op: string, role: string): FloatArray | null {
  if (!p) return null;
  const data = floatOf(p, op, role);
  if (p.dtype !== x.dtype)
    throw new TypeError(`${op}: ${role} ${p.describe()} and input ${x.describe()}: dtypes differ`);
  if (p.rank !== 1 || p.shape[0] !== cols) {
    throw new RangeError(
      `${op}: ${role} ${formatShape(p.shape)} does not match the last dim ${cols} of ${formatShape(x.shape)}`,
    );
  }
  return data;
}

function rowsCols(x: Tensor, op: string): [number, number] {
  if (x.rank === 0) throw new RangeError(`${op}: ${x.describe()} needs at least one dim`);
  const cols = x.shape[x.rank - 1]!;
  return [cols === 0 ? 0 : x.size / cols, cols];
}

/**
 * RMSNorm over the last dim: x * rsqrt(mean(x^2) + eps) * weight (weight null = no scale).
 * Gradients flow to x and weight.
 */
export function rmsNorm(x: Tensor, weight: Tensor | null, eps: number): Tensor {
  const xd = floatOf(x, 'rmsNorm');
  const [rows, cols] = rowsCols(x, 'rmsNorm');
  const wd = paramData(weight, x, cols, 'rmsNorm', 'weight');
  const k = kernelsOf(x);
  const out = emptyLike(x);
  const rstd = Tensor.alloc([rows], x.dtype, false, { track: false });
  k.rmsNorm(xd, wd, out.data as FloatArray, rstd.data as FloatArray, rows, cols, eps);
  if (needsGrad(x, weight)) {
    const inputs = weight ? [x, weight] : [x];
    record('rmsNorm', inputs, [out], [...inputs, rstd], ([g]) => {
      const gx = emptyLike(x);
      const gw = weight?.requiresGrad ? Tensor.alloc(weight.shape, weight.dtype, true) : null;
      k.rmsNormBackward(
        xd,
        wd,
        rstd.data as FloatArray,
        g!.data as FloatArray,
        gx.data as FloatArray,
        (gw?.data as FloatArray | undefined) ?? null,
        rows,
        cols,
      );
      return weight ? [gx, gw] : [gx];
    });
  }
  rstd.release(); // the tape holds its own reference when recorded
  return out;
}

/**
 * LayerNorm over the last dim: (x - mean) / sqrt(var + eps) * weight + bias (biased variance, as
 * PyTorch; null weight = 1, null bias = 0). Gradients flow to x, weight and bias.
 */
export function layerNorm(x: Tensor, weight: Tensor | null, bias: Tensor | null, eps: number): Tensor {
  const xd = floatOf(x, 'layerNorm');
  const [rows, cols] = rowsCols(x, 'layerNorm');
  const wd = paramData(weight, x, cols, 'layerNorm', 'weight');
  const bd = paramData(bias, x, cols, 'layerNorm', 'bias');
  const k = kernelsOf(x);
  const out = emptyLike(x);
  const mean = Tensor.alloc([rows], x.dtype, false, { track: false });
  const rstd = Tensor.alloc([rows], x.dtype, false, { track: false });
  k.layerNorm(
    xd,
    wd,
    bd,
    out.data as FloatArray,
    mean.data as FloatArray,
    rstd.data as FloatArray,
    rows,
    cols,
    eps,
  );
  if (needsGrad(x, weight, bias)) {
    const inputs: Tensor[] = [x];
    if (weight) inputs.push(weight);
    if (bias) inputs.push(bias);
    const saved = weight ? [x, weight, mean, rstd] : [x, mean, rstd];
    record('layerNorm', inputs, [out], saved, ([g]) => {
      const gx = emptyLike(x);
      const gw = weight?.requiresGrad ? Tensor.alloc(weight.shape, weight.dtype, true) : null;
      const gb = bias?.requiresGrad ? Tensor.alloc(bias.shape, bias.dtype, true) : null;
      k.layerNormBackward(
        xd,
        wd,
        mean.data as FloatArray,
        rstd.data as FloatArray,
        g!.data as FloatArray,
        gx.data as FloatArray,
        (gw?.data as FloatArray | undefined) ?? null,
        (gb?.data as FloatArray | undefined) ?? null,
        rows,
        cols,
      );
      const grads: (Tensor | null)[] = [gx];
      if (weight) grads.push(gw);
      if (bias) grads.push(gb);
      return grads;
    });
  }
  mean.release();
  rstd.release();
  return out;
}
