// Reductions (sum, mean, max, logsumexp) and layout ops (reshape, permute, transpose, slice, concat,
// stack, unsqueeze, expand, clone): forward values on hand examples and against a naive reference,
// finite-difference gradients in f64 on shapes with size-1 dims, and error messages.
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import {
  type Axes,
  backward,
  clone,
  concat,
  expand,
  fromArray,
  logsumexp,
  max,
  mean,
  permute,
  Rng,
  reshape,
  slice,
  stack,
  sum,
  type Tensor,
  transpose,
  unsqueeze,
} from '../../../src/tensor/index.ts';
import { gradCheck, input64 } from '../../helpers/gradcheck.ts';

function assertClose(
  actual: readonly number[],
  expected: readonly number[],
  tol: number,
  what: string,
): void {
  assert.equal(actual.length, expected.length, `${what}: length`);
  actual.forEach((a, i) => {
    assert.ok(Math.abs(a - expected[i]!) <= tol, `${what}[${i}]: ${a} vs ${expected[i]} (tol ${tol})`);
  });
}

/** f64 input whose values are distinct and at least 0.25 apart (no ties, even under +-eps). */
function distinct64(shape: readonly number[], seed: number): Tensor {
  const n = shape.reduce((p, d) => p * d, 1);
  const rng = new Rng(seed);
  const perm = Array.from({ length: n }, (_, i) => i);
  for (let i = n - 1; i > 0; i--) {
    const j = rng.int(i + 1);
    [perm[i], perm[j]] = [perm[j]!, perm[i]!];
  }
  const t = fromArray(
    Float64Array.from(perm, (p) => (p - n / 2) * 0.25),
    shape,
    {
      dtype: 'f64',
      track: false,
    },
  );
  t.requiresGrad = true;
  return t;
}

type ReduceName = 'sum' | 'mean' | 'max' | 'logsumexp';

/** Naive reduction over normalised `axes`, keepdim shape, by walking every index. */
function naiveReduce(
  data: ArrayLike<number>,
  shape: readonly number[],
  axes: readonly number[],
  op: ReduceName,
): number[] {
  const outShape = shape.map((d, i) => (axes.includes(i) ? 1 : d));
  const outSize = outShape.reduce((p, d) => p * d, 1);
  const groups: number[][] = Array.from({ length: outSize }, () => []);
  const idx = new Array<number>(shape.length).fill(0);
  for (let flat = 0; flat < data.length; flat++) {
    let o = 0;
    for (let i = 0; i < shape.length; i++) o = o * outShape[i]! + (axes.includes(i) ? 0 : idx[i]!);
    groups[o]!.push(data[flat]!);
    for (let i = shape.length - 1; i >= 0; i--) {
      idx[i]!++;
      if (idx[i]! < shape[i]!) break;
      idx[i] = 0;
    }
  }
  return groups.map((g) => {
    const s = g.reduce((a, b) => a + b, 0);
    if (op === 'sum') return s;
    if (op === 'mean') return s / g.length;
    const m = Math.max(...g);
    if (op === 'max') return m;
    return m + Math.log(g.reduce((a, b) => a + Math.exp(b - m), 0));
  });
}

function normAxes(axes: Axes, rank: number): number[] {
  if (axes === undefined) return Array.from({ length: rank }, (_, i) => i);
  const list = typeof axes === 'number' ? [axes] : [...axes];
  return list.map((a) => (a < 0 ? a + rank : a));
}

const reducers: Record<ReduceName, (x: Tensor, axes?: Axes, keepdim?: boolean) => Tensor> = {
  sum,
  mean,
  max,
  logsumexp,
};

/** Shapes (with size-1 dims) and axis choices: all, one, several, negative. */
const reduceCases: [number[], Axes][] = [
  [[5], undefined],
  [[5], 0],
  [[5], -1],
  [[3, 4], undefined],
  [[3, 4], 0],
  [[3, 4], -1],
  [
    [3, 4],
    [0, 1],
  ],
  [[2, 1, 3], 1],
  [
    [2, 1, 3],
    [0, 2],
  ],
  [
    [2, 1, 3],
    [-1, -3],
  ],
  [
    [2, 3, 1, 4],
    [1, 3],
  ],
  [
    [2, 3, 1, 4],
    [-2, 0],
  ],
  [[1, 4, 3], -2],
  [
    [1, 4, 3],
    [0, 1, 2],
  ],
  [[3, 2, 4], []],
];

function expectedShape(shape: readonly number[], axes: readonly number[], keepdim: boolean): number[] {
  return keepdim
    ? shape.map((d, i) => (axes.includes(i) ? 1 : d))
    : shape.filter((_, i) => !axes.includes(i));
}

