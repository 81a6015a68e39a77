/**
 * Block-quantised matrices (int8 / NF4) on the active backend: quantise -> dequantise error bounds,
 * the NF4 levels round-tripping exactly, matmul through a quantised weight against dequantise-then-
 * f32-matmul on random shapes with odd tails (both orientations), the input gradient dX = dY W,
 * and the refusals (non-finite values, element access, training).
 */
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { NF4_LEVELS } from '../../../src/backend/js/quant.ts';
import { QuantizedParameter } from '../../../src/nn/index.ts';
import {
  backward,
  fromArray,
  matmul,
  mul,
  type QuantFormat,
  QuantizedMatrix,
  Rng,
  sum,
  Tensor,
} from '../../../src/tensor/index.ts';

function randomMatrix(rows: number, cols: number, seed: number, scale = 1): Float32Array {
  const rng = new Rng(seed);
  return Float32Array.from({ length: rows * cols }, () => scale * rng.normal());
}

function quantized(values: Float32Array, rows: number, cols: number, format: QuantFormat): QuantizedMatrix {
  return QuantizedMatrix.from(fromArray(values, [rows, cols], { track: false }), format);
}

/** max |x| over each block of 64 consecutive elements. */
function blockAbsmax(values: Float32Array, j: number): number {
  const b = Math.floor(j / 64) * 64;
  let m = 0;
  for (let i = b; i < Math.min(values.length, b + 64); i++) m = Math.max(m, Math.abs(values[i]!));
  return m;
}

describe('quantise -> dequantise', () => {
  it('NF4: a block holding the 16 levels (times a scale) round-trips exactly', () => {
    for (const scale of [1, 0.037, 3.5, 2 ** -20]) {
      // 4 blocks of 64: each the 16 levels x scale, in a shuffled order, repeated 4 times; an odd tail block
      const n = 4 * 64 + 16;
      const values = new Float32Array(n);
      for (let i = 0; i < n; i++)
        values[i] = Math.fround(NF4_LEVELS[(i * 7 + (i >> 4)) % 16]! * Math.fround(scale));
      const q = quantized(values, 1, n, 'nf4');
      assert.deepEqual(Array.from(q.dequantizeRows()), Array.from(values), `scale ${scale}`);
      for (let b = 0; b < q.scales.length; b++) assert.equal(q.scales[b], Math.fround(scale));
    }
  });

  it('int8: every element within absmax / 127 / 2 of its input; a zero block stays zero', () => {
    for (const [rows, cols] of [
      [3, 65],
      [7, 33],
      [1, 1],
      [2, 200],
    ] as const) {
      const values = randomMatrix(rows, cols, rows * 31 + cols, 0.05);
      values.fill(0, 0, Math.min(64, values.length)); // block 0 all zeros
      const q = quantized(values, rows, cols, 'int8');
      const back = q.dequantizeRows();
      for (let j = 0; j < values.length; j++) {
        const bound = blockAbsmax(values, j) / 127 / 2;
        // f32 rounding of the step and of the product: a few ulps beyond the half step
        assert.ok(
          Math.abs(back[j]! - values[j]!) <= bound * (1 + 1e-5) + 1e-12,
          `[${rows}, ${cols}] element ${j}: ${values[j]} -> ${back[j]} (bound ${bound})`,
        );
      }
      for (let j = 0; j < Math.min(64, values.length); j++) assert.equal(back[j], 0);
    }
  });

  it('NF4: every element within half the widest level gap (x absmax) and mapped to its nearest level', () => {
    const values = randomMatrix(5, 77, 3, 0.02);
    const q = quantized(values, 5, 77, 'nf4');
    const back = q.dequantizeRows();
    for (let j = 0; j < values.length; j++) {
      const absmax = blockAbsmax(values, j);
      assert.ok(Math.abs(back[j]! - values[j]!) <= ((1 - 0.7229568362236023) / 2) * absmax * (1 + 1e-6));
      // no other level is nearer
      const best = Math.min(...Array.from(NF4_LEVELS, (l) => Math.abs(l * absmax - values[j]!)));
      assert.ok(Math.abs(back[j]! - values[j]!) <= best + 1e-7 * absmax, `element ${j}`);
    }
  });

  it('bf16 sources quantise as their f32 values do', () => {
    const values = randomMatrix(3, 70, 9);
    const f32 = fromArray(values, [3, 70], { track: false });
    const bf16Bits = new Uint16Array(values.length);
    const rounded = new Float32Array(values.length);
    for (let i = 0; i < values.length; i++) {
      bf16Bits[i] = new Uint32Array(new Float32Array([values[i]!]).buffer)[0]! >>> 16;
      rounded[i] = new Float32Array(new Uint32Array([bf16Bits[i]! << 16]).buffer)[0]!;
    }
    const bf16 = Tensor.wrap(bf16Bits, [3, 70], { track: false });
    for (const format of ['int8', 'nf4'] as const) {
      const a = QuantizedMatrix.from(bf16, format);
      const b = quantized(rounded, 3, 70, format);
      assert.deepEqual(a.codes, b.codes);
      assert.deepEqual(a.scales, b.scales);
      assert.ok(QuantizedMatrix.from(f32, format).bytes < f32.size * 2);
    }
  });

  it('non-finite values are a one-line error naming the matrix', () => {
    const values = randomMatrix(2, 3, 1);
    values[4] = Number.NaN;
    const t = fromArray(values, [2, 3], { track: false });
    t.name = 'layers.0.q_proj.weight';
    assert.throws(
      () => QuantizedMatrix.from(t, 'nf4'),
      /'layers\.0\.q_proj\.weight' \[2,3\] f32 has 1 non-finite value/,
    );
  });
});

