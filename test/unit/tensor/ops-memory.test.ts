import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import {
  add,
  attention,
  backward,
  crossEntropy,
  dropout,
  embedding,
  fromArray,
  layerNorm,
  linearCrossEntropy,
  logSoftmax,
  noGrad,
  pool,
  randn,
  rmsNorm,
  rope,
  ropeTables,
  scope,
  softmax,
  sum,
  swiglu,
  type Tensor,
} from '../../../src/tensor/index.ts';

/** An untracked leaf that requires grad (like a parameter). */
function leaf(shape: number[], seed: number): Tensor {
  const t = randn(shape, { seed, track: false });
  t.requiresGrad = true;
  return t;
}

describe('transformer ops return every buffer to the pool', () => {
  const x = leaf([2, 3, 4, 8], 1);
  const k = leaf([2, 3, 2, 8], 2);
  const v = leaf([2, 3, 2, 8], 3);
  const w = leaf([8], 4);
  const b = leaf([8], 5);
  const table = leaf([10, 8], 6);
  const head = leaf([10, 8], 7);
  const ids = fromArray([1, 2, 3, 9], [4], { dtype: 'i32', track: false });
  const labels = fromArray([1, 2, 3, 4, 5, 6, 7, -100, 0, 1], [10], { dtype: 'i32', track: false });
  const { cos, sin } = ropeTables(8, 8, 100);
  const positions = Int32Array.from([0, 1, 2, 3, 4, 5]);
  const leaves = [x, k, v, w, b, table, head];
  const cases: [string, () => Tensor][] = [
    ['softmax', () => sum(softmax(x, 1))],
    ['logSoftmax', () => sum(logSoftmax(x))],
    ['rmsNorm', () => sum(rmsNorm(x, w, 1e-5))],
    ['layerNorm', () => sum(layerNorm(x, w, b, 1e-5))],
    ['rope', () => sum(rope(x, cos, sin, positions))],
    ['attention', () => sum(attention(x, k, v, { dropout: 0.2, seed: 1 }))],
    ['swiglu', () => sum(swiglu(x, x))],
    ['embedding', () => sum(embedding(table, ids))],
    ['dropout', () => sum(dropout(x, 0.3, 1))],
    ['crossEntropy', () => crossEntropy(table, labels)],
    [
      'linearCrossEntropy',
      () => {
        const r = linearCrossEntropy(table, head, labels);
        return add(add(sum(r.logp), sum(r.entropy)), sum(r.top1));
      },
    ],
  ];
  for (const [name, f] of cases) {
    it(`${name}: after forward + backward, and after a no-grad forward`, () => {
      const before = pool.snapshot().liveBytes;
      scope(() => backward(f()));
      for (const t of leaves) {
        t.grad?.dispose();
        t.grad = null;
      }
      assert.equal(pool.snapshot().liveBytes, before, 'forward + backward');
      noGrad(() =>
        scope(() => {
          f();
        }),
      );
      assert.equal(pool.snapshot().liveBytes, before, 'no-grad forward');
    });
  }
});
