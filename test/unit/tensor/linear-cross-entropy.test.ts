import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import {
  add,
  backward,
  exp,
  fromArray,
  linearCrossEntropy,
  logSoftmax,
  matmul,
  max,
  mul,
  neg,
  reshape,
  scope,
  sum,
  type Tensor,
} from '../../../src/tensor/index.ts';
import { gradCheck, input64 } from '../../helpers/gradcheck.ts';

const labelTensor = (values: number[]) => fromArray(values, [values.length], { dtype: 'i32' });

/** logp / entropy / top1 from materialised logits: matmul + logSoftmax + reductions. */
function reference(h: Tensor, w: Tensor, labels: number[]) {
  const V = w.shape[0]!;
  const lp = logSoftmax(matmul(h, w, { transB: true }));
  const onehot = new Array<number>(labels.length * V).fill(0);
  labels.forEach((l, i) => {
    if (l !== -100) onehot[i * V + l] = 1;
  });
  const logp = sum(mul(lp, fromArray(onehot, [labels.length, V], { dtype: h.dtype })), -1);
  const entropy = neg(sum(mul(exp(lp), lp), -1));
  // keepdim + reshape: reduce.ts max's backward misreads g when keepdim is false
  const top1 = reshape(max(lp, -1, true), [labels.length]);
  return { lp: lp.toArray(), logp, entropy, top1 };
}

function assertClose(
  actual: readonly number[],
  expected: readonly number[],
  tol: number,
  what: string,
): void {
  assert.equal(actual.length, expected.length, `${what}: length`);
  actual.forEach((a, i) => {
    const e = expected[i]!;
    const ok = a === e || Math.abs(a - e) <= tol * Math.max(1, Math.abs(e));
    assert.ok(ok, `${what}[${i}]: ${a} vs ${e} (tol ${tol})`);
  });
}

/** Labels in [0, V) with every `ignoreEvery`-th one -100. */
function makeLabels(N: number, V: number, ignoreEvery: number): number[] {
  return Array.from({ length: N }, (_, i) =>
    i % ignoreEvery === ignoreEvery - 1 ? -100 : (i * 7919 + 3) % V,
  );
}

/** Forward and (h, w) gradients of sum(a logp + b entropy + c top1) by both paths. */
function compare(
  N: number,
  d: number,
  V: number,
  labels: number[],
  tol: number,
  bigLastChunk: boolean,
): void {
  const h = input64([N, d], 1);
  const w = input64([V, d], 2);
  if (bigLastChunk) {
    // row 0's maximum logit sits in the last vocabulary chunk (the online max must rescale)
    const wd = w.data as Float64Array;
    const hd = h.data as Float64Array;
    for (let k = 0; k < d; k++) wd[(V - 1) * d + k] = 3 * hd[k]!;
  }
  const coef = [input64([N], 3), input64([N], 4), input64([N], 5)];
  for (const c of coef) c.requiresGrad = false;
  const y = labelTensor(labels);
  const run = (fused: boolean) =>
    scope(() => {
      const outs = fused ? linearCrossEntropy(h, w, y) : reference(h, w, labels);
      const loss = add(
        add(sum(mul(coef[0]!, outs.logp)), sum(mul(coef[1]!, outs.entropy))),
        sum(mul(coef[2]!, outs.top1)),
      );
      backward(loss);
      const result = {
        logp: outs.logp.toArray(),
        entropy: outs.entropy.toArray(),
        top1: outs.top1.toArray(),
        gh: h.grad!.toArray(),
        gw: w.grad!.toArray(),
      };
      h.grad = null;
      w.grad = null;
      return result;
    });
  const fused = run(true);
  const ref = run(false);
  for (const key of ['logp', 'entropy', 'top1', 'gh', 'gw'] as const)
    assertClose(fused[key], ref[key], tol, key);
  // argmax, top2 and correct against the materialised log-probs
  const r = scope(() => linearCrossEntropy(h, w, y));
  const lp = scope(() => reference(h, w, labels).lp);
  for (let i = 0; i < N; i++) {
    const row = lp.slice(i * V, (i + 1) * V);
    const sorted = [...row].sort((a, b) => b - a);
    const am = row.indexOf(sorted[0]!);
    assert.equal(r.argmax[i], am, `argmax[${i}]`);
    assertClose([r.top2.toArray()[i]!], [sorted[1] ?? -Infinity], tol, `top2[${i}]`);
    assert.equal(r.correct.toArray()[i], am === labels[i] ? 1 : 0, `correct[${i}]`);
    if (labels[i] === -100) assert.equal(r.logp.toArray()[i], 0);
  }
  if (bigLastChunk) assert.equal(r.argmax[0], V - 1);
}