describe('reductions forward', () => {
  const x = fromArray([
    [1, 2, 3],
    [4, 5, 6],
  ]);
  it('sum over all, one and several axes, keepdim or not', () => {
    assert.deepEqual(sum(x).shape, []);
    assert.equal(sum(x).item(), 21);
    assert.deepEqual(sum(x, 0).toNested(), [5, 7, 9]);
    assert.deepEqual(sum(x, -1).toNested(), [6, 15]);
    assert.deepEqual(sum(x, 1, true).toNested(), [[6], [15]]);
    assert.deepEqual(sum(x, [0, 1], true).toNested(), [[21]]);
    assert.deepEqual(sum(x, [-1, 0]).shape, []);
  });
  it('mean divides by the reduced count', () => {
    assert.equal(mean(x).item(), 3.5);
    assert.deepEqual(mean(x, 0).toNested(), [2.5, 3.5, 4.5]);
    assert.deepEqual(mean(x, -1, true).toNested(), [[2], [5]]);
  });
  it('max picks the largest element', () => {
    const y = fromArray([
      [1, 5, 3],
      [4, 2, 6],
    ]);
    assert.equal(max(y).item(), 6);
    assert.deepEqual(max(y, 0).toNested(), [4, 5, 6]);
    assert.deepEqual(max(y, 1, true).toNested(), [[5], [6]]);
    assert.deepEqual(max(fromArray([-3, -1, -2])).item(), -1);
  });
  it('logsumexp is log(sum(exp)), stable for large values', () => {
    const y = fromArray(
      [
        [0, Math.log(3)],
        [1000, 1000],
      ],
      undefined,
      { dtype: 'f64' },
    );
    assertClose(logsumexp(y, 1).toArray(), [Math.log(4), 1000 + Math.log(2)], 1e-9, 'logsumexp');
    assertClose(logsumexp(fromArray([-1000, -1000])).toArray(), [-1000 + Math.log(2)], 1e-3, 'lse f32');
    assert.deepEqual(logsumexp(y, 0, true).shape, [1, 2]);
  });
  it('matches a naive reference on every case (f64 and f32)', () => {
    for (const [shape, axes] of reduceCases) {
      const ax = normAxes(axes, shape.length);
      for (const dtype of ['f64', 'f32'] as const) {
        const t = input64(shape, 7 + shape.length);
        const xin = dtype === 'f64' ? t : fromArray(t.data as Float64Array, shape, { dtype: 'f32' });
        for (const name of Object.keys(reducers) as ReduceName[]) {
          const expected = naiveReduce(xin.data as Float64Array | Float32Array, shape, ax, name);
          for (const keepdim of [false, true]) {
            const out = reducers[name](xin, axes, keepdim);
            const what = `${name}(${dtype} [${shape}], ${JSON.stringify(axes)}, keepdim=${keepdim})`;
            assert.deepEqual(out.shape, expectedShape(shape, ax, keepdim), `${what}: shape`);
            assert.equal(out.dtype, dtype, `${what}: dtype`);
            assertClose(out.toArray(), expected, dtype === 'f64' ? 1e-12 : 1e-5, what);
          }
        }
      }
    }
  });
  it('max splits the gradient evenly among tied maxima', () => {
    const y = fromArray([1, 3, 3, 2], undefined, { dtype: 'f64' });
    y.requiresGrad = true;
    backward(max(y));
    assert.deepEqual(y.grad!.toArray(), [0, 0.5, 0.5, 0]);
  });
  it('names the op and axis in axis errors', () => {
    assert.throws(() => sum(x, 2), /sum: axis 2 is out of range for a tensor of rank 2/);
    assert.throws(() => mean(x, -3), /mean: axis -3 is out of range for a tensor of rank 2/);
    assert.throws(() => max(x, [1, -1]), /max: repeated axis in \[1,-1\]/);
    assert.throws(() => logsumexp(x, [0, 0]), /logsumexp: repeated axis in \[0,0\]/);
  });
});

describe('reduction gradients (finite differences, f64)', () => {
  for (const [shape, axes] of reduceCases) {
    for (const keepdim of [false, true]) {
      const label = `[${shape}] axes ${JSON.stringify(axes) ?? 'all'} keepdim=${keepdim}`;
      it(label, () => {
        let seed = shape.reduce((p, d) => p * 7 + d, keepdim ? 11 : 3);
        for (const name of ['sum', 'mean', 'logsumexp'] as const) {
          gradCheck(`${name} ${label}`, (t) => reducers[name](t, axes, keepdim), [input64(shape, seed++)]);
        }
        gradCheck(`max ${label}`, (t) => max(t, axes, keepdim), [distinct64(shape, seed++)]);
      });
    }
  }
});