/** A frozen quantised weight [rows, cols] and the f32 tensor of its dequantised values. */
function weightPair(
  rows: number,
  cols: number,
  format: QuantFormat,
  seed: number,
): [QuantizedParameter, Tensor] {
  const q = quantized(randomMatrix(rows, cols, seed, 0.1), rows, cols, format);
  const p = new QuantizedParameter(q, 'w');
  return [p, p.dequantize()];
}

function assertClose(
  a: ArrayLike<number>,
  b: ArrayLike<number>,
  what: string,
  rtol = 1e-5,
  atol = 1e-5,
): void {
  assert.equal(a.length, b.length, what);
  for (let i = 0; i < a.length; i++)
    assert.ok(Math.abs(a[i]! - b[i]!) <= atol + rtol * Math.abs(b[i]!), `${what}[${i}]: ${a[i]} vs ${b[i]}`);
}

// [M, rows (out), cols (in)] with odd tails, a K past the native kernel's 512 tile and N past its 128 tile
const SHAPES: [number, number, number][] = [
  [1, 1, 1],
  [3, 5, 7],
  [17, 130, 65],
  [2, 9, 600],
  [65, 33, 129],
];

describe('matmul through a quantised weight (qgemm)', () => {
  for (const format of ['int8', 'nf4'] as const) {
    it(`${format}: x W^T and x W equal dequantise-then-f32-matmul`, () => {
      for (const [M, rows, cols] of SHAPES) {
        const [w, wf] = weightPair(rows, cols, format, M + rows + cols);
        const x = fromArray(randomMatrix(M, cols, 5), [M, cols], { track: false });
        assertClose(
          matmul(x, w, { transB: true }).data as Float32Array,
          matmul(x, wf, { transB: true }).data as Float32Array,
          `[${M}, ${cols}] x W^T`,
        );
        const y = fromArray(randomMatrix(M, rows, 6), [M, rows], { track: false });
        assertClose(
          matmul(y, w).data as Float32Array,
          matmul(y, wf).data as Float32Array,
          `[${M}, ${rows}] x W`,
        );
        // batched input [2, M, cols] folds into rows
        const x3 = fromArray(randomMatrix(2 * M, cols, 7), [2, M, cols], { track: false });
        const out3 = matmul(x3, w, { transB: true });
        assert.deepEqual(out3.shape, [2, M, rows]);
        assertClose(
          out3.data as Float32Array,
          matmul(x3, wf, { transB: true }).data as Float32Array,
          'batched',
        );
      }
    });

    it(`${format}: the input gradient dX = dY W matches the dequantised weight's, and finite differences`, () => {
      const [M, rows, cols] = [5, 70, 66];
      const [w, wf] = weightPair(rows, cols, format, 42);
      const r = fromArray(randomMatrix(M, rows, 8), [M, rows], { track: false });
      const xs = randomMatrix(M, cols, 9);
      const gradOf = (weight: Tensor) => {
        const x = fromArray(xs, [M, cols], { requiresGrad: true, track: false });
        backward(sum(mul(matmul(x, weight, { transB: true }), r)));
        return Float32Array.from(x.grad!.data as Float32Array);
      };
      const gq = gradOf(w);
      assertClose(gq, gradOf(wf), 'dX');
      // the loss is linear in x: a central difference of one coordinate is exact up to rounding
      const lossAt = (delta: number, i: number) => {
        const v = Float32Array.from(xs);
        v[i]! += delta;
        return sum(mul(matmul(fromArray(v, [M, cols], { track: false }), w, { transB: true }), r)).item();
      };
      for (const i of [0, 17, M * cols - 1]) {
        const fd = (lossAt(0.5, i) - lossAt(-0.5, i)) / 1;
        assert.ok(Math.abs(fd - gq[i]!) <= 1e-3 * Math.max(1, Math.abs(fd)), `dX[${i}]: ${gq[i]} vs ${fd}`);
      }
      assert.equal(w.grad, null, 'a quantised weight gets no gradient');
    });
  }

  it('a quantised parameter has no element array and cannot be trained', () => {
    const [w] = weightPair(4, 8, 'nf4', 1);
    assert.throws(
      () => w.data,
      /tensor 'w' \[4, 8\] nf4: a quantised \(model_dtype nf4\) weight has no element array/,
    );
    assert.throws(() => w.unfreeze(), /cannot be trained/);
    assert.throws(
      () => matmul(fromArray(new Float32Array(8), [8, 1]), w, { transA: true }),
      /needs transA false/,
    );
  });
});
