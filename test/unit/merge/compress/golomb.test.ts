import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { FormatError } from '../../../../src/errors.ts';
import {
  BitReader,
  BitWriter,
  readRice,
  riceParameterFor,
  writeRice,
} from '../../../../src/merge/compress-golomb.ts';
import { Rng } from '../../../../src/tensor/index.ts';

describe('ComPEFT Golomb-Rice codes', () => {
  it('chooses the Rice parameter from the density', () => {
    assert.equal(riceParameterFor(1), 0);
    assert.equal(riceParameterFor(0.5), 0);
    assert.equal(riceParameterFor(0.2), 2);
    assert.equal(riceParameterFor(0.05), 4);
    assert.equal(riceParameterFor(0.005), 7);
    assert.throws(() => riceParameterFor(0), RangeError);
    assert.throws(() => riceParameterFor(1.5), RangeError);
  });

  it('codes known values MSB-first: x = 5 with b = 2 is 1 0 01', () => {
    const w = new BitWriter();
    writeRice(w, 5, 2);
    assert.equal(w.length, 4);
    assert.deepEqual([...w.finish()], [0b10010000]);
  });

  it('round-trips random integers for every parameter 0..8', () => {
    const rng = new Rng(3);
    for (let b = 0; b <= 8; b++) {
      const values = Array.from({ length: 200 }, () => rng.int(1 << (b + 2)));
      const w = new BitWriter();
      for (const x of values) writeRice(w, x, b);
      const expectedBits = values.reduce((s, x) => s + Math.floor(x / 2 ** b) + 1 + b, 0);
      assert.equal(w.length, expectedBits);
      const r = new BitReader(w.finish(), w.length, 'mem', 'gaps');
      assert.deepEqual(
        values.map(() => readRice(r, b)),
        values,
      );
      assert.equal(r.consumed, w.length);
    }
  });

  it('reading past the end is a FormatError', () => {
    const w = new BitWriter();
    w.ones(3);
    const r = new BitReader(w.finish(), w.length, 'x.bin', 'the gap stream');
    assert.throws(
      () => readRice(r, 1),
      (e: unknown) => e instanceof FormatError && /ended early/.test(String(e)),
    );
  });
});
