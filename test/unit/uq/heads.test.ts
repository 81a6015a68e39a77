/** Learned uncertainty heads: hand-computed evidential loss / vacuity, finite-difference gradients, DEUP targets, fitting. */
import assert from 'node:assert/strict';
import { it } from 'node:test';
import {
  bayesCapLoss,
  deupTargets,
  digamma,
  dirichletOf,
  evidentialLoss,
  fitHead,
  HEAD_KINDS,
  type HeadExample,
  headObjective,
  headOutputs,
  headScore,
  klToUniformDirichlet,
  lnGamma,
  trigamma,
} from '../../../src/uq/heads.ts';
import { assertClose } from './helpers.ts';

it('lnGamma, digamma, trigamma match known values', () => {
  assertClose(lnGamma(1), 0, 1e-13);
  assertClose(lnGamma(5), Math.log(24), 1e-12);
  assertClose(lnGamma(0.5), 0.5 * Math.log(Math.PI), 1e-12);
  assertClose(digamma(1), -0.5772156649015329, 1e-12);
  assertClose(digamma(0.5), -0.5772156649015329 - 2 * Math.LN2, 1e-12);
  assertClose(trigamma(1), Math.PI ** 2 / 6, 1e-12);
  assertClose(trigamma(0.5), Math.PI ** 2 / 2, 1e-11);
});

it('evidential: z = 0 gives alpha = 1 + ln 2, vacuity 1 / (1 + ln 2) and the hand-computed loss', () => {
  const a = 1 + Math.LN2;
  const d = dirichletOf([0, 0]);
  assertClose(d.S, 2 * a, 1e-15);
  assertClose(d.vacuity, 1 / a, 1e-15);
  assert.deepEqual(d.p, [0.5, 0.5]);
  // y = (1, 0): MSE part 0.25 + 0.25 + 2 * 0.25 / (S + 1); alpha~ = (1, a): KL = ln a - (a - 1) / a
  const mse = 0.5 + 0.5 / (2 * a + 1);
  const kl = Math.log(a) - (a - 1) / a;
  assertClose(klToUniformDirichlet([1, a]).kl, kl, 1e-12);
  assertClose(evidentialLoss([0, 0], [1, 0], 0).loss, mse, 1e-15);
  assertClose(evidentialLoss([0, 0], [1, 0], 0.3).loss, mse + 0.3 * kl, 1e-12);
  // KL of the uniform Dirichlet to itself is 0; more evidence lowers vacuity
  assertClose(klToUniformDirichlet([1, 1, 1]).kl, 0, 1e-13);
  assert.ok(dirichletOf([3, 0]).vacuity < d.vacuity);
});

const fd = (f: (x: number) => number, x: number, h = 1e-6) => (f(x + h) - f(x - h)) / (2 * h);

it('evidential loss, KL, DEUP and BayesCap gradients match finite differences', () => {
  for (const [z, y, lambda] of [
    [[0.3, -1.2], [1, 0], 0.7],
    [[2.1, 0.4, -0.5], [0, 0, 1], 1],
    [[-3, 5], [0, 1], 0.2],
  ] as [number[], number[], number][]) {
    const { grad } = evidentialLoss(z, y, lambda);
    z.forEach((_, k) => {
      const f = (v: number) =>
        evidentialLoss(
          z.map((zz, j) => (j === k ? v : zz)),
          y,
          lambda,
        ).loss;
      assertClose(grad[k]!, fd(f, z[k]!), 1e-7, `evidential d/dz${k}`);
    });
  }
  const alpha = [1.3, 2.7, 0.8];
  const { grad } = klToUniformDirichlet(alpha);
  alpha.forEach((_, k) => {
    const f = (v: number) => klToUniformDirichlet(alpha.map((a, j) => (j === k ? v : a))).kl;
    assertClose(grad[k]!, fd(f, alpha[k]!), 1e-7, `KL d/dalpha${k}`);
  });
  for (const [r, s, y, t] of [
    [0.1, -0.4, 0.8, 0],
    [-0.3, 1.2, 0.3, 1],
  ]) {
    const g = bayesCapLoss(r!, s!, y!, t!, 0.5).grad;
    assertClose(
      g[0],
      fd((v) => bayesCapLoss(v, s!, y!, t!, 0.5).loss, r!),
      1e-7,
      'bayescap d/dr',
    );
    assertClose(
      g[1],
      fd((v) => bayesCapLoss(r!, v, y!, t!, 0.5).loss, s!),
      1e-7,
      'bayescap d/ds',
    );
  }
});

