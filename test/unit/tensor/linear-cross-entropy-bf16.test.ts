/**
 * The fused LM head in bf16 compute (`linearCrossEntropy(..., { precision: 'bf16' })`) on the active
 * backend: the forward equals the f32 head on bf16-rounded inputs (within f32 accumulation error)
 * and stays within the bf16 bound of the f32 head; the gradients wrt hidden and an f32 weight are
 * within 2% (max-norm) of the f32 head's and not identical to them; a bf16 weight is used as is.
 */
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { roundToBf16 } from '../../../src/backend/js/gemm-bf16.ts';
import {
  add,
  backward,
  fromArray,
  linearCrossEntropy,
  mulScalar,
  Rng,
  sum,
  type Tensor,
} from '../../../src/tensor/index.ts';

const N = 7;
const D = 40;
const V = 300;

function data(seed: number) {
  const rng = new Rng(seed);
  const h = Array.from({ length: N * D }, () => rng.normal());
  const w = Array.from({ length: V * D }, () => 0.3 * rng.normal());
  const labels = Array.from({ length: N }, (_, i) => (i === 3 ? -100 : rng.int(V)));
  return { h, w, labels };
}

function maxAbs(x: readonly number[]): number {
  return x.reduce((m, v) => Math.max(m, Math.abs(v)), 0);
}

function maxDiff(a: readonly number[], b: readonly number[]): number {
  return a.reduce((m, v, i) => Math.max(m, Math.abs(v - b[i]!)), 0);
}

/** Forward outputs and gradients of sum(logp) + 0.3 sum(entropy) for the given inputs. */
function run(h: number[], w: number[], labels: number[], precision: 'f32' | 'bf16', wDtype: 'f32' | 'bf16') {
  const ht = fromArray(h, [N, D], { requiresGrad: true });
  const wt =
    wDtype === 'bf16'
      ? fromArray(w, [V, D], { dtype: 'bf16' })
      : fromArray(w, [V, D], { requiresGrad: true });
  const lt = fromArray(labels, [N], { dtype: 'i32' });
  const r = linearCrossEntropy(ht, wt, lt, { precision });
  const out = { logp: r.logp.toArray(), entropy: r.entropy.toArray(), top1: r.top1.toArray() };
  backward(add(sum(r.logp), mulScalar(sum(r.entropy), 0.3)));
  return { ...out, gh: ht.grad!.toArray(), gw: (wt.grad as Tensor | null)?.toArray() ?? null };
}

describe('linearCrossEntropy, bf16 compute', () => {
  for (const wDtype of ['f32', 'bf16'] as const) {
    it(`forward and gradients against the f32 head (${wDtype} weight)`, () => {
      const { h, w: w0, labels } = data(wDtype === 'f32' ? 1 : 2);
      const w = wDtype === 'bf16' ? w0.map(roundToBf16) : w0;
      const bf = run(h, w, labels, 'bf16', wDtype);
      const f32 = run(h, w, labels, 'f32', wDtype);
      const pre = run(h.map(roundToBf16), w.map(roundToBf16), labels, 'f32', wDtype);
      // forward: exactly the f32 head on rounded inputs, up to accumulation order
      for (const key of ['logp', 'entropy', 'top1'] as const) {
        assert.ok(
          maxDiff(bf[key], pre[key]) <= 1e-4,
          `${key}: ${maxDiff(bf[key], pre[key])} from rounded-input f32`,
        );
      }
      // and within the bf16 bound of the f32 head: logits move by <= 2^-7 sum |h||w| per row, logp by twice that
      for (let r = 0; r < N; r++) {
        let bound = 0;
        for (let v = 0; v < V; v++) {
          let s = 0;
          for (let k = 0; k < D; k++) s += Math.abs(h[r * D + k]! * w[v * D + k]!);
          bound = Math.max(bound, s);
        }
        bound *= 2 ** -7;
        assert.ok(
          Math.abs(bf.logp[r]! - f32.logp[r]!) <= 2 * bound,
          `row ${r}: logp ${bf.logp[r]} vs f32 ${f32.logp[r]} (bound ${2 * bound})`,
        );
      }
      assert.ok(maxDiff(bf.logp, f32.logp) > 1e-6, 'bf16 logp identical to f32: not bf16 compute');
      // gradients: within 2% of the f32 head's (max norm), and not identical
      const ghDiff = maxDiff(bf.gh, f32.gh);
      assert.ok(ghDiff <= 0.02 * maxAbs(f32.gh), `gh off by ${ghDiff} (max |gh| ${maxAbs(f32.gh)})`);
      assert.ok(ghDiff > 1e-7, 'gh identical to f32: not bf16 compute');
      if (wDtype === 'f32') {
        const gwDiff = maxDiff(bf.gw!, f32.gw!);
        assert.ok(gwDiff <= 0.02 * maxAbs(f32.gw!), `gw off by ${gwDiff} (max |gw| ${maxAbs(f32.gw!)})`);
        assert.ok(gwDiff > 1e-7, 'gw identical to f32: not bf16 compute');
      } else {
        assert.equal(bf.gw, null);
      }
    });
  }

  it('refuses an unknown precision', () => {
    const { h, w, labels } = data(3);
    assert.throws(
      () =>
        linearCrossEntropy(
          fromArray(h, [N, D]),
          fromArray(w, [V, D]),
          fromArray(labels, [N], { dtype: 'i32' }),
          {
            precision: 'fp8' as 'f32',
          },
        ),
      /linearCrossEntropy: precision must be 'f32' or 'bf16', found 'fp8'/,
    );
  });
});
