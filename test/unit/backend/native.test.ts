/**
 * Every native kernel against the js oracle on random inputs of awkward sizes (1, 3, 7, 17, 33,
 * 1000, ... : not multiples of any vector width), plus the in-place / aliasing cases the contract
 * allows. GEMM has its own file (native-gemm.test.ts); determinism, dropout masks and memory are in
 * native-determinism.test.ts.
 */
import assert from 'node:assert/strict';
import { it } from 'node:test';
import { jsKernels as js } from '../../../src/backend/js/index.ts';
import type { BinaryOp, LinearCrossEntropyOutputs, UnaryOp } from '../../../src/backend/kernels.ts';
import { assertClose, describeNative, rand, randBf16, randInt } from './native-helpers.ts';

const SIZES = [1, 3, 7, 17, 33, 1000, 40_000];

describeNative('native elementwise kernels', (nk) => {
  const unaryOps: [UnaryOp, number, number, number][] = [
    // op, lo, hi, param
    ['neg', -3, 3, 0],
    ['exp', -20, 20, 0],
    ['log', 0.01, 10, 0],
    ['sqrt', 0, 10, 0],
    ['rsqrt', 0.01, 10, 0],
    ['abs', -3, 3, 0],
    ['tanh', -5, 5, 0],
    ['sigmoid', -30, 30, 0],
    ['relu', -3, 3, 0],
    ['silu', -30, 30, 0],
    ['gelu_tanh', -6, 6, 0],
    ['gelu_erf', -6, 6, 0],
    ['softplus', -30, 30, 0],
    ['square', -3, 3, 0],
    ['pow', 0.1, 3, 2.5],
    ['add_scalar', -3, 3, 1.25],
    ['mul_scalar', -3, 3, -0.75],
  ];
  for (const [op, lo, hi, param] of unaryOps) {
    it(`unary ${op} and its backward`, () => {
      for (const n of SIZES) {
        const x = rand(n, n + 1, lo, hi);
        const a = new Float32Array(n);
        const b = new Float32Array(n);
        nk.unary(op, x, a, n, param);
        js.unary(op, x, b, n, param);
        assertClose(`unary ${op} n=${n}`, a, b, { rtol: 2e-6, atol: 1e-6 });
        const gy = rand(n, n + 2);
        const ga = new Float32Array(n);
        const gb = new Float32Array(n);
        nk.unaryBackward(op, x, b, gy, ga, n, param);
        js.unaryBackward(op, x, b, gy, gb, n, param);
        assertClose(`unaryBackward ${op} n=${n}`, ga, gb, { rtol: 2e-6, atol: 1e-6 });
      }
    });
  }

  it('unary in place (out aliases x)', () => {
    const x = rand(1001, 5, -3, 3);
    const want = new Float32Array(1001);
    js.unary('silu', x, want, 1001, 0);
    nk.unary('silu', x, x, 1001, 0);
    assertClose('silu in place', x, want, { rtol: 2e-6, atol: 1e-6 });
  });

  const binaryOps: BinaryOp[] = ['add', 'sub', 'mul', 'div', 'max', 'min', 'eq', 'gt'];
  // shape, a strides, b strides
  const layouts: [number[], number[], number[]][] = [
    [[1], [1], [1]],
    [[7], [1], [1]],
    [[1000], [1], [0]],
    [
      [3, 17],
      [17, 1],
      [0, 1],
    ],
    [
      [3, 17],
      [17, 1],
      [1, 0],
    ],
    [
      [17, 3],
      [1, 17],
      [3, 1],
    ],
    [
      [2, 3, 33],
      [99, 33, 1],
      [0, 33, 1],
    ],
    [
      [2, 3, 33],
      [0, 0, 1],
      [3, 1, 0],
    ],
    [
      [4, 1, 7, 5],
      [35, 0, 5, 1],
      [0, 0, 1, 0],
    ],
    [
      [300, 257],
      [257, 1],
      [0, 1],
    ],
    [
      [257, 300],
      [1, 257],
      [300, 1],
    ],
    [[], [], []],
  ];
  for (const op of binaryOps) {
    it(`binary ${op} (contiguous, broadcast, transposed, scalar)`, () => {
      for (const [shape, as, bs] of layouts) {
        const size = (strides: number[]) => 1 + shape.reduce((s, d, i) => s + (d - 1) * strides[i]!, 0);
        const a = rand(size(as), 7, -2, 2);
        const b = rand(size(bs), 8, -2, 2);
        if (op === 'eq') for (let i = 0; i < Math.min(a.length, b.length); i += 3) b[i] = a[i]!;
        if (op === 'div') for (let i = 0; i < b.length; i++) if (Math.abs(b[i]!) < 0.1) b[i] = 0.5;
        const n = shape.reduce((p, d) => p * d, 1);
        const o1 = new Float32Array(n);
        const o2 = new Float32Array(n);
        nk.binary(op, a, as, b, bs, o1, shape);
        js.binary(op, a, as, b, bs, o2, shape);
        assertClose(`binary ${op} ${JSON.stringify(shape)}`, o1, o2, { rtol: 1e-6, atol: 0 });
      }
    });
  }

  it('binary in place (out aliases a)', () => {
    const a = rand(3 * 1000, 9);
    const b = rand(1000, 10);
    const want = new Float32Array(3000);
    js.binary('mul', a, [1000, 1], b, [0, 1], want, [3, 1000]);
    nk.binary('mul', a, [1000, 1], b, [0, 1], a, [3, 1000]);
    assertClose('mul in place', a, want, { rtol: 0, atol: 0 });
  });

  it('where with f32, i32 and u16 conditions and broadcast', () => {
    const shape = [5, 33];
    const a = rand(5 * 33, 11);
    const b = rand(33, 12);
    const conds = [
      rand(5 * 33, 13).map((v) => (v > 0 ? 1 : 0)),
      Int32Array.from(randInt(5 * 33, 14, -1, 2)),
      Uint16Array.from(randInt(5 * 33, 15, 0, 2)),
    ];
    for (const cond of conds) {
      const o1 = new Float32Array(5 * 33);
      const o2 = new Float32Array(5 * 33);
      nk.where(cond, [33, 1], a, [33, 1], b, [0, 1], o1, shape);
      js.where(cond, [33, 1], a, [33, 1], b, [0, 1], o2, shape);
      assertClose(`where ${cond.constructor.name}`, o1, o2, { rtol: 0, atol: 0 });
    }
    const o1 = new Float32Array(5 * 33);
    const o2 = new Float32Array(5 * 33);
    const c = Int32Array.from(randInt(5, 16, 0, 2));
    nk.where(c, [1, 0], a, [33, 1], b, [0, 1], o1, shape);
    js.where(c, [1, 0], a, [33, 1], b, [0, 1], o2, shape);
    assertClose('where column cond', o1, o2, { rtol: 0, atol: 0 });
  });

  it('copyStrided: transpose, slice with offsets, i32 and u16', () => {
    const src = rand(7 * 33, 17);
    const d1 = new Float32Array(33 * 7);
    const d2 = new Float32Array(33 * 7);
    nk.copyStrided(src, 0, [1, 33], d1, 0, [7, 1], [33, 7]);
    js.copyStrided(src, 0, [1, 33], d2, 0, [7, 1], [33, 7]);
    assertClose('transpose', d1, d2, { rtol: 0, atol: 0 });
    const big = rand(10 * 40, 18);
    const s1 = new Float32Array(4 * 17 + 5).fill(-1);
    const s2 = s1.slice();
    nk.copyStrided(big, 43, [40, 2], s1, 5, [17, 1], [4, 17]);
    js.copyStrided(big, 43, [40, 2], s2, 5, [17, 1], [4, 17]);
    assertClose('slice', s1, s2, { rtol: 0, atol: 0 });
    const i32 = randInt(2 * 3 * 4, 19, -1000, 1000);
    const o32a = new Int32Array(24);
    const o32b = new Int32Array(24);
    nk.copyStrided(i32, 0, [12, 1, 3], o32a, 0, [12, 4, 1], [2, 3, 4]);
    js.copyStrided(i32, 0, [12, 1, 3], o32b, 0, [12, 4, 1], [2, 3, 4]);
    assert.deepEqual(o32a, o32b);
    const u16 = randBf16(1000, 20);
    const o16a = new Uint16Array(2000);
    const o16b = new Uint16Array(2000);
    nk.copyStrided(u16, 0, [0, 1], o16a, 0, [1000, 1], [2, 1000]);
    js.copyStrided(u16, 0, [0, 1], o16b, 0, [1000, 1], [2, 1000]);
    assert.deepEqual(o16a, o16b);
  });

  it('swiglu forward and backward', () => {
    for (const n of SIZES) {
      const g = rand(n, n, -20, 20);
      const u = rand(n, n + 1);
      const gy = rand(n, n + 2);
      const [o1, o2] = [new Float32Array(n), new Float32Array(n)];
      nk.swiglu(g, u, o1, n);
      js.swiglu(g, u, o2, n);
      assertClose(`swiglu ${n}`, o1, o2, { rtol: 2e-6, atol: 1e-6 });
      const [gg1, gu1, gg2, gu2] = [
        new Float32Array(n),
        new Float32Array(n),
        new Float32Array(n),
        new Float32Array(n),
      ];
      nk.swigluBackward(g, u, gy, gg1, gu1, n);
      js.swigluBackward(g, u, gy, gg2, gu2, n);
      assertClose(`swiglu gGate ${n}`, gg1, gg2, { rtol: 2e-6, atol: 1e-6 });
      assertClose(`swiglu gUp ${n}`, gu1, gu2, { rtol: 2e-6, atol: 1e-6 });
    }
  });

  it('gatherRows (f32 and bf16) and scatterAddRows (repeated ids accumulate)', () => {
    for (const dim of [1, 7, 33, 576]) {
      const rows = 50;
      const n = 37;
      const ids = randInt(n, dim, 0, rows);
      ids[3] = ids[5]!;
      const t32 = rand(rows * dim, dim + 1);
      const t16 = randBf16(rows * dim, dim + 2);
      for (const [table, bf] of [
        [t32, false],
        [t16, true],
      ] as const) {
        const [o1, o2] = [new Float32Array(n * dim), new Float32Array(n * dim)];
        nk.gatherRows(table, bf, ids, o1, n, dim);
        js.gatherRows(table, bf, ids, o2, n, dim);
        assertClose(`gather dim=${dim} bf16=${bf}`, o1, o2, { rtol: 0, atol: 0 });
      }
      const g = rand(n * dim, dim + 3);
      const gt1 = rand(rows * dim, dim + 4);
      const gt2 = gt1.slice();
      nk.scatterAddRows(g, ids, gt1, n, dim);
      js.scatterAddRows(g, ids, gt2, n, dim);
      assertClose(`scatterAdd dim=${dim}`, gt1, gt2, { rtol: 0, atol: 0 });
    }
    assert.throws(
      () => nk.gatherRows(new Float32Array(10), false, Int32Array.of(5), new Float32Array(2), 1, 2),
      RangeError,
    );
  });

  it('adamw', () => {
    for (const n of SIZES) {
      const p1 = rand(n, 1);
      const g = rand(n, 2);
      const m1 = rand(n, 3, -0.1, 0.1);
      const v1 = rand(n, 4, 0, 0.01);
      const [p2, m2, v2] = [p1.slice(), m1.slice(), v1.slice()];
      nk.adamw(p1, g, m1, v1, n, 1e-3, 0.9, 0.999, 1e-8, 0.01, 7);
      js.adamw(p2, g, m2, v2, n, 1e-3, 0.9, 0.999, 1e-8, 0.01, 7);
      assertClose(`adamw p ${n}`, p1, p2, { rtol: 1e-6, atol: 1e-7 });
      assertClose(`adamw m ${n}`, m1, m2, { rtol: 1e-6, atol: 0 });
      assertClose(`adamw v ${n}`, v1, v2, { rtol: 1e-6, atol: 0 });
    }
  });

  it('f32 <-> bf16 conversions are bitwise equal (ties, NaN, infinities)', () => {
    const n = 1000;
    const x = rand(n, 21, -1e3, 1e3);
    const bits = new Uint32Array(x.buffer);
    bits[0] = 0x3f808000; // tie, even
    bits[1] = 0x3f818000; // tie, odd
    bits[2] = 0x7fc00001; // NaN
    bits[3] = 0x7f800001; // signalling NaN with payload in the low bits only
    bits[4] = 0x7f800000; // +inf
    bits[5] = 0xff800000; // -inf
    bits[6] = 0x7f7fffff; // max float rounds to inf
    const [b1, b2] = [new Uint16Array(n), new Uint16Array(n)];
    nk.f32ToBf16(x, b1, n);
    js.f32ToBf16(x, b2, n);
    assert.deepEqual(b1, b2);
    const [f1, f2] = [new Float32Array(n), new Float32Array(n)];
    nk.bf16ToF32(b1, f1, n);
    js.bf16ToF32(b1, f2, n);
    assert.deepEqual(new Uint32Array(f1.buffer), new Uint32Array(f2.buffer));
  });

  it('sumSquares', () => {
    for (const n of [0, ...SIZES, 300_000]) {
      const x = rand(n, n + 5);
      const a = nk.sumSquares(x, n);
      const b = js.sumSquares(x, n);
      assert.ok(Math.abs(a - b) <= 1e-9 * Math.max(1, b), `n=${n}: ${a} vs ${b}`);
    }
  });
});

