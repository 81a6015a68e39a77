import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import {
  combineTaskVectors,
  cutFromSorted,
  evaluateSetting,
  linearCombine,
  modelStockRatio,
  modelStockTensors,
  RadixRankSelector,
  rankBand,
  slerpTensors,
  sparsifyTaskVector,
  tensorPosition,
} from '../../../src/merge/index.ts';
import { Rng } from '../../../src/tensor/index.ts';

const f32 = (values: number[]) => Float32Array.from(values);
const close = (a: ArrayLike<number>, b: ArrayLike<number>, tol = 1e-6) => {
  assert.equal(a.length, b.length);
  for (let i = 0; i < a.length; i++) assert.ok(Math.abs(a[i]! - b[i]!) <= tol, `[${i}] ${a[i]} vs ${b[i]}`);
};

/** Distinct random magnitudes with random signs. */
function randomDelta(n: number, seed: number): Float32Array {
  const rng = new Rng(seed);
  return Float32Array.from({ length: n }, () => rng.normal());
}

/** Indices of the entries ranked [start, end) by |value| descending, ties by position. */
function band(values: Float32Array, start: number, end: number): Set<number> {
  const order = [...values.keys()].sort((a, b) => Math.abs(values[b]!) - Math.abs(values[a]!) || a - b);
  return new Set(order.slice(start, end));
}

const nonZero = (values: Float32Array) => new Set([...values.keys()].filter((j) => values[j] !== 0));

describe('TIES sign election and divisor', () => {
  // base 1; task vectors below; weights 1, 1, 2 (weighted terms of model 3: [1, 2, 0, -2, -1])
  const base = f32([1, 1, 1, 1, 1]);
  const deltas = [
    [1, -2, 0, 3, 0.5],
    [-1, -1, 0, -1, 0.5],
    [0.5, 1, 0, -1, -0.5],
  ];
  const vectors = (weights: number[]) =>
    deltas.map((d, i) => ({ theta: f32(d.map((x) => 1 + x)), weight: weights[i]!, scale: 1 }));
  const run = (options: Partial<Parameters<typeof combineTaskVectors>[2]>) => {
    const out = new Float32Array(5);
    combineTaskVectors(
      base,
      vectors([1, 1, 2]),
      { consensus: true, normalize: true, divisor: 'weights', lambda: 1, ...options },
      out,
    );
    return [...out].map((v) => v - 1);
  };

  it('elects the sign of the weighted sum (0 counts as +), keeps agreeing non-zero terms, divides by their weights', () => {
    // j0: sum 1 -> +, models 1 and 3 agree: (1 + 1) / (1 + 2); j1: sum -1 -> -, models 1, 2: -3 / 2;
    // j2: all zero -> nothing agrees, divisor 0 counts as 1; j3: sum 0 -> +, model 1 alone: 3 / 1;
    // j4: sum 0 -> +, models 1 and 2: 1 / 2.
    close(run({}), [2 / 3, -1.5, 0, 3, 0.5]);
  });

  it('divisor: count divides by the number of agreeing models (paper / PEFT)', () => {
    close(run({ divisor: 'count' }), [1, -1.5, 0, 3, 0.5]);
  });

  it('normalize: false sums the agreeing terms; lambda scales the merged vector', () => {
    close(run({ normalize: false }), [2, -3, 0, 3, 1]);
    close(run({ normalize: false, lambda: 0.5 }), [1, -1.5, 0, 1.5, 0.5]);
  });

  it('without consensus: weighted sum, normalized by the sum of weights', () => {
    const out = new Float32Array(5);
    combineTaskVectors(
      base,
      vectors([1, 1, 2]),
      { consensus: false, normalize: true, divisor: 'weights', lambda: 1 },
      out,
    );
    close(
      [...out].map((v) => v - 1),
      [1 / 4, -1 / 4, 0, 0, 0],
    );
  });
});

