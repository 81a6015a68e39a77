import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { kernels } from '../../../src/backend/index.ts';
import { concat, dropout, fromArray, ones, philoxUniform, randn, slice } from '../../../src/tensor/index.ts';
import { gradCheck, input64 } from '../../helpers/gradcheck.ts';

describe('dropout', () => {
  it('keeps element i iff philoxUniform(seed, offset + i) >= p and scales survivors by 1/(1-p)', () => {
    const n = 64;
    const p = 0.4;
    const out = dropout(ones([n]), p, 7, 5).toArray();
    for (let i = 0; i < n; i++) {
      const keep = philoxUniform(7, 5 + i) >= p;
      assert.ok(Math.abs(out[i]! - (keep ? 1 / (1 - p) : 0)) < 1e-6, `element ${i}`);
    }
  });
  it('drops about a fraction p', () => {
    const n = 20000;
    const kept = dropout(ones([n]), 0.3, 123)
      .toArray()
      .filter((v) => v !== 0).length;
    assert.ok(Math.abs(kept / n - 0.7) < 0.02, `kept ${kept / n}`);
  });
  it('masks do not depend on how a tensor is split into calls (kernel and op)', () => {
    const n = 37;
    const x = randn([n], { seed: 3 });
    const whole = new Float32Array(n);
    const k = kernels();
    k.dropout(x.data as Float32Array, whole, n, 0.5, 99, 1000);
    const first = new Float32Array(20);
    const second = new Float32Array(17);
    k.dropout((x.data as Float32Array).subarray(0, 20), first, 20, 0.5, 99, 1000);
    k.dropout((x.data as Float32Array).subarray(20), second, 17, 0.5, 99, 1020);
    assert.deepEqual([...first, ...second], [...whole]);
    const joined = concat([dropout(slice(x, 0, 0, 20), 0.5, 99, 0), dropout(slice(x, 0, 20), 0.5, 99, 20)]);
    assert.deepEqual(joined.toArray(), dropout(x, 0.5, 99, 0).toArray());
    // a different seed or offset gives a different mask
    assert.notDeepEqual(dropout(x, 0.5, 98).toArray(), dropout(x, 0.5, 99).toArray());
    assert.notDeepEqual(dropout(x, 0.5, 99, 1).toArray(), dropout(x, 0.5, 99, 0).toArray());
  });
  it('offsets beyond 2^32 work (64-bit counters)', () => {
    const x = ones([8]);
    const offset = 2 ** 32 + 3;
    const out = dropout(x, 0.5, 1, offset).toArray();
    for (let i = 0; i < 8; i++) assert.equal(out[i] !== 0, philoxUniform(1, offset + i) >= 0.5);
  });
  it('returns x itself at rate 0 and rejects bad rates', () => {
    const x = fromArray([1, 2]);
    assert.equal(dropout(x, 0, 1), x);
    assert.throws(() => dropout(x, -0.1, 1), /rate must be in \[0, 1\]/);
  });
  it('gradient uses the same mask', () => {
    gradCheck('dropout', (x) => dropout(x, 0.3, 17, 4), [input64([3, 5], 1)]);
    gradCheck('dropout 1', (x) => dropout(x, 0.5, 2), [input64([1], 2)]);
  });
});
