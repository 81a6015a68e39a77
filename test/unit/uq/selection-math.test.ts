// Data selection math: entropic Sinkhorn against a hand-solved symmetric case and an independent
// float64 Sinkhorn-Knopp scaling, the calibrated OT gradient, ridge recovering a planted linear
// influence, and top-k selection monotone in the score.
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { Rng } from '../../../src/tensor/rng.ts';
import {
  calibratedGradient,
  fitRidge,
  predictRidge,
  selectionCount,
  sinkhorn,
  topIndices,
} from '../../../src/uq/index.ts';

describe('sinkhorn', () => {
  it('solves the symmetric 3x3 case by hand: f = g = -(eps/2) log((1 + 2e^(-1/eps)) / 3)', () => {
    const eps = 0.5;
    const C = [0, 1, 1, 1, 0, 1, 1, 1, 0];
    const third = [1 / 3, 1 / 3, 1 / 3];
    const r = sinkhorn(third, third, C, { eps, tolerance: 1e-13 });
    // with f = g = c the plan is (1/9) e^{(2c - C)/eps}; its rows sum to 1/3 iff the formula holds
    const c = -(eps / 2) * Math.log((1 + 2 * Math.exp(-1 / eps)) / 3);
    const shift = (r.f[0]! - r.g[0]!) / 2; // potentials are defined up to f + k, g - k
    for (let i = 0; i < 3; i++) {
      assert.ok(Math.abs(r.f[i]! - shift - c) < 1e-10, `f[${i}] ${r.f[i]} vs ${c}`);
      assert.ok(Math.abs(r.g[i]! + shift - c) < 1e-10);
    }
    const diag = Math.exp(-0 / eps) / (1 + 2 * Math.exp(-1 / eps)) / 3; // P_ii = (1/3) / (1 + 2 e^{-1/eps})
    assert.ok(Math.abs(r.plan[0]! - diag) < 1e-12);
    assert.ok(Math.abs(r.plan[1]! - diag * Math.exp(-1 / eps)) < 1e-12);
  });

  it('matches an independent Sinkhorn-Knopp matrix scaling on a non-symmetric 3x3 case', () => {
    const a = [0.5, 0.3, 0.2];
    const b = [0.2, 0.2, 0.6];
    const C = [0.1, 0.9, 0.4, 0.7, 0.2, 0.8, 0.3, 0.6, 0.05];
    const eps = 0.3;
    const r = sinkhorn(a, b, C, { eps, tolerance: 1e-14, maxIterations: 10000 });
    // P = diag(u) K diag(v), K = exp(-C/eps), alternating u = a / Kv, v = b / K^T u
    const K = C.map((c) => Math.exp(-c / eps));
    let u = [1, 1, 1];
    let v = [1, 1, 1];
    for (let it = 0; it < 5000; it++) {
      u = a.map((ai, i) => ai / (K[i * 3]! * v[0]! + K[i * 3 + 1]! * v[1]! + K[i * 3 + 2]! * v[2]!));
      v = b.map((bj, j) => bj / (K[j]! * u[0]! + K[3 + j]! * u[1]! + K[6 + j]! * u[2]!));
    }
    for (let i = 0; i < 3; i++)
      for (let j = 0; j < 3; j++) {
        const ref = u[i]! * K[i * 3 + j]! * v[j]!;
        assert.ok(Math.abs(r.plan[i * 3 + j]! - ref) < 1e-11, `P[${i},${j}] ${r.plan[i * 3 + j]} vs ${ref}`);
      }
    // rows and columns sum to a and b
    for (let i = 0; i < 3; i++)
      assert.ok(Math.abs(r.plan[i * 3]! + r.plan[i * 3 + 1]! + r.plan[i * 3 + 2]! - a[i]!) < 1e-12);
    for (let j = 0; j < 3; j++)
      assert.ok(Math.abs(r.plan[j]! + r.plan[3 + j]! + r.plan[6 + j]! - b[j]!) < 1e-12);
    // f_i = eps log(u_i / a_i) up to one shared constant
    const k0 = r.f[0]! - eps * Math.log(u[0]! / a[0]!);
    for (let i = 1; i < 3; i++) assert.ok(Math.abs(r.f[i]! - eps * Math.log(u[i]! / a[i]!) - k0) < 1e-9);
  });

  it('rejects a cost of the wrong size and a non-positive eps', () => {
    assert.throws(() => sinkhorn([1], [1], [0, 0], { eps: 1 }), /cost has 2 entries, expected 1 x 1/);
    assert.throws(() => sinkhorn([1], [1], [0], { eps: 0 }), /eps must be > 0/);
  });
});