describe('sparsification', () => {
  it('magnitude keeps exactly the top floor(density * n) entries; density 1 is the identity', () => {
    const delta = randomDelta(1000, 1);
    const theta = Float32Array.from(delta);
    const r = sparsifyTaskVector(theta, null, { method: 'magnitude', density: 0.2, rescale: 'none' });
    assert.equal(r.kept, 200);
    assert.equal(r.scale, 1);
    assert.deepEqual(nonZero(theta), band(delta, 0, 200));
    const same = Float32Array.from(delta);
    assert.deepEqual(sparsifyTaskVector(same, null, { method: 'magnitude', density: 1, rescale: 'l1' }), {
      kept: 1000,
      scale: 1,
    });
    assert.deepEqual(same, delta);
  });

  it('breaks ties by position so counts stay exact', () => {
    const theta = f32([2, -2, 2, 2, -2, 2, 2, 2, -2, 2]);
    assert.equal(
      sparsifyTaskVector(theta, null, { method: 'magnitude', density: 0.3, rescale: 'none' }).kept,
      3,
    );
    assert.deepEqual([...theta], [2, -2, 2, 0, 0, 0, 0, 0, 0, 0]);
  });

  it('breadcrumbs removes the top gamma fraction and keeps exactly floor(density * n) below it', () => {
    const delta = randomDelta(1000, 2);
    const theta = Float32Array.from(delta);
    const r = sparsifyTaskVector(theta, null, {
      method: 'magnitude_outliers',
      density: 0.3,
      gamma: 0.05,
      rescale: 'none',
    });
    assert.equal(r.kept, 300);
    assert.deepEqual(nonZero(theta), band(delta, 50, 350));
    // density + gamma > 1: fewer outliers are removed (mergekit's rule) so the kept count holds
    assert.deepEqual(rankBand('magnitude_outliers', 100, 0.98, 0.05), { start: 2, end: 100 });
    const t2 = randomDelta(100, 3);
    assert.equal(
      sparsifyTaskVector(t2, null, {
        method: 'magnitude_outliers',
        density: 0.98,
        gamma: 0.05,
        rescale: 'none',
      }).kept,
      98,
    );
  });

  it('breadcrumbs with scope: row keeps exactly the counts in every row', () => {
    const rows = 20;
    const cols = 37;
    const delta = randomDelta(rows * cols, 4);
    const theta = Float32Array.from(delta);
    const r = sparsifyTaskVector(theta, null, {
      method: 'magnitude_outliers',
      density: 0.4,
      gamma: 0.1,
      rescale: 'none',
      scope: 'row',
      rowLength: cols,
    });
    assert.equal(r.kept, rows * 14);
    for (let row = 0; row < rows; row++) {
      const original = delta.subarray(row * cols, (row + 1) * cols);
      const kept = nonZero(theta.subarray(row * cols, (row + 1) * cols));
      assert.equal(kept.size, Math.floor(0.4 * cols));
      assert.deepEqual(
        kept,
        band(Float32Array.from(original), Math.floor(0.1 * cols), Math.floor(0.1 * cols) + 14),
      );
    }
  });

  it('sparsifies the task vector theta - base, writing base into dropped entries', () => {
    const base = f32([1, 2, 3, 4]);
    const theta = f32([1.5, 2, 2, 4.1]);
    sparsifyTaskVector(theta, base, { method: 'magnitude', density: 0.5, rescale: 'none' });
    assert.deepEqual([...theta], [1.5, 2, 2, 4]);
  });

  it('DARE with density 1 is the identity', () => {
    const delta = randomDelta(500, 5);
    const theta = Float32Array.from(delta);
    const r = sparsifyTaskVector(theta, null, {
      method: 'random',
      density: 1,
      rescale: 'l1',
      rng: new Rng(0),
    });
    assert.deepEqual(r, { kept: 500, scale: 1 });
    assert.deepEqual(theta, delta);
  });

  it('DARE with rescale: inverse_density keeps the expected delta (fixed seed)', () => {
    const n = 20000;
    const p = 0.3;
    const delta = Float32Array.from({ length: n }, (_, j) => 0.5 + (j % 10) * 0.1);
    const theta = Float32Array.from(delta);
    const r = sparsifyTaskVector(theta, null, {
      method: 'random',
      density: p,
      rescale: 'inverse_density',
      rng: new Rng(42),
    });
    assert.equal(r.scale, 1 / p);
    let expected = 0;
    let estimate = 0;
    let variance = 0;
    for (let j = 0; j < n; j++) {
      expected += delta[j]!;
      estimate += r.scale * theta[j]!;
      variance += (delta[j]! ** 2 * (1 - p)) / p;
    }
    assert.ok(
      Math.abs(estimate - expected) < 4 * Math.sqrt(variance),
      `${estimate} vs ${expected} (sd ${Math.sqrt(variance)})`,
    );
    assert.ok(Math.abs(r.kept / n - p) < 4 * Math.sqrt((p * (1 - p)) / n));
  });

  it('rescale: l1 (mergekit) keeps the L1 norm of the tensor', () => {
    const delta = randomDelta(2000, 6);
    const theta = Float32Array.from(delta);
    const r = sparsifyTaskVector(theta, null, {
      method: 'random',
      density: 0.25,
      rescale: 'l1',
      rng: new Rng(7),
    });
    const l1 = (xs: Float32Array, s = 1) => xs.reduce((sum, x) => sum + Math.abs(s * x), 0);
    assert.ok(Math.abs(l1(theta, r.scale) - l1(delta)) < 1e-6 * l1(delta));
  });
});