function examples(n: number, d: number): HeadExample[] {
  // deterministic: feature 0 separates right from wrong, the rest is noise
  let s = 7;
  const rnd = () => ((s = (s * 16807) % 2147483647) / 2147483647) * 2 - 1;
  return Array.from({ length: n }, (_, i) => {
    const correct = i % 3 !== 0;
    const features = Array.from({ length: d }, (_, j) =>
      j === 0 ? (correct ? 1 : -1) + 0.3 * rnd() : rnd(),
    );
    return { features, correct, confidence: 0.5 + 0.2 * rnd() };
  });
}

it("each head's whole objective (weights and biases) matches finite differences", () => {
  const ex = examples(5, 3);
  const xs = ex.map((e) => Float64Array.from(e.features));
  for (const kind of HEAD_KINDS) {
    const outs = headOutputs(kind);
    const weight = Float64Array.from({ length: outs * 3 }, (_, k) => 0.3 * Math.sin(k + 1));
    const bias = Float64Array.from({ length: outs }, (_, k) => 0.2 * Math.cos(k));
    const options = { lambda: 0.6, identityWeight: 0.8, l2: 0.01 };
    const r = headObjective(kind, weight, bias, xs, ex, options);
    for (const [params, g, name] of [
      [weight, r.gWeight, 'weight'],
      [bias, r.gBias, 'bias'],
    ] as const)
      params.forEach((p, k) => {
        const f = (v: number) => {
          const copy = Float64Array.from(params);
          copy[k] = v;
          return name === 'weight'
            ? headObjective(kind, copy, bias, xs, ex, options).loss
            : headObjective(kind, weight, copy, xs, ex, options).loss;
        };
        assertClose(g[k]!, fd(f, p), 1e-7, `${kind} ${name}[${k}]`);
      });
  }
});

it('DEUP targets: e = 1 - correct, a = 1 - confidence; score = e^ - a', () => {
  assert.deepEqual(deupTargets({ correct: true, confidence: 0.75 }), { e: 0, a: 0.25 });
  assert.deepEqual(deupTargets({ correct: false, confidence: 0.75 }), { e: 1, a: 0.25 });
  const head = fitHead('deup', examples(30, 2), { steps: 400, lr: 0.05, l2: 0 });
  // a linear regressor of e on a feature that separates the classes: mean residual 0 (bias fitted)
  const ex = examples(30, 2);
  const wrong = ex.filter((e) => !e.correct).map((e) => headScore(head, e.features, 1));
  const right = ex.filter((e) => e.correct).map((e) => headScore(head, e.features, 1));
  assert.ok(Math.min(...wrong) > Math.max(...right), 'predicted error separates the classes');
  // the aleatoric estimate is subtracted: confidence 0.6 lowers the score by exactly 0.4
  assertClose(headScore(head, ex[0]!.features, 0.6), headScore(head, ex[0]!.features, 1) - 0.4, 1e-15);
});

it('fitted heads rank wrong answers as less sure; fitting lowers the loss and is deterministic', () => {
  const ex = examples(30, 3);
  for (const kind of ['evidential', 'deup'] as const) {
    const head = fitHead(kind, ex, { steps: 200, lr: 0.05 });
    const zero = fitHead(kind, ex, { steps: 0 });
    assert.ok(head.loss < zero.loss, `${kind}: loss ${head.loss} < ${zero.loss}`);
    assert.deepEqual(fitHead(kind, ex, { steps: 200, lr: 0.05 }).weight, head.weight);
    const mean = (xs: number[]) => xs.reduce((a, b) => a + b, 0) / xs.length;
    const s = (c: boolean) =>
      mean(ex.filter((e) => e.correct === c).map((e) => headScore(head, e.features, e.confidence)));
    assert.ok(s(false) > s(true), `${kind}: wrong ${s(false)} > right ${s(true)}`);
  }
  const cap = fitHead('bayescap', ex, { steps: 300, lr: 0.05 });
  assert.ok(cap.loss < fitHead('bayescap', ex, { steps: 0 }).loss);
  assert.throws(() => fitHead('deup', ex.slice(0, 1)), /at least 2 answers/);
  assert.throws(
    () => fitHead('deup', [ex[0]!, { ...ex[1]!, features: [1] }]),
    /answer 2 has 1 features, answer 1 has 3/,
  );
});
