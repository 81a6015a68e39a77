/** Layout ops: reshape (metadata only), permute / transpose, slice, concat, stack, expand. */
import { needsGrad, record } from '../autograd.ts';
import { checkShape, contiguousStrides, formatShape, shapeSize, Tensor } from '../tensor.ts';
import { emptyLike, expandTo, kernelsOf, normAxis, sumToShape } from './util.ts';

/** Same data under a new shape (one dim may be -1). */
export function reshape(x: Tensor, shape: readonly number[]): Tensor {
  const resolved = [...shape];
  const unknown = resolved.indexOf(-1);
  const mismatch = () =>
    new RangeError(
      `reshape: cannot reshape ${formatShape(x.shape)} (${x.size} elements) to ${formatShape(shape)}`,
    );
  if (unknown >= 0) {
    const known = resolved.reduce((p, d, i) => (i === unknown ? p : p * d), 1);
    resolved[unknown] = known === 0 ? 0 : x.size / known;
    // a -1 that does not resolve to a whole size (a wrong total, or a second -1) is a size mismatch
    if (!Number.isInteger(resolved[unknown]) || resolved[unknown]! < 0) throw mismatch();
  }
  checkShape(resolved, 'reshape');
  if (shapeSize(resolved) !== x.size) throw mismatch();
  const out = x.view(resolved);
  if (needsGrad(x)) record('reshape', [x], [out], [], ([g]) => [g!.view(x.shape)]);
  return out;
}

/** Reorder dimensions: out.shape[i] = x.shape[perm[i]]. */
export function permute(x: Tensor, perm: readonly number[]): Tensor {
  const rank = x.rank;
  const inRange = perm.every((a) => Number.isInteger(a) && a >= -rank && a < rank);
  if (
    perm.length !== rank ||
    !inRange ||
    new Set(perm.map((p) => normAxis(p, rank, 'permute'))).size !== rank
  ) {
    throw new RangeError(
      `permute: [${perm.join(',')}] is not a permutation of the ${rank} dims of ${formatShape(x.shape)}`,
    );
  }
  const p = perm.map((a) => normAxis(a, rank, 'permute'));
  const shape = p.map((a) => x.shape[a]!);
  const srcStrides = contiguousStrides(x.shape);
  const out = emptyLike(x, shape);
  kernelsOf(x).copyStrided(
    x.data,
    0,
    p.map((a) => srcStrides[a]!),
    out.data,
    0,
    contiguousStrides(shape),
    shape,
  );
  if (needsGrad(x)) {
    const inverse = new Array<number>(rank);
    p.forEach((a, i) => {
      inverse[a] = i;
    });
    record('permute', [x], [out], [], ([g]) => [permute(g!, inverse)]);
  }
  return out;
}

/** Swap two dimensions. */
export function transpose(x: Tensor, dim0 = -2, dim1 = -1): Tensor {
  const perm = Array.from({ length: x.rank }, (_, i) => i);
  const a = normAxis(dim0, x.rank, 'transpose');
  const b = normAxis(dim1, x.rank, 'transpose');
  perm[a] = b;
  perm[b] = a;
  return permute(x, perm);
}

/** x[..., start:end, ...] along `axis` (end exclusive; negative indices count from the end). */
export function slice(x: Tensor, axis: number, start: number, end?: number): Tensor {
  const ax = normAxis(axis, x.rank, 'slice');
  const n = x.shape[ax]!;
  const s = start < 0 ? start + n : start;
  const e = end === undefined ? n : end < 0 ? end + n : end;
  if (s < 0 || e > n || s > e) {
    throw new RangeError(
      `slice: range [${start}, ${end ?? n}) is out of bounds for dim ${axis} of ${formatShape(x.shape)}`,
    );
  }
  const shape = [...x.shape];
  shape[ax] = e - s;
  const strides = contiguousStrides(x.shape);
  const out = emptyLike(x, shape);
  kernelsOf(x).copyStrided(x.data, s * strides[ax]!, strides, out.data, 0, contiguousStrides(shape), shape);
  if (needsGrad(x)) {
    record('slice', [x], [out], [], ([g]) => {
      const gx = Tensor.alloc(x.shape, g!.dtype, true);
      kernelsOf(g!).copyStrided(
        g!.data,
        0,
        contiguousStrides(shape),
        gx.data,
        s * strides[ax]!,
        strides,
        shape,
      );
      return [gx];
    });
  }
  return out;
}

