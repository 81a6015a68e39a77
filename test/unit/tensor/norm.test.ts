import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { fromArray, layerNorm, rmsNorm, type Tensor } from '../../../src/tensor/index.ts';
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

describe('rmsNorm / layerNorm forward', () => {
  it('rmsNorm = x / sqrt(mean(x^2) + eps) * weight', () => {
    const x = fromArray([
      [1, 2, 3],
      [0, -4, 0.5],
    ]);
    const w = fromArray([1, 0.5, -2]);
    const eps = 1e-5;
    const expected: number[] = [];
    for (const row of [
      [1, 2, 3],
      [0, -4, 0.5],
    ]) {
      const r = 1 / Math.sqrt((row[0]! ** 2 + row[1]! ** 2 + row[2]! ** 2) / 3 + eps);
      expected.push(row[0]! * r * 1, row[1]! * r * 0.5, row[2]! * r * -2);
    }
    assertClose(rmsNorm(x, w, eps).toArray(), expected, 1e-6, 'rmsNorm');
    const noWeight = rmsNorm(x, null, eps).toArray();
    assertClose([noWeight[1]!], [2 / Math.sqrt(14 / 3 + eps)], 1e-6, 'rmsNorm without weight');
  });
  it('layerNorm = (x - mean) / sqrt(var + eps) * weight + bias (biased variance)', () => {
    const x = fromArray([[1, 2, 6]]);
    const mean = 3;
    const variance = (4 + 1 + 9) / 3;
    const r = 1 / Math.sqrt(variance + 1e-5);
    const w = fromArray([2, 1, 1]);
    const b = fromArray([0, 1, -1]);
    assertClose(
      layerNorm(x, w, b, 1e-5).toArray(),
      [2 * (1 - mean) * r, (2 - mean) * r + 1, (6 - mean) * r - 1],
      1e-6,
      'layerNorm',
    );
    assertClose(
      layerNorm(x, null, null, 1e-5).toArray(),
      [(1 - mean) * r, (2 - mean) * r, (6 - mean) * r],
      1e-6,
      'plain',
    );
  });
  it('checks the weight shape and dtype', () => {
    assert.throws(
      () => rmsNorm(fromArray([[1, 2]]), fromArray([1, 2, 3]), 1e-5),
      /rmsNorm: weight \[3\] does not match the last dim 2/,
    );
    assert.throws(
      () => rmsNorm(fromArray([[1, 2]]), fromArray([1, 2], undefined, { dtype: 'f64' }), 1e-5),
      /dtypes differ/,
    );
  });
});

describe('norm gradients (finite differences, f64)', () => {
  const shapes = [
    [3, 5],
    [1, 4],
    [2, 1, 3],
    [4, 1],
  ];
  for (const shape of shapes) {
    const cols = shape[shape.length - 1]!;
    it(`rmsNorm ${JSON.stringify(shape)} with weight`, () => {
      gradCheck('rmsNorm', (x, w) => rmsNorm(x, w, 1e-5), [input64(shape, 1), input64([cols], 2)]);
    });
    it(`rmsNorm ${JSON.stringify(shape)} without weight`, () => {
      gradCheck('rmsNorm', (x) => rmsNorm(x, null, 1e-5), [input64(shape, 3)]);
    });
    it(`layerNorm ${JSON.stringify(shape)} with weight and bias`, () => {
      gradCheck('layerNorm', (x, w, b) => layerNorm(x, w, b, 1e-5), [
        input64(shape, 4),
        input64([cols], 5),
        input64([cols], 6),
      ]);
    });
    it(`layerNorm ${JSON.stringify(shape)} with weight only / none`, () => {
      gradCheck('layerNorm', (x, w) => layerNorm(x, w, null, 1e-5), [input64(shape, 7), input64([cols], 8)]);
      gradCheck('layerNorm', (x) => layerNorm(x, null, null, 1e-5), [input64(shape, 9)]);
    });
  }
  it('gradient reaches only the weight when x is frozen', () => {
    const x: Tensor = input64([3, 4], 10);
    x.requiresGrad = false;
    gradCheck('rmsNorm frozen x', (xx, w) => rmsNorm(xx, w, 1e-5), [x, input64([4], 11)]);
    gradCheck('layerNorm frozen x', (xx, w, b) => layerNorm(xx, w, b, 1e-5), [
      x,
      input64([4], 12),
      input64([4], 13),
    ]);
  });
});
