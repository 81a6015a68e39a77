import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import {
  type AttentionOptions,
  add,
  attention,
  backward,
  concat,
  fromArray,
  matmul,
  mul,
  mulScalar,
  permute,
  philoxUniform,
  scope,
  slice,
  softmax,
  sum,
  type Tensor,
} from '../../../src/tensor/index.ts';
import { gradCheck, input64 } from '../../helpers/gradcheck.ts';

/** softmax(scale q k^T + mask) [dropout] v per head, built from matmul / softmax / mul ops. */
function referenceAttention(q: Tensor, k: Tensor, v: Tensor, options: AttentionOptions): Tensor {
  const [B, Tq, Hq, D] = q.shape as [number, number, number, number];
  const [, Tk, Hkv] = k.shape as [number, number, number];
  const causal = options.causal ?? true;
  const scale = options.scale ?? 1 / Math.sqrt(D);
  const p = options.dropout ?? 0;
  const qp = permute(q, [0, 2, 1, 3]);
  const kp = permute(k, [0, 2, 1, 3]);
  const vp = permute(v, [0, 2, 1, 3]);
  const heads: Tensor[] = [];
  for (let h = 0; h < Hq; h++) {
    const kvh = Math.floor(h / (Hq / Hkv));
    let scores = mulScalar(
      matmul(slice(qp, 1, h, h + 1), slice(kp, 1, kvh, kvh + 1), { transB: true }),
      scale,
    );
    if (causal) {
      const mask = Array.from({ length: Tq * Tk }, (_, i) =>
        i % Tk <= Math.floor(i / Tk) + Tk - Tq ? 0 : -Infinity,
      );
      scores = add(scores, fromArray(mask, [Tq, Tk], { dtype: q.dtype }));
    }
    let probs = softmax(scores);
    if (p > 0) {
      const keep = new Array<number>(B * Tq * Tk);
      for (let b = 0; b < B; b++) {
        for (let t = 0; t < Tq; t++) {
          for (let j = 0; j < Tk; j++) {
            const counter = ((b * Hq + h) * Tq + t) * Tk + j;
            keep[(b * Tq + t) * Tk + j] = philoxUniform(options.seed ?? 0, counter) >= p ? 1 / (1 - p) : 0;
          }
        }
      }
      probs = mul(probs, fromArray(keep, [B, 1, Tq, Tk], { dtype: q.dtype }));
    }
    heads.push(matmul(probs, slice(vp, 1, kvh, kvh + 1)));
  }
  return permute(concat(heads, 1), [0, 2, 1, 3]);
}

function maxAbsDiff(a: readonly number[], b: readonly number[]): number {
  assert.equal(a.length, b.length);
  let m = 0;
  for (let i = 0; i < a.length; i++) m = Math.max(m, Math.abs(a[i]! - b[i]!));
  return m;
}

interface Case {
  name: string;
  B: number;
  Tq: number;
  Tk: number;
  Hq: number;
  Hkv: number;
  D: number;
  options: AttentionOptions;
}

const cases: Case[] = [
  { name: 'MHA causal', B: 2, Tq: 3, Tk: 3, Hq: 2, Hkv: 2, D: 4, options: {} },
  { name: 'GQA 4/2 causal', B: 1, Tq: 4, Tk: 4, Hq: 4, Hkv: 2, D: 3, options: { causal: true } },
  { name: 'GQA 4/2 non-causal', B: 2, Tq: 3, Tk: 3, Hq: 4, Hkv: 2, D: 2, options: { causal: false } },
  {
    name: 'GQA 4/2 causal, Tq < Tk (KV cache)',
    B: 1,
    Tq: 2,
    Tk: 5,
    Hq: 4,
    Hkv: 2,
    D: 3,
    options: { causal: true },
  },
  {
    name: 'GQA 4/2 non-causal, Tq < Tk',
    B: 2,
    Tq: 2,
    Tk: 4,
    Hq: 4,
    Hkv: 2,
    D: 2,
    options: { causal: false },
  },
  { name: 'MQA 3/1, custom scale', B: 1, Tq: 3, Tk: 3, Hq: 3, Hkv: 1, D: 2, options: { scale: 0.7 } },
  { name: 'all dims 1', B: 1, Tq: 1, Tk: 1, Hq: 1, Hkv: 1, D: 1, options: {} },
  {
    name: 'GQA dropout 0.3 causal, Tq < Tk',
    B: 2,
    Tq: 3,
    Tk: 4,
    Hq: 4,
    Hkv: 2,
    D: 2,
    options: { dropout: 0.3, seed: 11 },
  },
  {
    name: 'dropout 0.5 non-causal',
    B: 1,
    Tq: 3,
    Tk: 3,
    Hq: 2,
    Hkv: 1,
    D: 3,
    options: { dropout: 0.5, seed: 3, causal: false },
  },
];