describeNative('native reductions and softmax family', (nk) => {
  it('reduce sum / max / logsumexp over [outer, len, inner]', () => {
    const shapes: [number, number, number][] = [
      [1, 1, 1],
      [3, 7, 1],
      [1, 1000, 1],
      [17, 33, 1],
      [2, 7, 3],
      [3, 33, 17],
      [1, 5, 1000],
      [4, 0, 3],
    ];
    for (const op of ['sum', 'max', 'logsumexp'] as const) {
      for (const [o, l, i] of shapes) {
        const x = rand(o * l * i, o + l + i, -5, 5);
        const [a, b] = [new Float32Array(o * i), new Float32Array(o * i)];
        nk.reduce(op, x, a, o, l, i);
        js.reduce(op, x, b, o, l, i);
        assertClose(`reduce ${op} [${o},${l},${i}]`, a, b, { rtol: 1e-5, atol: 1e-5 });
      }
    }
    const x = Float32Array.of(1, Number.NaN, 3, -Infinity, -Infinity, -Infinity);
    const [a, b] = [new Float32Array(2), new Float32Array(2)];
    for (const op of ['max', 'logsumexp'] as const) {
      nk.reduce(op, x, a, 2, 3, 1);
      js.reduce(op, x, b, 2, 3, 1);
      assertClose(`reduce ${op} NaN / -inf rows`, a, b);
    }
  });

  const rowShapes: [number, number][] = [
    [1, 1],
    [3, 7],
    [17, 33],
    [5, 1000],
    [64, 17],
    [2, 49_152],
  ];
  it('softmax and logSoftmax, forward and backward (also in place)', () => {
    for (const [rows, cols] of rowShapes) {
      const n = rows * cols;
      const x = rand(n, rows * cols, -10, 10);
      const gy = rand(n, rows + cols);
      for (const [fwd, bwd] of [
        ['softmax', 'softmaxBackward'],
        ['logSoftmax', 'logSoftmaxBackward'],
      ] as const) {
        const [y1, y2] = [new Float32Array(n), new Float32Array(n)];
        nk[fwd](x, y1, rows, cols);
        js[fwd](x, y2, rows, cols);
        assertClose(`${fwd} [${rows},${cols}]`, y1, y2, { rtol: 1e-5, atol: 1e-7 });
        const [g1, g2] = [new Float32Array(n), new Float32Array(n)];
        nk[bwd](y2, gy, g1, rows, cols);
        js[bwd](y2, gy, g2, rows, cols);
        assertClose(`${bwd} [${rows},${cols}]`, g1, g2, { rtol: 1e-4, atol: 1e-6 });
        const inPlace = x.slice();
        nk[fwd](inPlace, inPlace, rows, cols);
        assertClose(`${fwd} in place`, inPlace, y2, { rtol: 1e-5, atol: 1e-7 });
      }
    }
  });

  it('crossEntropy forward and backward, with ignored rows and label smoothing', () => {
    for (const [rows, cols] of rowShapes) {
      const n = rows * cols;
      const logits = rand(n, rows * 3 + cols, -8, 8);
      const labels = randInt(rows, cols, 0, cols);
      if (rows > 2) labels[1] = -100;
      const gLoss = rand(rows, 99);
      for (const smoothing of [0, 0.1]) {
        const [l1, l2, s1, s2] = [
          new Float32Array(rows),
          new Float32Array(rows),
          new Float32Array(rows),
          new Float32Array(rows),
        ];
        nk.crossEntropy(logits, labels, l1, s1, rows, cols, smoothing);
        js.crossEntropy(logits, labels, l2, s2, rows, cols, smoothing);
        assertClose(`ce loss [${rows},${cols}] s=${smoothing}`, l1, l2, { rtol: 1e-5, atol: 1e-5 });
        assertClose(`ce lse [${rows},${cols}]`, s1, s2, { rtol: 1e-6, atol: 1e-6 });
        const [g1, g2] = [new Float32Array(n), new Float32Array(n)];
        nk.crossEntropyBackward(logits, labels, s2, gLoss, g1, rows, cols, smoothing);
        js.crossEntropyBackward(logits, labels, s2, gLoss, g2, rows, cols, smoothing);
        assertClose(`ce backward [${rows},${cols}] s=${smoothing}`, g1, g2, { rtol: 1e-4, atol: 1e-7 });
      }
    }
    assert.throws(
      () =>
        nk.crossEntropy(
          new Float32Array(4),
          Int32Array.of(5, 0),
          new Float32Array(2),
          new Float32Array(2),
          2,
          2,
          0,
        ),
      RangeError,
    );
  });
});