/** Row-major values 0..n-1 of `shape` in f32. */
function iota(shape: readonly number[]): Tensor {
  const n = shape.reduce((p, d) => p * d, 1);
  return fromArray(
    Array.from({ length: n }, (_, i) => i),
    shape,
  );
}

describe('layout ops forward', () => {
  it('reshape keeps row-major order and resolves -1', () => {
    const x = iota([2, 3]);
    assert.deepEqual(reshape(x, [3, 2]).toNested(), [
      [0, 1],
      [2, 3],
      [4, 5],
    ]);
    assert.deepEqual(reshape(x, [-1]).toNested(), [0, 1, 2, 3, 4, 5]);
    assert.deepEqual(reshape(x, [2, -1, 1]).shape, [2, 3, 1]);
    assert.deepEqual(reshape(x, [1, -1]).shape, [1, 6]);
  });
  it('permute and transpose move elements to out[i...] = x[perm...]', () => {
    const x = iota([2, 3, 4]);
    const p = permute(x, [2, 0, 1]);
    assert.deepEqual(p.shape, [4, 2, 3]);
    const src = x.toArray();
    const got = p.toArray();
    for (let a = 0; a < 4; a++)
      for (let b = 0; b < 2; b++)
        for (let c = 0; c < 3; c++) assert.equal(got[a * 6 + b * 3 + c], src[b * 12 + c * 4 + a]);
    assert.deepEqual(permute(x, [-1, 0, 1]).toArray(), got);
    assert.deepEqual(transpose(iota([2, 3])).toNested(), [
      [0, 3],
      [1, 4],
      [2, 5],
    ]);
    assert.deepEqual(transpose(x, 0, 2).shape, [4, 3, 2]);
    assert.deepEqual(transpose(x, 0, 2).toArray(), permute(x, [2, 1, 0]).toArray());
  });
  it('slice takes [start, end) with negative indices from the end', () => {
    const v = iota([10]);
    assert.deepEqual(slice(v, 0, -3).toArray(), [7, 8, 9]);
    assert.deepEqual(slice(v, 0, 2, -5).toArray(), [2, 3, 4]);
    assert.deepEqual(slice(v, -1, 8).toArray(), [8, 9]);
    assert.deepEqual(slice(v, 0, 4, 4).shape, [0]);
    const m = iota([3, 4]);
    assert.deepEqual(slice(m, 1, 1, 3).toNested(), [
      [1, 2],
      [5, 6],
      [9, 10],
    ]);
    assert.deepEqual(slice(m, 0, -1).toNested(), [[8, 9, 10, 11]]);
  });
  it('concat joins along a middle axis', () => {
    const a = fromArray([[[1, 2]], [[3, 4]]]); // [2,1,2]
    const b = fromArray([
      [
        [5, 6],
        [7, 8],
      ],
      [
        [9, 10],
        [11, 12],
      ],
    ]); // [2,2,2]
    const c = fromArray([[[13, 14]], [[15, 16]]]); // [2,1,2]
    const out = concat([a, b, c], 1);
    assert.deepEqual(out.shape, [2, 4, 2]);
    assert.deepEqual(out.toNested(), [
      [
        [1, 2],
        [5, 6],
        [7, 8],
        [13, 14],
      ],
      [
        [3, 4],
        [9, 10],
        [11, 12],
        [15, 16],
      ],
    ]);
    assert.deepEqual(concat([a, b, c], -2).toArray(), out.toArray());
  });
  it('stack adds a new axis', () => {
    const a = fromArray([1, 2]);
    const b = fromArray([3, 4]);
    assert.deepEqual(stack([a, b]).toNested(), [
      [1, 2],
      [3, 4],
    ]);
    assert.deepEqual(stack([a, b], 1).toNested(), [
      [1, 3],
      [2, 4],
    ]);
    assert.deepEqual(stack([a, b], -1).toNested(), [
      [1, 3],
      [2, 4],
    ]);
  });
  it('unsqueeze inserts a size-1 dim', () => {
    const x = iota([2, 3]);
    assert.deepEqual(unsqueeze(x, 0).shape, [1, 2, 3]);
    assert.deepEqual(unsqueeze(x, 1).shape, [2, 1, 3]);
    assert.deepEqual(unsqueeze(x, -1).shape, [2, 3, 1]);
    assert.deepEqual(unsqueeze(x, 2).toArray(), x.toArray());
  });
  it('expand repeats size-1 dims and adds leading dims', () => {
    assert.deepEqual(expand(fromArray([[1], [2]]), [2, 3]).toNested(), [
      [1, 1, 1],
      [2, 2, 2],
    ]);
    assert.deepEqual(expand(fromArray([1, 2]), [2, 2]).toNested(), [
      [1, 2],
      [1, 2],
    ]);
    assert.deepEqual(expand(fromArray([[5]]), [1, 1]).toNested(), [[5]]);
  });
  it('clone copies the data (no sharing)', () => {
    const x = fromArray([1, 2, 3]);
    const y = clone(x);
    (y.data as Float32Array)[0] = 9;
    assert.deepEqual(x.toArray(), [1, 2, 3]);
    assert.deepEqual(y.toArray(), [9, 2, 3]);
    const z = fromArray([1, 2], undefined, { dtype: 'f64' });
    assert.equal(clone(z).dtype, 'f64');
  });
});