describe('attention', () => {
  for (const c of cases) {
    it(`${c.name}: forward and gradients match softmax(QK^T)V built from ops`, () => {
      const q = input64([c.B, c.Tq, c.Hq, c.D], 1);
      const k = input64([c.B, c.Tk, c.Hkv, c.D], 2);
      const v = input64([c.B, c.Tk, c.Hkv, c.D], 3);
      const w = input64([c.B, c.Tq, c.Hq, c.D], 4);
      w.requiresGrad = false;
      const grads = (f: () => Tensor): number[][] => {
        for (const t of [q, k, v]) t.grad = null;
        let out: number[] = [];
        scope(() => {
          const y = f();
          out = y.toArray();
          backward(sum(mul(y, w)));
        });
        const g = [out, q.grad!.toArray(), k.grad!.toArray(), v.grad!.toArray()];
        for (const t of [q, k, v]) t.grad = null;
        return g;
      };
      const fused = grads(() => attention(q, k, v, c.options));
      const reference = grads(() => referenceAttention(q, k, v, c.options));
      ['out', 'grad q', 'grad k', 'grad v'].forEach((what, i) => {
        const d = maxAbsDiff(fused[i]!, reference[i]!);
        assert.ok(d < 1e-12, `${what}: max |fused - reference| = ${d}`);
      });
      if (c.options.dropout) {
        // the mask really drops something and really keeps something
        const plain = scope(() => attention(q, k, v, { ...c.options, dropout: 0 }).toArray());
        assert.ok(maxAbsDiff(plain, fused[0]!) > 1e-3, 'dropout changed nothing');
      }
    });
    it(`${c.name}: gradient check`, () => {
      gradCheck('attention', (q, k, v) => attention(q, k, v, c.options), [
        input64([c.B, c.Tq, c.Hq, c.D], 5),
        input64([c.B, c.Tk, c.Hkv, c.D], 6),
        input64([c.B, c.Tk, c.Hkv, c.D], 7),
      ]);
    });
  }

  it('f32 on the active backend matches the f64 oracle', () => {
    const c = cases[3]!;
    const q = input64([c.B, c.Tq, c.Hq, c.D], 8);
    const k = input64([c.B, c.Tk, c.Hkv, c.D], 9);
    const v = input64([c.B, c.Tk, c.Hkv, c.D], 10);
    const to32 = (t: Tensor) => fromArray(t.toArray(), t.shape, { dtype: 'f32' });
    for (const options of [{}, { dropout: 0.25, seed: 9 }]) {
      const expected = scope(() => attention(q, k, v, options).toArray());
      const actual = scope(() => attention(to32(q), to32(k), to32(v), options).toArray());
      assert.ok(maxAbsDiff(actual, expected) < 1e-5);
    }
  });

  it("precision 'bf16': within bf16 rounding of the f32 op, gradients flow, other precisions refused", () => {
    const c = cases[3]!;
    const to32 = (t: Tensor, grad = false) =>
      fromArray(t.toArray(), t.shape, { dtype: 'f32', requiresGrad: grad });
    const [q, k, v] = [8, 9, 10].map((s, i) =>
      to32(input64(i === 0 ? [c.B, c.Tq, c.Hq, c.D] : [c.B, c.Tk, c.Hkv, c.D], s), true),
    ) as [Tensor, Tensor, Tensor];
    const run = (precision: 'f32' | 'bf16') =>
      scope(() => {
        for (const t of [q, k, v]) t.grad = null;
        const y = attention(q, k, v, { precision });
        backward(sum(mul(y, y)));
        return [y.toArray(), q.grad!.toArray(), k.grad!.toArray(), v.grad!.toArray()];
      });
    const f32 = run('f32');
    const bf16 = run('bf16');
    ['out', 'grad q', 'grad k', 'grad v'].forEach((what, i) => {
      const d = maxAbsDiff(bf16[i]!, f32[i]!);
      const scale = Math.max(...f32[i]!.map(Math.abs));
      // 8 significant bits per input: well within 2^-5 of the scale, but not the f32 result itself
      assert.ok(d < scale / 32, `${what}: |bf16 - f32| = ${d} at scale ${scale}`);
      assert.ok(d > 0, `${what}: bf16 equals f32 exactly`);
    });
    assert.throws(
      () => attention(q, k, v, { precision: 'f16' as 'f32' }),
      /attention: precision must be 'f32' or 'bf16', found 'f16'/,
    );
  });

  it('a causal query row with no visible key (Tq > Tk) outputs zeros', () => {
    const q = input64([1, 3, 1, 2], 11);
    const k = input64([1, 2, 1, 2], 12);
    const v = input64([1, 2, 1, 2], 13);
    const out = attention(q, k, v).toArray();
    assert.deepEqual(out.slice(0, 2), [0, 0]);
    // row 1 sees key 0 only: its output is v[0]
    assert.ok(maxAbsDiff(out.slice(2, 4), v.toArray().slice(0, 2)) < 1e-12);
    gradCheck('attention Tq > Tk', (a, b, cc) => attention(a, b, cc), [q, k, v]);
  });

  it('rejects head counts that do not group and mismatched shapes', () => {
    assert.throws(
      () => attention(input64([1, 2, 3, 2], 1), input64([1, 2, 2, 2], 2), input64([1, 2, 2, 2], 3)),
      /3 query heads are not a multiple of 2 KV heads/,
    );
    assert.throws(
      () => attention(input64([1, 2, 2, 2], 1), input64([1, 2, 2, 2], 2), input64([1, 3, 2, 2], 3)),
      /v must match k/,
    );
    assert.throws(
      () =>
        attention(input64([1, 2, 2, 2], 1), input64([1, 2, 2, 2], 2), input64([1, 2, 2, 2], 3), {
          dropout: 1,
        }),
      /dropout must be in \[0, 1\)/,
    );
  });
});