describeNative('native normalisation and rope', (nk) => {
  const shapes: [number, number][] = [
    [1, 1],
    [3, 7],
    [17, 33],
    [100, 576],
    [1000, 17],
  ];
  it('rmsNorm forward and backward (weight or null; gWeight accumulates)', () => {
    for (const [rows, cols] of shapes) {
      const n = rows * cols;
      const x = rand(n, rows + cols, -2, 2);
      const gy = rand(n, rows * cols);
      for (const weight of [rand(cols, 5, 0.5, 1.5), null]) {
        const [o1, o2, r1, r2] = [
          new Float32Array(n),
          new Float32Array(n),
          new Float32Array(rows),
          new Float32Array(rows),
        ];
        nk.rmsNorm(x, weight, o1, r1, rows, cols, 1e-5);
        js.rmsNorm(x, weight, o2, r2, rows, cols, 1e-5);
        assertClose(`rmsNorm [${rows},${cols}]`, o1, o2, { rtol: 1e-5, atol: 1e-6 });
        assertClose(`rmsNorm rstd [${rows},${cols}]`, r1, r2, { rtol: 1e-6, atol: 0 });
        const [g1, g2] = [new Float32Array(n), new Float32Array(n)];
        const gw1 = weight ? rand(cols, 7) : null;
        const gw2 = gw1 ? gw1.slice() : null;
        nk.rmsNormBackward(x, weight, r2, gy, g1, gw1, rows, cols);
        js.rmsNormBackward(x, weight, r2, gy, g2, gw2, rows, cols);
        assertClose(`rmsNormBackward gx [${rows},${cols}]`, g1, g2, { rtol: 1e-4, atol: 1e-5 });
        if (gw1 && gw2)
          assertClose(`rmsNormBackward gw [${rows},${cols}]`, gw1, gw2, { rtol: 1e-4, atol: 1e-5 * rows });
      }
    }
  });

  it('layerNorm forward and backward (weight / bias or null)', () => {
    for (const [rows, cols] of shapes) {
      const n = rows * cols;
      const x = rand(n, rows + cols + 1, -2, 3);
      const gy = rand(n, rows * cols + 1);
      for (const affine of [true, false]) {
        const weight = affine ? rand(cols, 8, 0.5, 1.5) : null;
        const bias = affine ? rand(cols, 9) : null;
        const o = [new Float32Array(n), new Float32Array(n)];
        const mu = [new Float32Array(rows), new Float32Array(rows)];
        const rs = [new Float32Array(rows), new Float32Array(rows)];
        nk.layerNorm(x, weight, bias, o[0]!, mu[0]!, rs[0]!, rows, cols, 1e-5);
        js.layerNorm(x, weight, bias, o[1]!, mu[1]!, rs[1]!, rows, cols, 1e-5);
        assertClose(`layerNorm [${rows},${cols}]`, o[0]!, o[1]!, { rtol: 1e-4, atol: 1e-5 });
        assertClose('layerNorm mean', mu[0]!, mu[1]!, { rtol: 1e-6, atol: 1e-7 });
        assertClose('layerNorm rstd', rs[0]!, rs[1]!, { rtol: 1e-5, atol: 0 });
        const g = [new Float32Array(n), new Float32Array(n)];
        const gw = affine ? [rand(cols, 10), rand(cols, 10)] : [null, null];
        const gb = affine ? [rand(cols, 11), rand(cols, 11)] : [null, null];
        nk.layerNormBackward(x, weight, mu[1]!, rs[1]!, gy, g[0]!, gw[0]!, gb[0]!, rows, cols);
        js.layerNormBackward(x, weight, mu[1]!, rs[1]!, gy, g[1]!, gw[1]!, gb[1]!, rows, cols);
        assertClose(`layerNormBackward gx [${rows},${cols}]`, g[0]!, g[1]!, { rtol: 1e-4, atol: 1e-5 });
        if (affine) {
          assertClose('layerNormBackward gw', gw[0]!, gw[1]!, { rtol: 1e-4, atol: 1e-5 * rows });
          assertClose('layerNormBackward gb', gb[0]!, gb[1]!, { rtol: 1e-4, atol: 1e-5 * rows });
        }
      }
    }
  });

  it('rope forward and inverse, in place too', () => {
    for (const [B, T, H, D] of [
      [1, 1, 1, 2],
      [2, 7, 3, 8],
      [1, 33, 9, 64],
      [3, 5, 2, 6],
    ] as const) {
      const maxPos = 40;
      const half = D / 2;
      const ang = rand(maxPos * half, 3, 0, 6.28);
      const cos = ang.map(Math.cos);
      const sin = ang.map(Math.sin);
      const pos = randInt(B * T, 4, 0, maxPos);
      const n = B * T * H * D;
      const x = rand(n, n);
      for (const inverse of [false, true]) {
        const [o1, o2] = [new Float32Array(n), new Float32Array(n)];
        nk.rope(x, o1, cos, sin, pos, B, T, H, D, inverse);
        js.rope(x, o2, cos, sin, pos, B, T, H, D, inverse);
        assertClose(`rope ${[B, T, H, D]} inverse=${inverse}`, o1, o2, { rtol: 1e-6, atol: 1e-6 });
        const inPlace = x.slice();
        nk.rope(inPlace, inPlace, cos, sin, pos, B, T, H, D, inverse);
        assertClose('rope in place', inPlace, o2, { rtol: 1e-6, atol: 1e-6 });
      }
    }
    const t = new Float32Array(4);
    assert.throws(() => nk.rope(t, t, t, t, Int32Array.of(9), 1, 1, 1, 4, false), RangeError);
  });
});

