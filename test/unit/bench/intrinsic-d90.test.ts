/** The intrinsic_d90 experiment's d90 rule: the smallest d whose mean taught accuracy reaches 90% of full's. */
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { experiments } from '../../../src/bench/experiment.ts';
import { d90 } from '../../../src/bench/experiments/intrinsic-d90.ts';

describe('bench experiment intrinsic_d90', () => {
  it('d90 is the smallest d at or above 90% of full (any row order); null when none or full is 0 / unknown', () => {
    const rows = [
      { d: 10000, taught: 0.5 },
      { d: 100, taught: 0.2 },
      { d: 1000, taught: 0.45 },
    ];
    assert.equal(d90(0.5, rows), 1000, '0.45 = 90% of 0.5 counts');
    assert.equal(d90(0.4, rows), 1000);
    assert.equal(d90(0.2, rows), 100);
    assert.equal(d90(0.6, rows), null, '0.5 < 0.54');
    assert.equal(d90(0, rows), null);
    assert.equal(d90(null, rows), null);
    assert.equal(d90(0.5, [{ d: 100, taught: null }]), null);
    assert.equal(d90(0.5, rows, 0.4), 100, 'another fraction (0.2 >= 0.4 * 0.5)');
  });

  it('is registered, not run by default, with its reason', () => {
    const e = experiments().find((x) => x.name === 'intrinsic_d90');
    assert.ok(e);
    assert.equal(e.byDefault, false);
    assert.ok(e.heavy && e.heavy.length > 0);
  });
});
