/** Reductions over axes with keepdim: sum, mean, max, logsumexp. */
import type { FloatArray, ReduceOp } from '../../backend/kernels.ts';
import { needsGrad, record } from '../autograd.ts';
import { Tensor } from '../tensor.ts';
import { broadcastStrides, emptyLike, expandTo, floatOf, kernelsOf, normAxis } from './util.ts';

export type Axes = number | readonly number[] | undefined;

function resolveAxes(axes: Axes, rank: number, op: string): number[] {
  if (axes === undefined) return Array.from({ length: rank }, (_, i) => i);
  const list = typeof axes === 'number' ? [axes] : [...axes];
  const norm = list.map((a) => normAxis(a, rank, op));
  if (new Set(norm).size !== norm.length) throw new RangeError(`${op}: repeated axis in [${list.join(',')}]`);
  return norm.sort((a, b) => a - b);
}

function keptShape(shape: readonly number[], axes: readonly number[]): number[] {
  return shape.map((d, i) => (axes.includes(i) ? 1 : d));
}

function finalShape(shape: readonly number[], axes: readonly number[], keepdim: boolean): number[] {
  return keepdim ? keptShape(shape, axes) : shape.filter((_, i) => !axes.includes(i));
}

/** Reduce x over `axes` with the raw kernel (one axis at a time), keepdim shape. */
function reduceRaw(op: ReduceOp, x: Tensor, axes: readonly number[], name: string): Tensor {
  floatOf(x, name);
  const k = kernelsOf(x);
  let cur = x;
  let shape = [...x.shape];
  // logsumexp over several axes = logsumexp over their flattened product: reduce one axis at a
  // time is exact for sum/max, and for logsumexp since lse(lse(a), lse(b)) composes.
  for (const axis of axes) {
    const outer = shape.slice(0, axis).reduce((p, d) => p * d, 1);
    const inner = shape.slice(axis + 1).reduce((p, d) => p * d, 1);
    const next = [...shape];
    next[axis] = 1;
    const out = Tensor.alloc(next, x.dtype, false);
    k.reduce(op, cur.data as FloatArray, out.data as FloatArray, outer, shape[axis]!, inner);
    if (cur !== x) cur.release();
    cur = out;
    shape = next;
  }
  if (cur === x) {
    const copy = emptyLike(x);
    (copy.data as Float32Array).set(x.data as Float32Array);
    return copy;
  }
  return cur;
}

function finish(kept: Tensor, shape: readonly number[]): Tensor {
  if (kept.shape.length === shape.length) return kept;
  const out = kept.view(shape);
  kept.release();
  return out;
}

/** Sum over axes (all when omitted). */
export function sum(x: Tensor, axes?: Axes, keepdim = false): Tensor {
  const ax = resolveAxes(axes, x.rank, 'sum');
  const out = finish(reduceRaw('sum', x, ax, 'sum'), finalShape(x.shape, ax, keepdim));
  if (needsGrad(x)) {
    record('sum', [x], [out], [], ([g]) => [expandTo(g!.view(keptShape(x.shape, ax)), x.shape)]);
  }
  return out;
}

/** Mean over axes (all when omitted). */
export function mean(x: Tensor, axes?: Axes, keepdim = false): Tensor {
  const ax = resolveAxes(axes, x.rank, 'mean');
  const count = ax.reduce((p, a) => p * x.shape[a]!, 1);
  const summed = reduceRaw('sum', x, ax, 'mean');
  kernelsOf(x).unary(
    'mul_scalar',
    summed.data as FloatArray,
    summed.data as FloatArray,
    summed.size,
    1 / count,
  );
  const out = finish(summed, finalShape(x.shape, ax, keepdim));
  if (needsGrad(x)) {
    record('mean', [x], [out], [], ([g]) => {
      const gx = expandTo(g!.view(keptShape(x.shape, ax)), x.shape);
      kernelsOf(gx).unary('mul_scalar', gx.data as FloatArray, gx.data as FloatArray, gx.size, 1 / count);
      return [gx];
    });
  }
  return out;
}

/** Max over axes; the gradient is split evenly among tied maxima. */
export function max(x: Tensor, axes?: Axes, keepdim = false): Tensor {
  const ax = resolveAxes(axes, x.rank, 'max');
  const kept = reduceRaw('max', x, ax, 'max');
  const keptShapeArr = [...kept.shape];
  const out = finish(kept, finalShape(x.shape, ax, keepdim));
  if (needsGrad(x)) {
    record('max', [x], [out], [x, out], ([g]) => {
      const k = kernelsOf(x);
      const mask = emptyLike(x);
      const m = out.view(keptShapeArr);
      const xs = broadcastStrides(x.shape, x.shape);
      k.binary(
        'eq',
        x.data as FloatArray,
        xs,
        m.data as FloatArray,
        broadcastStrides(m.shape, x.shape),
        mask.data as FloatArray,
        x.shape,
      );
      const counts = reduceRaw('sum', mask, ax, 'max');
      const share = emptyLike(counts);
      const gk = g!.view(keptShapeArr);
      k.binary(
        'div',
        gk.data as FloatArray,
        broadcastStrides(gk.shape, counts.shape),
        counts.data as FloatArray,
        broadcastStrides(counts.shape, counts.shape),
        share.data as FloatArray,
        counts.shape,
      );
      k.binary(
        'mul',
        mask.data as FloatArray,
        xs,
        share.data as FloatArray,
        broadcastStrides(share.shape, x.shape),
        mask.data as FloatArray,
        x.shape,
      );
      m.release();
      return [mask];
    });
  }
  return out;
}

/** log(sum(exp(x))) over axes, computed stably. */
export function logsumexp(x: Tensor, axes?: Axes, keepdim = false): Tensor {
  const ax = resolveAxes(axes, x.rank, 'logsumexp');
  const kept = reduceRaw('logsumexp', x, ax, 'logsumexp');
  const keptShapeArr = [...kept.shape];
  const out = finish(kept, finalShape(x.shape, ax, keepdim));
  if (needsGrad(x)) {
    record('logsumexp', [x], [out], [x, out], ([g]) => {
      const k = kernelsOf(x);
      const gx = emptyLike(x);
      const xs = broadcastStrides(x.shape, x.shape);
      const l = out.view(keptShapeArr);
      k.binary(
        'sub',
        x.data as FloatArray,
        xs,
        l.data as FloatArray,
        broadcastStrides(l.shape, x.shape),
        gx.data as FloatArray,
        x.shape,
      );
      k.unary('exp', gx.data as FloatArray, gx.data as FloatArray, gx.size, 0);
      const gk = g!.view(keptShapeArr);
      k.binary(
        'mul',
        gx.data as FloatArray,
        xs,
        gk.data as FloatArray,
        broadcastStrides(gk.shape, x.shape),
        gx.data as FloatArray,
        x.shape,
      );
      l.release();
      gk.release();
      return [gx];
    });
  }
  return out;
}
