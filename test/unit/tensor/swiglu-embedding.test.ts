import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { embedding, fromArray, mul, silu, swiglu } from '../../../src/tensor/index.ts';
import { gradCheck, input64 } from '../../helpers/gradcheck.ts';

describe('swiglu', () => {
  it('equals silu(gate) * up', () => {
    const gate = input64([3, 4], 1, 2);
    const up = input64([3, 4], 2);
    const fused = swiglu(gate, up).toArray();
    const composed = mul(silu(gate), up).toArray();
    fused.forEach((v, i) => {
      assert.ok(Math.abs(v - composed[i]!) < 1e-14, `[${i}] ${v} vs ${composed[i]}`);
    });
    // silu(1) * 2 = 2 / (1 + e^-1)
    assert.ok(Math.abs(swiglu(fromArray([1]), fromArray([2])).item() - 2 / (1 + Math.exp(-1))) < 1e-6);
  });
  it('rejects different shapes', () => {
    assert.throws(
      () => swiglu(input64([2, 3], 1), input64([3, 2], 2)),
      /swiglu: gate \[2,3\] and up \[3,2\] must have the same shape/,
    );
  });
  for (const shape of [[3, 4], [1], [2, 1, 5]]) {
    it(`gradient ${JSON.stringify(shape)}`, () => {
      gradCheck('swiglu', swiglu, [input64(shape, 3, 3), input64(shape, 4)]);
    });
  }
});

describe('embedding', () => {
  const table = fromArray([
    [1, 2],
    [3, 4],
    [5, 6],
  ]);
  it('gathers rows, keeping the ids shape', () => {
    const out = embedding(table, fromArray([[2, 0, 2]], [1, 3], { dtype: 'i32' }));
    assert.deepEqual(out.shape, [1, 3, 2]);
    assert.deepEqual(out.toArray(), [5, 6, 1, 2, 5, 6]);
  });
  it('reads a bf16 table (frozen) into f32', () => {
    const t16 = fromArray([1.5, -2, 0.25, 1e-3], [2, 2], { dtype: 'bf16' });
    const out = embedding(t16, fromArray([1, 0], [2], { dtype: 'i32' }));
    assert.equal(out.dtype, 'f32');
    assert.deepEqual(out.toArray().slice(2), [1.5, -2]);
    // 1e-3 is not a bf16 value: what comes out is the rounded one
    assert.ok(out.toArray()[1] !== 1e-3 && Math.abs(out.toArray()[1]! - 1e-3) < 1e-5);
    t16.requiresGrad = true;
    assert.throws(
      () => embedding(t16, fromArray([0], [1], { dtype: 'i32' })),
      /bf16 tables are frozen storage/,
    );
  });
  it('names an id out of range and V', () => {
    assert.throws(
      () => embedding(table, fromArray([0, 3], [2], { dtype: 'i32' })),
      /token id 3 .* V = 3 rows/,
    );
    assert.throws(() => embedding(table, fromArray([-1], [1], { dtype: 'i32' })), /token id -1 /);
    assert.throws(() => embedding(table, fromArray([0], [1])), /ids .* must be i32/);
  });
  it('gradient scatter-adds into the table (repeated ids accumulate)', () => {
    const ids = fromArray([1, 3, 1, 0, 1, 4], [2, 3], { dtype: 'i32' });
    gradCheck('embedding', (t) => embedding(t, ids), [input64([5, 3], 5)]);
    gradCheck('embedding 1x1', (t) => embedding(t, fromArray([0], [1], { dtype: 'i32' })), [
      input64([1, 1], 6),
    ]);
  });
});