describe('calibratedGradient', () => {
  it('is f_i minus the mean of the others (hand case) and ranks the near-target candidate most negative', () => {
    const g = calibratedGradient([1, 2, 6]);
    assert.deepEqual(Array.from(g), [1 - 4, 2 - 3.5, 6 - 1.5]);
    // candidate 0 sits on the target, 1 and 2 far away: its potential (and gradient) is the lowest
    const r = sinkhorn([1 / 3, 1 / 3, 1 / 3], [1], [0, 1, 1.2], { eps: 0.1 });
    const grad = calibratedGradient(r.f);
    assert.equal(
      topIndices(
        grad.map((x) => -x),
        1,
      )[0],
      0,
    );
  });
});

describe('ridge influence model', () => {
  it('recovers a planted linear influence on synthetic embeddings', () => {
    const rng = new Rng(3);
    const d = 8;
    const w = Float64Array.from({ length: d }, () => rng.normal());
    const X = Array.from({ length: 200 }, () => Float64Array.from({ length: d }, () => rng.normal()));
    const y = X.map((x) => 0.7 + x.reduce((s, v, j) => s + v * w[j]!, 0) + 0.01 * rng.normal());
    const fit = fitRidge(X, y, 1e-3);
    for (let j = 0; j < d; j++) assert.ok(Math.abs(fit.weights[j]! - w[j]!) < 0.01, `w[${j}]`);
    assert.ok(Math.abs(fit.bias - 0.7) < 0.01);
    const x = Float64Array.from({ length: d }, (_, j) => j / d);
    assert.ok(Math.abs(predictRidge(fit, x) - (0.7 + x.reduce((s, v, j) => s + v * w[j]!, 0))) < 0.02);
  });

  it('shrinks toward zero as lambda grows', () => {
    const X = [Float64Array.of(1), Float64Array.of(2), Float64Array.of(3)];
    // hand: centred x = -1, 0, 1, y = 2x + 1 -> w = sum(xc yc) / (sum(xc^2) + lambda) = 4 / (2 + lambda)
    const y = [3, 5, 7];
    assert.ok(Math.abs(fitRidge(X, y, 0).weights[0]! - 2) < 1e-12);
    assert.ok(Math.abs(fitRidge(X, y, 2).weights[0]! - 1) < 1e-12);
    assert.ok(Math.abs(fitRidge(X, y, 2).bias - (5 - 2 * 1)) < 1e-12);
  });
});

describe('top-k selection', () => {
  it('keeps the highest scores, monotone: raising a score never drops it from the selection', () => {
    const scores = [0.3, -1, 2, 0.3, Number.NaN, 1];
    assert.deepEqual(topIndices(scores, 3), [2, 5, 0]);
    const rng = new Rng(5);
    for (let trial = 0; trial < 50; trial++) {
      const s = Array.from({ length: 12 }, () => rng.uniform());
      const k = 1 + rng.int(11);
      const chosen = new Set(topIndices(s, k));
      for (const i of chosen) {
        const raised = [...s];
        raised[i] = raised[i]! + rng.uniform();
        assert.ok(topIndices(raised, k).includes(i));
      }
      const cut = Math.min(...[...chosen].map((i) => s[i]!));
      for (let i = 0; i < s.length; i++) if (!chosen.has(i)) assert.ok(s[i]! <= cut);
    }
  });

  it('counts a fraction (rounded, at least 1) or a count, and rejects out-of-range sizes', () => {
    assert.equal(selectionCount({ fraction: 0.25 }, 10), 3);
    assert.equal(selectionCount({ fraction: 0.01 }, 10), 1);
    assert.equal(selectionCount({ fraction: 1 }, 10), 10);
    assert.throws(() => selectionCount({ fraction: 0 }, 10), /--fraction: expected a number in \(0, 1\]/);
    assert.throws(() => selectionCount({ fraction: 1.5 }, 10), /--fraction/);
    assert.throws(() => selectionCount({ count: 11 }, 10), /--count 11 is more than the pool of 10/);
  });
});