describe('linearCrossEntropy', () => {
  it('small vocabulary: outputs and gradients match matmul + logSoftmax', () => {
    compare(5, 4, 7, makeLabels(5, 7, 3), 1e-12, false);
  });
  it('vocabulary over several chunks, rows over several blocks, max in the last chunk', () => {
    compare(20, 3, 2100, makeLabels(20, 2100, 4), 1e-10, true);
  });

  it('gradient check with arbitrary coefficients on logp, entropy and top1', () => {
    const y = labelTensor([3, -100, 0, 6]);
    gradCheck(
      'lce',
      (h, w) => {
        const r = linearCrossEntropy(h, w, y);
        return [r.logp, r.entropy, r.top1];
      },
      [input64([4, 3], 6), input64([7, 3], 7)],
    );
  });
  for (const which of ['logp', 'entropy', 'top1'] as const) {
    it(`gradient check with only ${which} used (the other coefficients are zero)`, () => {
      const y = labelTensor([1, 4, -100]);
      gradCheck(`lce ${which}`, (h, w) => linearCrossEntropy(h, w, y)[which], [
        input64([3, 2], 8),
        input64([5, 2], 9),
      ]);
    });
  }
  it('gradient check with a frozen weight, and with V = 1 and N = 1', () => {
    const w = input64([6, 3], 10);
    w.requiresGrad = false;
    const y = labelTensor([2, 5]);
    gradCheck(
      'lce frozen w',
      (h, ww) => {
        const r = linearCrossEntropy(h, ww, y);
        return [r.logp, r.entropy, r.top1];
      },
      [input64([2, 3], 11), w],
    );
    const one = linearCrossEntropy(input64([1, 2], 12), input64([1, 2], 13), labelTensor([0]));
    assert.equal(one.logp.item(), 0);
    assert.equal(one.entropy.item(), 0);
    assert.equal(one.top2.item(), -Infinity);
    assert.equal(one.correct.item(), 1);
    gradCheck('lce V=1', (h, ww) => linearCrossEntropy(h, ww, labelTensor([-100])).entropy, [
      input64([1, 2], 14),
      input64([1, 2], 15),
    ]);
  });

  it('bf16 weight (frozen head) on the active backend matches f32 matmul + logSoftmax', () => {
    const N = 6;
    const d = 8;
    const V = 1500;
    const h = fromArray(input64([N, d], 16).toArray(), [N, d]);
    h.requiresGrad = true;
    const w = fromArray(input64([V, d], 17).toArray(), [V, d], { dtype: 'bf16' });
    const labels = makeLabels(N, V, 5);
    const y = labelTensor(labels);
    const coef = fromArray(input64([N], 18).toArray(), [N]);
    const fusedGrad = scope(() => {
      const r = linearCrossEntropy(h, w, y);
      backward(add(sum(mul(coef, r.logp)), sum(r.entropy)));
      return { logp: r.logp.toArray(), entropy: r.entropy.toArray(), gh: h.grad!.toArray() };
    });
    h.grad = null;
    const refGrad = scope(() => {
      const r = reference(h, w, labels);
      backward(add(sum(mul(coef, r.logp)), sum(r.entropy)));
      return { logp: r.logp.toArray(), entropy: r.entropy.toArray(), gh: h.grad!.toArray() };
    });
    h.grad = null;
    assertClose(fusedGrad.logp, refGrad.logp, 1e-4, 'logp');
    assertClose(fusedGrad.entropy, refGrad.entropy, 1e-4, 'entropy');
    assertClose(fusedGrad.gh, refGrad.gh, 1e-4, 'grad h');
  });

  it('f32 on the active backend matches the f64 oracle, including the weight gradient', () => {
    const [N, d, V] = [7, 5, 1100];
    const h64 = input64([N, d], 19);
    const w64 = input64([V, d], 20);
    const labels = labelTensor(makeLabels(N, V, 3));
    const run = (h: Tensor, w: Tensor) =>
      scope(() => {
        const r = linearCrossEntropy(h, w, labels);
        backward(add(add(sum(r.logp), sum(r.entropy)), sum(r.top1)));
        const out = [
          r.logp.toArray(),
          r.entropy.toArray(),
          r.top1.toArray(),
          r.top2.toArray(),
          h.grad!.toArray(),
          w.grad!.toArray(),
        ];
        h.grad = null;
        w.grad = null;
        return out;
      });
    const expected = run(h64, w64);
    const to32 = (t: Tensor) => {
      const c = fromArray(t.toArray(), t.shape);
      c.requiresGrad = true;
      return c;
    };
    const actual = run(to32(h64), to32(w64));
    ['logp', 'entropy', 'top1', 'top2', 'grad h', 'grad w'].forEach((what, i) => {
      assertClose(actual[i]!, expected[i]!, 2e-4, what);
    });
  });

  it('breaks argmax ties by the first index, also across vocabulary chunks (top2 = top1 then)', () => {
    const [N, d, V] = [2, 3, 1500];
    const h = input64([N, d], 21);
    const w = input64([V, d], 22);
    const wd = w.data as Float64Array;
    const hd = h.data as Float64Array;
    for (let k = 0; k < d; k++) {
      // row 0: tie between vocab 5 and 9 (same chunk); row 1: tie between 3 and 1200 (different chunks)
      wd[5 * d + k] = wd[9 * d + k] = 4 * hd[k]!;
      wd[3 * d + k] = wd[1200 * d + k] = 4 * hd[d + k]!;
    }
    const r = linearCrossEntropy(h, w, labelTensor([9, 3]));
    assert.deepEqual([...r.argmax], [5, 3]);
    assert.deepEqual(r.correct.toArray(), [0, 1]);
    assert.deepEqual(r.top2.toArray(), r.top1.toArray());
  });

  it('names a label outside the vocabulary and shape mismatches', () => {
    assert.throws(
      () => linearCrossEntropy(input64([2, 3], 1), input64([4, 3], 2), labelTensor([0, 4])),
      /label 4 at position 1 is outside the vocabulary \[0, 4\)/,
    );
    assert.throws(
      () => linearCrossEntropy(input64([2, 3], 1), input64([4, 2], 2), labelTensor([0, 1])),
      /expected \[N, d\] and \[V, d\]/,
    );
    assert.throws(
      () => linearCrossEntropy(input64([2, 3], 1), input64([4, 3], 2), labelTensor([0])),
      /one label per row/,
    );
  });
});
