import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import {
  fromArray,
  randn,
  rope,
  ropeInverseFrequencies,
  ropeTables,
  type Tensor,
} from '../../../src/tensor/index.ts';
import { gradCheck, input64 } from '../../helpers/gradcheck.ts';

/** f64 copies of the f32 tables (gradient checks run in f64). */
function tables64(maxPos: number, headDim: number, theta: number): { cos: Tensor; sin: Tensor } {
  const { cos, sin } = ropeTables(maxPos, headDim, theta);
  return {
    cos: fromArray(cos.toArray(), cos.shape, { dtype: 'f64' }),
    sin: fromArray(sin.toArray(), sin.shape, { dtype: 'f64' }),
  };
}

describe('ropeTables', () => {
  it('uses inv_freq = 1 / theta^(2i/D) and angle = position * inv_freq', () => {
    const { cos, sin } = ropeTables(5, 8, 10000);
    assert.deepEqual(cos.shape, [5, 4]);
    assert.equal(cos.dtype, 'f32');
    const c = cos.toArray();
    const s = sin.toArray();
    for (let p = 0; p < 5; p++) {
      for (let i = 0; i < 4; i++) {
        const angle = p / 10000 ** ((2 * i) / 8);
        assert.ok(Math.abs(c[p * 4 + i]! - Math.cos(angle)) < 1e-6, `cos[${p},${i}]`);
        assert.ok(Math.abs(s[p * 4 + i]! - Math.sin(angle)) < 1e-6, `sin[${p},${i}]`);
      }
    }
  });
  it('applies the llama3 frequency adjustment (Llama 3.1 parameters)', () => {
    const scaling = {
      type: 'llama3' as const,
      factor: 8,
      low_freq_factor: 1,
      high_freq_factor: 4,
      original_max_position_embeddings: 8192,
    };
    const headDim = 64;
    const theta = 500000;
    const inv = ropeInverseFrequencies(headDim, theta, scaling);
    let kept = 0;
    let divided = 0;
    let blended = 0;
    for (let i = 0; i < headDim / 2; i++) {
      // hand computation in f64, straight from transformers' _compute_llama3_parameters
      const base = 1 / theta ** ((2 * i) / headDim);
      const wavelen = (2 * Math.PI) / base;
      let expected: number;
      if (wavelen < 8192 / 4) {
        expected = base;
        kept++;
      } else if (wavelen > 8192 / 1) {
        expected = base / 8;
        divided++;
      } else {
        const smooth = (8192 / wavelen - 1) / (4 - 1);
        expected = ((1 - smooth) * base) / 8 + smooth * base;
        blended++;
      }
      assert.ok(Math.abs(inv[i]! - expected) <= 1e-6 * expected, `inv_freq[${i}] ${inv[i]} vs ${expected}`);
    }
    // the three bands are all exercised for these parameters
    assert.ok(kept > 0 && divided > 0 && blended > 0, `bands ${kept}/${divided}/${blended}`);
    const { cos, sin } = ropeTables(64, headDim, theta, scaling);
    const c = cos.toArray();
    const s = sin.toArray();
    for (const p of [0, 1, 17, 63]) {
      for (let i = 0; i < headDim / 2; i++) {
        assert.ok(Math.abs(c[p * 32 + i]! - Math.cos(p * inv[i]!)) < 5e-6, `cos[${p},${i}]`);
        assert.ok(Math.abs(s[p * 32 + i]! - Math.sin(p * inv[i]!)) < 5e-6, `sin[${p},${i}]`);
      }
    }
    // without scaling the low frequencies are 8x larger
    const plain = ropeInverseFrequencies(headDim, theta);
    assert.ok(Math.abs(plain[31]! / inv[31]! - 8) < 1e-5);
    assert.equal(plain[0], inv[0]);
  });
  it('rejects an unknown scaling type and an odd head dim', () => {
    assert.throws(
      () => ropeTables(4, 8, 10000, { type: 'yarn' } as never),
      /rope_scaling type 'yarn' is not supported/,
    );
    assert.throws(() => ropeTables(4, 7, 10000), /positive even integer/);
  });
});

describe('rope', () => {
  it('rotates each (i, i + D/2) pair by position * inv_freq (rotate-half convention)', () => {
    const [B, T, H, D] = [2, 3, 2, 4];
    const x = randn([B, T, H, D], { seed: 1 });
    const { cos, sin } = ropeTables(10, D, 100);
    const positions = Int32Array.from([0, 1, 2, 7, 3, 9]);
    const y = rope(x, cos, sin, positions).toArray();
    const xs = x.toArray();
    const c = cos.toArray();
    const s = sin.toArray();
    for (let bt = 0; bt < B * T; bt++) {
      const p = positions[bt]!;
      for (let h = 0; h < H; h++) {
        const base = (bt * H + h) * D;
        for (let i = 0; i < D / 2; i++) {
          const a = xs[base + i]!;
          const b = xs[base + i + D / 2]!;
          const ci = c[p * 2 + i]!;
          const si = s[p * 2 + i]!;
          assert.ok(Math.abs(y[base + i]! - (a * ci - b * si)) < 1e-6);
          assert.ok(Math.abs(y[base + i + D / 2]! - (b * ci + a * si)) < 1e-6);
        }
      }
    }
    // position 0 is the identity
    for (let i = 0; i < H * D; i++) assert.ok(Math.abs(y[i]! - xs[i]!) < 1e-7);
  });
  it('names a position outside the tables', () => {
    const { cos, sin } = ropeTables(4, 4, 100);
    assert.throws(
      () => rope(randn([1, 2, 1, 4], { seed: 2 }), cos, sin, Int32Array.from([0, 4])),
      /position 4 of token 1 is outside the tables of 4 positions/,
    );
    assert.throws(
      () => rope(randn([1, 2, 1, 4], { seed: 2 }), cos, sin, Int32Array.from([0])),
      /1 positions for 2 tokens/,
    );
  });
  const shapes: [number, number, number, number][] = [
    [1, 1, 1, 2],
    [2, 3, 2, 4],
    [1, 4, 3, 6],
  ];
  for (const shape of shapes) {
    it(`gradient ${JSON.stringify(shape)}`, () => {
      const [B, T, , D] = shape;
      const { cos, sin } = tables64(12, D, 10);
      const positions = Int32Array.from({ length: B * T }, (_, i) => (i * 5 + 1) % 12);
      gradCheck('rope', (x) => rope(x, cos, sin, positions), [input64(shape, 3)]);
    });
  }
});
