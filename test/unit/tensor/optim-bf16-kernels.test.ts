import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { kernels } from '../../../src/backend/index.ts';
import { toBf16Bits } from '../../../src/tensor/index.ts';

const k = kernels();

describe('adamw kernel', () => {
  it('one step matches hand-computed numbers', () => {
    const p = Float32Array.from([1, -2, 0.5]);
    const g = Float32Array.from([0.5, -0.1, 0]);
    const m = new Float32Array(3);
    const v = new Float32Array(3);
    const lr = 0.1;
    const wd = 0.01;
    k.adamw(p, g, m, v, 3, lr, 0.9, 0.999, 1e-8, wd, 1);
    // step 1: m = 0.1 g, v = 0.001 g^2, mhat = g, vhat = g^2, update = g / (|g| + eps) ~ sign(g)
    assert.ok(Math.abs(m[0]! - 0.05) < 1e-8 && Math.abs(v[0]! - 0.00025) < 1e-10);
    const expected = [
      1 - lr * (wd * 1 + 0.5 / (0.5 + 1e-8)),
      -2 - lr * (wd * -2 + -0.1 / (0.1 + 1e-8)),
      0.5 - lr * wd * 0.5,
    ];
    p.forEach((val, i) => {
      assert.ok(Math.abs(val - expected[i]!) < 1e-6, `p[${i}] ${val} vs ${expected[i]}`);
    });
  });
  it('a second step uses the bias corrections of step 2', () => {
    const p = Float32Array.from([2]);
    const m = Float32Array.from([0.05]);
    const v = Float32Array.from([0.00025]);
    k.adamw(p, Float32Array.from([-0.3]), m, v, 1, 0.01, 0.9, 0.999, 1e-8, 0, 2);
    const m2 = 0.9 * 0.05 + 0.1 * -0.3; // 0.015
    const v2 = 0.999 * 0.00025 + 0.001 * 0.09; // 0.00033975
    const mhat = m2 / (1 - 0.81);
    const vhat = v2 / (1 - 0.999 ** 2);
    assert.ok(Math.abs(m[0]! - m2) < 1e-8);
    assert.ok(Math.abs(v[0]! - v2) < 1e-9);
    assert.ok(Math.abs(p[0]! - (2 - (0.01 * mhat) / (Math.sqrt(vhat) + 1e-8))) < 1e-6);
  });
});

/** f32 bit patterns -> bf16 bits through the kernel. */
function convert(bits: number[]): number[] {
  const src = new Float32Array(new Uint32Array(bits).buffer);
  const dst = new Uint16Array(bits.length);
  k.f32ToBf16(src, dst, bits.length);
  return [...dst];
}

describe('bf16 conversions', () => {
  it('rounds to nearest, ties to even', () => {
    assert.deepEqual(
      convert([
        0x3f800000, // 1
        0x3f808000, // 1 + 2^-8: tie, even neighbour is 0x3f80
        0x3f818000, // tie, even neighbour is 0x3f82
        0x3f808001, // just above the tie: up
        0x3f807fff, // just below the tie: down
        0xbf818000, // negative tie: to even magnitude
        0x7f7fffff, // max f32 rounds up to infinity
        0x7f800000, // +inf
        0xff800000, // -inf
        0x00000001, // smallest subnormal -> +0
        0x80000000, // -0
      ]),
      [0x3f80, 0x3f80, 0x3f82, 0x3f81, 0x3f80, 0xbf82, 0x7f80, 0x7f80, 0xff80, 0x0000, 0x8000],
    );
  });
  it('keeps NaN a NaN, even when its payload lives in the low 16 bits', () => {
    for (const nan of [0x7fc00000, 0x7f800001, 0xff800001, 0x7fffffff]) {
      const [b] = convert([nan]);
      assert.equal(b! & 0x7f80, 0x7f80, `exponent of ${nan.toString(16)}`);
      assert.notEqual(b! & 0x7f, 0, `mantissa of ${nan.toString(16)} (must not become infinity)`);
    }
  });
  it('agrees with toBf16Bits and round-trips bf16 values exactly', () => {
    const values = Float32Array.from([0, 1, -1, 3.25, 1e-20, -6.5e10, 65504, 1 / 3, 2 ** -130]);
    const bits = new Uint16Array(values.length);
    k.f32ToBf16(values, bits, values.length);
    values.forEach((v, i) => {
      assert.equal(bits[i], toBf16Bits(v), `value ${v}`);
    });
    const back = new Float32Array(values.length);
    k.bf16ToF32(bits, back, values.length);
    const again = new Uint16Array(values.length);
    k.f32ToBf16(back, again, values.length);
    assert.deepEqual([...again], [...bits]);
    back.forEach((v, i) => {
      assert.ok(Math.abs(v - values[i]!) <= Math.abs(values[i]!) * 2 ** -8, `value ${values[i]}`);
    });
    assert.equal(back[1], 1);
    assert.ok(Number.isFinite(back[5]!));
  });
  it('widens by a 16-bit shift', () => {
    const out = new Float32Array(3);
    k.bf16ToF32(Uint16Array.from([0x3f80, 0xc040, 0x7fc0]), out, 3);
    assert.equal(out[0], 1);
    assert.equal(out[1], -3);
    assert.ok(Number.isNaN(out[2]));
  });
});
