/** Softmax and log-softmax along an axis (the last by default). */
import type { FloatArray } from '../../backend/kernels.ts';
import { needsGrad, record } from '../autograd.ts';
import type { Tensor } from '../tensor.ts';
import { transpose } from './shape.ts';
import { emptyLike, floatOf, kernelsOf, normAxis } from './util.ts';

type RowKernel = 'softmax' | 'logSoftmax';

function lastAxis(x: Tensor, kind: RowKernel): Tensor {
  const data = floatOf(x, kind);
  const cols = x.shape[x.rank - 1]!;
  const rows = cols === 0 ? 0 : x.size / cols;
  const k = kernelsOf(x);
  const out = emptyLike(x);
  k[kind](data, out.data as FloatArray, rows, cols);
  if (needsGrad(x)) {
    // both backward rules read only the output
    record(kind, [x], [out], [out], ([g]) => {
      const gx = emptyLike(x);
      const backwardKernel = kind === 'softmax' ? k.softmaxBackward : k.logSoftmaxBackward;
      backwardKernel(out.data as FloatArray, g!.data as FloatArray, gx.data as FloatArray, rows, cols);
      return [gx];
    });
  }
  return out;
}

function alongAxis(x: Tensor, axis: number, kind: RowKernel): Tensor {
  const ax = normAxis(axis, x.rank, kind);
  if (ax === x.rank - 1) return lastAxis(x, kind);
  const moved = transpose(x, ax, -1);
  const y = lastAxis(moved, kind);
  return transpose(y, ax, -1);
}

/** exp(x) / sum(exp(x)) along `axis` (default the last); same shape as x. */
export function softmax(x: Tensor, axis = -1): Tensor {
  return alongAxis(x, axis, 'softmax');
}

/** x - logsumexp(x) along `axis` (default the last); same shape as x. */
export function logSoftmax(x: Tensor, axis = -1): Tensor {
  return alongAxis(x, axis, 'logSoftmax');
}