/** [B, Tq, Tk, Hq, Hkv, D, causal] */
export const ATTENTION_SHAPES: [number, number, number, number, number, number, boolean][] = [
  [1, 1, 1, 1, 1, 1, true],
  [1, 3, 3, 2, 1, 7, true],
  [2, 7, 7, 4, 2, 8, true],
  [1, 33, 33, 9, 3, 64, true],
  [1, 70, 70, 2, 2, 16, true],
  [1, 150, 150, 3, 1, 32, true],
  [1, 5, 12, 2, 1, 16, true],
  [1, 12, 5, 2, 2, 16, true],
  [2, 17, 23, 3, 3, 7, false],
  [1, 1, 40, 3, 1, 64, true],
];

describeNative('native attention', (nk) => {
  for (const [B, Tq, Tk, Hq, Hkv, D, causal] of ATTENTION_SHAPES) {
    for (const dropP of [0, 0.2]) {
      it(`B=${B} Tq=${Tq} Tk=${Tk} Hq=${Hq} Hkv=${Hkv} D=${D} causal=${causal} dropP=${dropP}`, () => {
        const nq = B * Tq * Hq * D;
        const nkv = B * Tk * Hkv * D;
        const q = rand(nq, 1, -2, 2);
        const k = rand(nkv, 2, -2, 2);
        const v = rand(nkv, 3);
        const gOut = rand(nq, 4);
        const scale = 1 / Math.sqrt(D);
        const seed = 1234567;
        const [o1, o2] = [new Float32Array(nq), new Float32Array(nq)];
        const [l1, l2] = [new Float32Array(B * Hq * Tq), new Float32Array(B * Hq * Tq)];
        nk.attention(q, k, v, o1, l1, B, Tq, Tk, Hq, Hkv, D, scale, causal, dropP, seed);
        js.attention(q, k, v, o2, l2, B, Tq, Tk, Hq, Hkv, D, scale, causal, dropP, seed);
        assertClose('attention out', o1, o2, { rtol: 1e-4, atol: 2e-6 });
        assertClose('attention lse', l1, l2, { rtol: 1e-5, atol: 1e-5 });
        const g1 = [new Float32Array(nq), new Float32Array(nkv), new Float32Array(nkv)];
        const g2 = [new Float32Array(nq), new Float32Array(nkv), new Float32Array(nkv)];
        nk.attentionBackward(
          q,
          k,
          v,
          o2,
          l2,
          gOut,
          g1[0]!,
          g1[1]!,
          g1[2]!,
          B,
          Tq,
          Tk,
          Hq,
          Hkv,
          D,
          scale,
          causal,
          dropP,
          seed,
        );
        js.attentionBackward(
          q,
          k,
          v,
          o2,
          l2,
          gOut,
          g2[0]!,
          g2[1]!,
          g2[2]!,
          B,
          Tq,
          Tk,
          Hq,
          Hkv,
          D,
          scale,
          causal,
          dropP,
          seed,
        );
        assertClose('attention gq', g1[0]!, g2[0]!, { rtol: 1e-4, atol: 1e-5 });
        assertClose('attention gk', g1[1]!, g2[1]!, { rtol: 1e-4, atol: 1e-5 });
        assertClose('attention gv', g1[2]!, g2[2]!, { rtol: 1e-4, atol: 1e-5 });
      });
    }
  }
});