/** Join tensors along an existing axis. */
export function concat(xs: readonly Tensor[], axis = 0): Tensor {
  if (xs.length === 0) throw new RangeError('concat: needs at least one tensor');
  const first = xs[0]!;
  const ax = normAxis(axis, first.rank, 'concat');
  let total = 0;
  for (const x of xs) {
    const ok =
      x.rank === first.rank &&
      x.dtype === first.dtype &&
      x.shape.every((d, i) => i === ax || d === first.shape[i]);
    if (!ok) {
      throw new RangeError(
        `concat: ${formatShape(x.shape)} ${x.dtype} does not match ${formatShape(first.shape)} ${first.dtype} outside axis ${axis}`,
      );
    }
    total += x.shape[ax]!;
  }
  const shape = [...first.shape];
  shape[ax] = total;
  const out = emptyLike(first, shape);
  const outStrides = contiguousStrides(shape);
  const k = kernelsOf(first);
  const offsets: number[] = [];
  let offset = 0;
  for (const x of xs) {
    offsets.push(offset);
    k.copyStrided(
      x.data,
      0,
      contiguousStrides(x.shape),
      out.data,
      offset * outStrides[ax]!,
      outStrides,
      x.shape,
    );
    offset += x.shape[ax]!;
  }
  if (needsGrad(...xs)) {
    record('concat', xs, [out], [], ([g]) =>
      xs.map((x, i) => (x.requiresGrad ? slice(g!, ax, offsets[i]!, offsets[i]! + x.shape[ax]!) : null)),
    );
  }
  return out;
}

/** Join tensors of equal shape along a new axis. */
export function stack(xs: readonly Tensor[], axis = 0): Tensor {
  if (xs.length === 0) throw new RangeError('stack: needs at least one tensor');
  const first = xs[0]!;
  for (const x of xs) {
    if (x.dtype !== first.dtype || x.rank !== first.rank || x.shape.some((d, i) => d !== first.shape[i])) {
      throw new RangeError(
        `stack: ${formatShape(x.shape)} ${x.dtype} does not match ${formatShape(first.shape)} ${first.dtype}`,
      );
    }
  }
  const rank = first.rank + 1;
  const ax = normAxis(axis, rank, 'stack');
  const expanded = xs.map((x) => {
    const shape = [...x.shape];
    shape.splice(ax, 0, 1);
    return reshape(x, shape);
  });
  return concat(expanded, ax);
}

/** Insert a size-1 dim. */
export function unsqueeze(x: Tensor, axis: number): Tensor {
  const ax = normAxis(axis, x.rank + 1, 'unsqueeze');
  const shape = [...x.shape];
  shape.splice(ax, 0, 1);
  return reshape(x, shape);
}

/** Broadcast x to `shape` as a new contiguous tensor. */
export function expand(x: Tensor, shape: readonly number[]): Tensor {
  checkShape(shape, 'expand');
  // only size-1 dims grow (and new leading dims appear); anything else would read out of bounds
  const lead = shape.length - x.rank;
  if (lead < 0 || x.shape.some((d, i) => d !== 1 && d !== shape[lead + i])) {
    throw new RangeError(
      `expand: cannot expand ${formatShape(x.shape)} to ${formatShape(shape)} (only size-1 dims can grow)`,
    );
  }
  const out = expandTo(x, shape);
  if (needsGrad(x)) record('expand', [x], [out], [], ([g]) => [sumToShape(g!, x.shape)]);
  return out;
}

/** A contiguous copy (breaks buffer sharing with views). */
export function clone(x: Tensor): Tensor {
  const out = emptyLike(x);
  (out.data as Float32Array).set(x.data as Float32Array);
  if (needsGrad(x)) record('clone', [x], [out], [], ([g]) => [g]);
  return out;
}