describe('layout op errors name the op and the shapes', () => {
  const x = iota([2, 3]);
  it('reshape of a wrong size', () => {
    assert.throws(() => reshape(x, [4, 2]), /reshape: cannot reshape \[2,3\] \(6 elements\) to \[4,2\]/);
    assert.throws(() => reshape(x, [4, -1]), /reshape: cannot reshape \[2,3\] \(6 elements\) to \[4,-1\]/);
    assert.throws(() => reshape(x, [-1, -1]), /reshape: cannot reshape \[2,3\] \(6 elements\) to \[-1,-1\]/);
  });
  it('concat of mismatched shapes', () => {
    assert.throws(
      () => concat([x, iota([3, 3]), iota([2, 2])], 1),
      /concat: \[3,3\] f32 does not match \[2,3\] f32 outside axis 1/,
    );
    assert.throws(() => concat([x, iota([2, 3, 1])], 0), /concat: \[2,3,1\] f32 does not match \[2,3\] f32/);
    assert.throws(() => concat([], 0), /concat: needs at least one tensor/);
  });
  it('stack of mismatched shapes', () => {
    assert.throws(() => stack([x, iota([3, 2])]), /stack: \[3,2\] f32 does not match \[2,3\] f32/);
  });
  it('permute with a bad permutation', () => {
    assert.throws(() => permute(x, [0, 0]), /permute: \[0,0\] is not a permutation of the 2 dims of \[2,3\]/);
    assert.throws(() => permute(x, [1]), /permute: \[1\] is not a permutation of the 2 dims of \[2,3\]/);
    assert.throws(() => permute(x, [0, 2]), /permute: \[0,2\] is not a permutation of the 2 dims of \[2,3\]/);
    assert.throws(() => transpose(x, 0, 2), /transpose: axis 2 is out of range for a tensor of rank 2/);
  });
  it('slice out of range', () => {
    assert.throws(() => slice(x, 1, 1, 5), /slice: range \[1, 5\) is out of bounds for dim 1 of \[2,3\]/);
    assert.throws(() => slice(x, 0, -3), /slice: range \[-3, 2\) is out of bounds for dim 0 of \[2,3\]/);
    assert.throws(() => slice(x, 1, 2, 1), /slice: range \[2, 1\) is out of bounds for dim 1 of \[2,3\]/);
    assert.throws(() => slice(x, 2, 0), /slice: axis 2 is out of range for a tensor of rank 2/);
  });
  it('expand to an incompatible shape', () => {
    assert.throws(() => expand(x, [4, 3]), /expand: cannot expand \[2,3\] to \[4,3\]/);
    assert.throws(() => expand(x, [3]), /expand: cannot expand \[2,3\] to \[3\]/);
  });
  it('unsqueeze out of range', () => {
    assert.throws(() => unsqueeze(x, 3), /unsqueeze: axis 3 is out of range for a tensor of rank 3/);
  });
});

