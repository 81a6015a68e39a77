/** Shared helpers for op definitions: dtype checks, broadcasting, kernel choice. */
import { type Kernels, kernelsFor } from '../../backend/index.ts';
import type { FloatArray } from '../../backend/kernels.ts';
import { contiguousStrides, formatShape, Tensor } from '../tensor.ts';

/** Kernels able to run this tensor's data (js for f64). */
export function kernelsOf(t: Tensor): Kernels {
  return kernelsFor(t.dtype === 'f64');
}

/** Throws unless t is f32 or f64. */
export function floatOf(t: Tensor, op: string, role = 'input'): FloatArray {
  if (t.dtype !== 'f32' && t.dtype !== 'f64') {
    throw new TypeError(`${op}: ${role} ${t.describe()} must be f32 or f64 (convert bf16 with toF32 first)`);
  }
  return t.data as FloatArray;
}

/** Throws unless both tensors have the same dtype (Attune never casts silently). */
export function sameDtype(a: Tensor, b: Tensor, op: string): void {
  if (a.dtype !== b.dtype) {
    throw new TypeError(
      `${op}: ${formatShape(a.shape)} ${a.dtype} and ${formatShape(b.shape)} ${b.dtype}: dtypes differ`,
    );
  }
}

/** NumPy broadcasting of two shapes. */
export function broadcastShapes(a: readonly number[], b: readonly number[], op: string): number[] {
  const rank = Math.max(a.length, b.length);
  const out = new Array<number>(rank);
  for (let i = 0; i < rank; i++) {
    const da = a[a.length - rank + i] ?? 1;
    const db = b[b.length - rank + i] ?? 1;
    if (da !== db && da !== 1 && db !== 1) {
      throw new RangeError(
        `${op}: ${formatShape(a)} and ${formatShape(b)} do not broadcast: dim ${i} is ${da} vs ${db}`,
      );
    }
    out[i] = da === 1 ? db : da;
  }
  return out;
}

/** Strides for reading a contiguous tensor of `shape` as if broadcast to `outShape`. */
export function broadcastStrides(shape: readonly number[], outShape: readonly number[]): number[] {
  const strides = contiguousStrides(shape);
  const rank = outShape.length;
  const out = new Array<number>(rank).fill(0);
  for (let i = 0; i < shape.length; i++) {
    const j = rank - shape.length + i;
    out[j] = shape[i] === 1 && outShape[j] !== 1 ? 0 : strides[i]!;
  }
  return out;
}

export function sameShape(a: readonly number[], b: readonly number[]): boolean {
  return a.length === b.length && a.every((d, i) => d === b[i]);
}

/** A new (uninitialised) tensor of `shape` with t's dtype. */
export function emptyLike(t: Tensor, shape: readonly number[] = t.shape): Tensor {
  return Tensor.alloc(shape, t.dtype, false);
}

/** Normalise a possibly negative axis; throws when out of range. */
export function normAxis(axis: number, rank: number, op: string): number {
  const a = axis < 0 ? axis + rank : axis;
  if (!Number.isInteger(a) || a < 0 || a >= rank) {
    throw new RangeError(`${op}: axis ${axis} is out of range for a tensor of rank ${rank}`);
  }
  return a;
}

/**
 * Sum `g` (shaped like a broadcast result) down to `shape` — the backward of broadcasting.
 * Returns g itself when no reduction is needed.
 */
export function sumToShape(g: Tensor, shape: readonly number[]): Tensor {
  if (sameShape(g.shape, shape)) return g;
  const k = kernelsOf(g);
  const lead = g.shape.length - shape.length;
  let cur = g;
  let curShape = [...g.shape];
  // reduce the leading extra dims and every dim where shape has 1 but g does not
  for (let axis = curShape.length - 1; axis >= 0; axis--) {
    const target = axis < lead ? 1 : shape[axis - lead]!;
    if (curShape[axis] === target) continue;
    const outer = curShape.slice(0, axis).reduce((x, y) => x * y, 1);
    const inner = curShape.slice(axis + 1).reduce((x, y) => x * y, 1);
    const nextShape = [...curShape];
    nextShape[axis] = 1;
    const next = Tensor.alloc(nextShape, g.dtype, false);
    k.reduce('sum', cur.data as FloatArray, next.data as FloatArray, outer, curShape[axis]!, inner);
    if (cur !== g) cur.release();
    cur = next;
    curShape = nextShape;
  }
  const result = cur.view(shape);
  if (cur !== g) cur.release();
  return result;
}

/** Materialise `t` broadcast to `shape` (a new contiguous tensor). */
export function expandTo(t: Tensor, shape: readonly number[]): Tensor {
  const out = Tensor.alloc(shape, t.dtype, false);
  kernelsOf(t).copyStrided(
    t.data,
    0,
    broadcastStrides(t.shape, shape),
    out.data,
    0,
    contiguousStrides(shape),
    shape,
  );
  return out;
}