describe('exact rank selection', () => {
  it('radix and sorted cuts take exactly the top r, ties by position', () => {
    const rng = new Rng(9);
    const values = Float32Array.from({ length: 3000 }, () => Math.round(rng.uniform() * 50) / 8);
    const sorted = Float32Array.from(values).sort();
    for (const rank of [0, 1, 17, 1500, 2999, 3000]) {
      const selector = new RadixRankSelector([rank]);
      for (const v of values) selector.addHigh(v);
      selector.finishHigh();
      if (selector.needsLow) for (const v of values) selector.addLow(v);
      for (const cut of [selector.cuts()[0]!, cutFromSorted(sorted, rank)]) {
        const taken = new Set([...values.keys()].filter((j) => cut.takes(values[j]!)));
        assert.deepEqual(taken, band(values, 0, rank), `rank ${rank}`);
      }
    }
  });
});

describe('slerp, linear, model stock', () => {
  it('slerp returns the endpoints at t = 0 and 1 and the spherical midpoint', () => {
    const v0 = randomDelta(64, 10);
    const v1 = randomDelta(64, 11);
    const out = new Float32Array(64);
    slerpTensors(0, v0, v1, out);
    assert.deepEqual(out, v0);
    slerpTensors(1, v0, v1, out);
    assert.deepEqual(out, v1);
    const mid = new Float32Array(2);
    assert.equal(slerpTensors(0.5, f32([1, 0]), f32([0, 1]), mid).lerp, false);
    close(mid, [Math.SQRT1_2, Math.SQRT1_2]);
    // norms 2 and 1 at a right angle, t = 1/3: s0 = sin(pi/3), s1 = sin(pi/6)
    slerpTensors(1 / 3, f32([2, 0]), f32([0, 1]), mid);
    close(mid, [2 * Math.sin(Math.PI / 3), Math.sin(Math.PI / 6)]);
  });

  it('slerp falls back to lerp for colinear tensors', () => {
    const out = new Float32Array(3);
    assert.equal(slerpTensors(0.25, f32([1, 2, 3]), f32([2, 4, 6]), out).lerp, true);
    close(out, [1.25, 2.5, 3.75]);
  });

  it('linear: weighted mean, or weighted sum without normalize', () => {
    const out = new Float32Array(2);
    linearCombine([f32([1, 2]), f32([3, 6])], [1, 3], true, out);
    close(out, [2.5, 5]);
    linearCombine([f32([1, 2]), f32([3, 6])], [1, 3], false, out);
    close(out, [10, 20]);
  });

  it('model stock: t = N cos / (1 + (N - 1) cos) on a hand example', () => {
    assert.equal(modelStockRatio(3, 0.5), 0.75);
    const out = new Float32Array(2);
    // offsets [1, 0] and [1, 1] from base 0: cos = 1/sqrt 2, t = 2c / (1 + c), out = t * mean
    const ratios = modelStockTensors(f32([0, 0]), [f32([1, 0]), f32([1, 1])], false, 2, out);
    const c = Math.SQRT1_2;
    const t = (2 * c) / (1 + c);
    close(ratios, [t]);
    close(out, [t, t * 0.5]);
    // orthogonal offsets: cos 0, t 0, the base
    modelStockTensors(f32([5, 5]), [f32([6, 5]), f32([5, 6])], false, 2, out);
    close(out, [5, 5]);
    // filter_wise: one ratio per row
    const rows = new Float32Array(4);
    const perRow = modelStockTensors(
      f32([0, 0, 0, 0]),
      [f32([1, 0, 1, 0]), f32([1, 1, 2, 0])],
      true,
      2,
      rows,
    );
    close(perRow, [t, 1]);
  });
});

describe('parameter settings', () => {
  it('evaluates scalars, gradients over the layers and filters on the tensor name', () => {
    assert.equal(evaluateSetting(0.3, 'x', 0.7), 0.3);
    assert.equal(evaluateSetting([0, 1], 'x', 0.5), 0.5);
    assert.equal(evaluateSetting([0, 0.5, 1, 0], 'x', 5 / 6), 0.5);
    const byModule = [{ filter: 'self_attn', value: [0, 1] }, { filter: 'mlp', value: 0.7 }, { value: 0.1 }];
    assert.equal(evaluateSetting(byModule, 'model.layers.1.self_attn.q_proj.weight', 1), 1);
    assert.equal(evaluateSetting(byModule, 'model.layers.0.mlp.up_proj.weight', 0), 0.7);
    assert.equal(evaluateSetting(byModule, 'model.norm.weight', 1), 0.1);
    assert.equal(evaluateSetting([{ filter: 'mlp', value: 2 }], 'model.norm.weight', 1), undefined);
    assert.equal(tensorPosition('model.layers.3.mlp.up_proj.weight', 7), 0.5);
    assert.equal(tensorPosition('model.embed_tokens.weight', 7), 0);
    assert.equal(tensorPosition('lm_head.weight', 7), 1);
  });
});