describe('layout op gradients (finite differences, f64)', () => {
  it('reshape (incl. -1 and size-1 dims)', () => {
    gradCheck('reshape [2,3,4]->[6,-1]', (t) => reshape(t, [6, -1]), [input64([2, 3, 4], 1)]);
    gradCheck('reshape [2,3,4]->[-1]', (t) => reshape(t, [-1]), [input64([2, 3, 4], 2)]);
    gradCheck('reshape [1,3,1,2]->[3,2]', (t) => reshape(t, [3, 2]), [input64([1, 3, 1, 2], 3)]);
    gradCheck('reshape [6]->[1,-1,2,1]', (t) => reshape(t, [1, -1, 2, 1]), [input64([6], 4)]);
  });
  it('permute', () => {
    gradCheck('permute [2,3,4] [2,0,1]', (t) => permute(t, [2, 0, 1]), [input64([2, 3, 4], 5)]);
    gradCheck('permute [2,3,4] [-1,0,1]', (t) => permute(t, [-1, 0, 1]), [input64([2, 3, 4], 6)]);
    gradCheck('permute [1,3,1,2] [3,1,0,2]', (t) => permute(t, [3, 1, 0, 2]), [input64([1, 3, 1, 2], 7)]);
  });
  it('transpose', () => {
    gradCheck('transpose [3,4] default', (t) => transpose(t), [input64([3, 4], 8)]);
    gradCheck('transpose [2,1,4] 0,2', (t) => transpose(t, 0, 2), [input64([2, 1, 4], 9)]);
    gradCheck('transpose [2,3,4] -3,-2', (t) => transpose(t, -3, -2), [input64([2, 3, 4], 10)]);
  });
  it('slice (incl. negative indices)', () => {
    gradCheck('slice [3,5,2] axis 1 [1,4)', (t) => slice(t, 1, 1, 4), [input64([3, 5, 2], 11)]);
    gradCheck('slice [3,5,2] axis 1 [-2,)', (t) => slice(t, 1, -2), [input64([3, 5, 2], 12)]);
    gradCheck('slice [3,5,2] axis -2 [0,-1)', (t) => slice(t, -2, 0, -1), [input64([3, 5, 2], 13)]);
    gradCheck('slice [4,1,3] axis 0 [-3,-1)', (t) => slice(t, 0, -3, -1), [input64([4, 1, 3], 14)]);
    gradCheck('slice [2,6] axis -1 [2,3)', (t) => slice(t, -1, 2, 3), [input64([2, 6], 15)]);
  });
  it('concat of 3 tensors along a middle axis', () => {
    gradCheck('concat axis 1', (a, b, c) => concat([a!, b!, c!], 1), [
      input64([2, 1, 3], 16),
      input64([2, 4, 3], 17),
      input64([2, 2, 3], 18),
    ]);
    gradCheck('concat axis -2', (a, b, c) => concat([a!, b!, c!], -2), [
      input64([1, 2, 2, 1], 19),
      input64([1, 2, 3, 1], 20),
      input64([1, 2, 1, 1], 21),
    ]);
  });
  it('concat with an input that does not require grad', () => {
    const fixed = input64([2, 2], 22);
    fixed.requiresGrad = false;
    gradCheck('concat mixed', (a, b) => concat([a!, b!], 0), [input64([3, 2], 23), fixed]);
  });
  it('stack', () => {
    for (const axis of [0, 1, 2, -1]) {
      gradCheck(`stack axis ${axis}`, (a, b, c) => stack([a!, b!, c!], axis), [
        input64([2, 3], 24 + axis),
        input64([2, 3], 30 + axis),
        input64([2, 3], 36 + axis),
      ]);
    }
    gradCheck('stack [1,2]', (a, b) => stack([a!, b!], 1), [input64([1, 2], 42), input64([1, 2], 43)]);
  });
  it('unsqueeze', () => {
    for (const axis of [0, 1, 3, -1]) {
      gradCheck(`unsqueeze ${axis}`, (t) => unsqueeze(t, axis), [input64([2, 1, 3], 44 + axis)]);
    }
  });
  it('expand from size-1 dims', () => {
    gradCheck('expand [1,3]->[4,3]', (t) => expand(t, [4, 3]), [input64([1, 3], 50)]);
    gradCheck('expand [2,1,1]->[2,3,4]', (t) => expand(t, [2, 3, 4]), [input64([2, 1, 1], 51)]);
    gradCheck('expand [3]->[2,3]', (t) => expand(t, [2, 3]), [input64([3], 52)]);
    gradCheck('expand [1,2,1]->[3,1,2,5]', (t) => expand(t, [3, 1, 2, 5]), [input64([1, 2, 1], 53)]);
    gradCheck('expand [2,3]->[2,3] (no-op)', (t) => expand(t, [2, 3]), [input64([2, 3], 54)]);
  });
  it('clone', () => {
    gradCheck('clone [2,1,3]', (t) => clone(t), [input64([2, 1, 3], 55)]);
  });
  it('a chain of layout ops and reductions', () => {
    gradCheck(
      'chain',
      (a, b) =>
        logsumexp(slice(permute(concat([a!, expand(b!, [2, 2, 3])], 1), [2, 0, 1]), 2, 1, -1), [0, -1], true),
      [input64([2, 3, 3], 56), input64([1, 2, 1], 57)],
    );
  });
});
