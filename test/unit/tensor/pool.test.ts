/** The buffer pool's cap on free bytes: a fixed number, or (default) twice the most ever lent at once. */
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { BufferPool } from '../../../src/tensor/pool.ts';

/** Acquire four 1 KB f32 arrays, then release them all. */
function cycle(p: BufferPool) {
  const arrays = [0, 1, 2, 3].map(() => p.acquire('f32', 256, true));
  for (const a of arrays) p.release(a);
}

describe('BufferPool', () => {
  it('by default keeps up to twice the most bytes ever lent at once, so the next step reuses them all', () => {
    const p = new BufferPool(1024);
    cycle(p);
    assert.equal(p.freeCap(), 8192);
    assert.equal(p.snapshot().freeBytes, 4096, 'all four buffers kept, above the 1 KB floor');
    cycle(p);
    assert.equal(p.snapshot().allocations, 4, 'the second cycle allocated nothing');
    assert.equal(p.snapshot().reuses, 4);
    // 4 KB of 1 KB buffers are free; a step that then needs 4 KB of 2 KB buffers keeps both sets
    const other = [0, 1].map(() => p.acquire('f32', 512, false));
    for (const a of other) p.release(a);
    assert.equal(p.snapshot().freeBytes, 8192, 'the 2 KB buffers were kept beside the 1 KB ones');
  });

  it('a fixed maxFreeBytes keeps only that much; trim forgets the high-water mark', () => {
    const fixed = new BufferPool(1024);
    fixed.maxFreeBytes = 1024;
    cycle(fixed);
    assert.equal(fixed.snapshot().freeBytes, 1024);
    cycle(fixed);
    assert.equal(fixed.snapshot().allocations, 7, 'three of four buffers were left to the GC and made again');
    const p = new BufferPool(1024);
    cycle(p);
    p.trim();
    assert.equal(p.snapshot().freeBytes, 0);
    assert.equal(p.freeCap(), 1024, 'back to the floor');
    const one = p.acquire('f32', 256, false);
    p.release(one);
    assert.equal(p.freeCap(), 2048, 'twice the 1 KB lent since the trim');
  });
});