describeNative('native fused LM head', (nk) => {
  const outs = (N: number): LinearCrossEntropyOutputs => ({
    lse: new Float32Array(N),
    logp: new Float32Array(N),
    entropy: new Float32Array(N),
    argmax: new Int32Array(N),
    top1: new Float32Array(N),
    top2: new Float32Array(N),
  });
  const shapes: [number, number, number][] = [
    [1, 1, 1],
    [3, 7, 2],
    [7, 17, 33],
    [33, 64, 1000],
    [300, 33, 300],
    [17, 576, 2049],
  ];
  for (const [N, d, V] of shapes) {
    for (const bf16 of [false, true]) {
      it(`N=${N} d=${d} V=${V} bf16=${bf16}: forward stats and backward gh / gw`, () => {
        const h = rand(N * d, N + d, -1, 1);
        const w = bf16 ? randBf16(V * d, V, -0.5, 0.5) : rand(V * d, V, -0.5, 0.5);
        const labels = randInt(N, 5, 0, V);
        if (N > 2) labels[2] = -100;
        const a = outs(N);
        const b = outs(N);
        nk.linearCrossEntropy(h, w, bf16, labels, N, d, V, a);
        js.linearCrossEntropy(h, w, bf16, labels, N, d, V, b);
        for (const key of ['lse', 'logp', 'entropy', 'top1', 'top2'] as const) {
          assertClose(`lce ${key}`, a[key], b[key], { rtol: 1e-4, atol: 2e-5 });
        }
        assert.deepEqual(a.argmax, b.argmax, 'lce argmax');
        const cLogp = rand(N, 6);
        const cEnt = rand(N, 7);
        for (const cTop1 of [rand(N, 8), null]) {
          const gh1 = new Float32Array(N * d);
          const gh2 = new Float32Array(N * d);
          const gw1 = rand(V * d, 9);
          const gw2 = gw1.slice();
          nk.linearCrossEntropyBackward(
            h,
            w,
            bf16,
            labels,
            b.lse,
            b.entropy,
            b.argmax,
            cLogp,
            cEnt,
            cTop1,
            gh1,
            gw1,
            N,
            d,
            V,
          );
          js.linearCrossEntropyBackward(
            h,
            w,
            bf16,
            labels,
            b.lse,
            b.entropy,
            b.argmax,
            cLogp,
            cEnt,
            cTop1,
            gh2,
            gw2,
            N,
            d,
            V,
          );
          assertClose('lce gh', gh1, gh2, { rtol: 1e-4, atol: 1e-5 });
          assertClose('lce gw', gw1, gw2, { rtol: 1e-4, atol: 1e-5 });
        }
        // gh only / gw only
        const gh3 = new Float32Array(N * d);
        nk.linearCrossEntropyBackward(
          h,
          w,
          bf16,
          labels,
          b.lse,
          b.entropy,
          b.argmax,
          cLogp,
          cEnt,
          null,
          gh3,
          null,
          N,
          d,
          V,
        );
        const gh4 = new Float32Array(N * d);
        js.linearCrossEntropyBackward(
          h,
          w,
          bf16,
          labels,
          b.lse,
          b.entropy,
          b.argmax,
          cLogp,
          cEnt,
          null,
          gh4,
          null,
          N,
          d,
          V,
        );
        assertClose('lce gh only', gh3, gh4, { rtol: 1e-4, atol: 1e-5 });
      });
    }
  }
  it('rejects labels outside the vocabulary', () => {
    assert.throws(
      () =>
        nk.linearCrossEntropy(
          new Float32Array(2),
          new Float32Array(6),
          false,
          Int32Array.of(3),
          1,
          2,
          3,
          outs(1),
        ),
      RangeError,
    );
  });
});
