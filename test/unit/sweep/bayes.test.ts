import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import {
  expectedHypervolumeImprovement,
  expectedImprovement,
  hypervolume2d,
  hypervolumeImprovement,
} from '../../../src/sweep/bayes/acquisition.ts';
import { encodePoint } from '../../../src/sweep/bayes/encode.ts';
import { fitGp, gpPosterior } from '../../../src/sweep/bayes/gp.ts';
import { type BayesOptions, bayesSearch, type Observation } from '../../../src/sweep/bayes/optimizer.ts';
import { randomPoints } from '../../../src/sweep/space.ts';
import { Rng } from '../../../src/tensor/rng.ts';
import { normalCdf, normalPdf } from '../../../src/tensor/special.ts';

/** Matérn 5/2 with unit variance and length-scale, written out by hand. */
const m52 = (r: number) => (1 + Math.sqrt(5) * r + (5 * r * r) / 3) * Math.exp(-Math.sqrt(5) * r);

const close = (a: number, b: number, tol: number, what: string) =>
  assert.ok(Math.abs(a - b) <= tol, `${what}: expected ${b}, found ${a}`);

describe('sweep bayes: the GP posterior', () => {
  it('matches the two-point posterior worked by hand', () => {
    const gp = gpPosterior([[0], [1]], [1, -1], { lengthscale: 1, noise: 0, variance: 1 })!;
    const k = m52(1);
    // at an observed point (no noise): the observation, no variance
    close(gp.predict([0]).mean, 1, 1e-12, 'mean at x=0');
    close(gp.predict([0]).variance, 0, 1e-12, 'variance at x=0');
    // at x = 0.25: K⁻¹y = [1, −1]/(1 − k), so mean = (a − b)/(1 − k); variance = 1 − (a² + b² − 2abk)/(1 − k²)
    const a = m52(0.25);
    const b = m52(0.75);
    const p = gp.predict([0.25]);
    close(p.mean, (a - b) / (1 - k), 1e-12, 'mean at x=0.25');
    close(p.variance, 1 - (a * a + b * b - 2 * a * b * k) / (1 - k * k), 1e-12, 'variance at x=0.25');
    // the midpoint is symmetric: mean 0
    close(gp.predict([0.5]).mean, 0, 1e-12, 'mean at x=0.5');
    // far away: the prior (mean 0, variance 1)
    close(gp.predict([40]).variance, 1, 1e-9, 'variance far away');
  });

  it('reports outputs in their own units and fits hyper-parameters by marginal likelihood', () => {
    const xs = Array.from({ length: 12 }, (_, i) => [i / 11]);
    const smooth = xs.map(([x]) => 100 + 5 * Math.sin(3 * x!));
    const gp = fitGp(xs, smooth);
    // a smooth function: a long length-scale and almost no noise beat the rest of the grid
    assert.ok(gp.hyper.lengthscale >= 0.3, `lengthscale ${gp.hyper.lengthscale}`);
    assert.ok(gp.hyper.noise <= 1e-3, `noise ${gp.hyper.noise}`);
    close(gp.predict([0.5]).mean, 100 + 5 * Math.sin(1.5), 0.05, 'interpolated mean');
    // the same points with a rough (alternating) output pick a shorter length-scale
    const rough = fitGp(
      xs,
      xs.map((_, i) => (i % 2 === 0 ? 1 : -1)),
    );
    assert.ok(rough.hyper.lengthscale < gp.hyper.lengthscale || rough.hyper.noise > gp.hyper.noise);
  });
});

describe('sweep bayes: acquisition', () => {
  it('normal functions and expected improvement match values worked by hand', () => {
    close(normalPdf(0), 1 / Math.sqrt(2 * Math.PI), 1e-15, 'φ(0)');
    close(normalCdf(0), 0.5, 1e-7, 'Φ(0)');
    close(normalCdf(1.96), 0.9750021, 2e-7, 'Φ(1.96)');
    close(normalCdf(-0.5), 0.3085375, 2e-7, 'Φ(−0.5)');
    // mean 0, sd 1, best 0: E[max(−y, 0)] = φ(0)
    close(expectedImprovement(0, 1, 0), 0.3989423, 1e-6, 'EI(0, 1, 0)');
    // mean 1, sd 2, best 0: u = −0.5, EI = −Φ(−0.5) + 2φ(−0.5)
    close(expectedImprovement(1, 2, 0), -0.3085375 + 2 * 0.3520653, 1e-6, 'EI(1, 2, 0)');
    // no uncertainty: the plain improvement
    assert.equal(expectedImprovement(-2, 0, 0), 2);
    assert.equal(expectedImprovement(3, 0, 0), 0);
    // a Monte Carlo check of the closed form
    const rng = new Rng(1);
    let sum = 0;
    for (let i = 0; i < 200000; i++) sum += Math.max(0.3 - (0.5 + 0.7 * rng.normal()), 0);
    close(expectedImprovement(0.5, 0.7, 0.3), sum / 200000, 3e-3, 'EI vs Monte Carlo');
  });

  it('hypervolume and its improvement on a constructed 2-D front', () => {
    const front: [number, number][] = [
      [1, 3],
      [2, 2],
      [3, 1],
    ];
    // staircase areas 1·1 + 1·2 + 1·3
    assert.equal(hypervolume2d(front, [4, 4]), 6);
    // dominated and outside-the-reference points add nothing
    assert.equal(hypervolume2d([...front, [3, 3], [5, 0]], [4, 4]), 6);
    // (1.5, 1.5) dominates (2, 2): the new staircase is 0.5·1 + 1.5·2.5 + 1·3 = 7.25
    assert.equal(hypervolumeImprovement(front, [1.5, 1.5], [4, 4]), 1.25);
    assert.equal(hypervolumeImprovement(front, [2.5, 2.5], [4, 4]), 0);
    // (0.5, 0.5) dominates the whole front: its box 3.5² less the old 6
    assert.equal(hypervolumeImprovement(front, [0.5, 0.5], [4, 4]), 12.25 - 6);
    // with no uncertainty EHVI is the improvement itself
    assert.equal(expectedHypervolumeImprovement([1.5, 1.5], [0, 0], front, [4, 4], [[0.3, -1]]), 1.25);
  });

  it('Monte Carlo EHVI agrees with a quadrature of the improvement', () => {
    const front: [number, number][] = [
      [1, 3],
      [2, 2],
      [3, 1],
    ];
    const mean: [number, number] = [2, 1.8];
    const sd: [number, number] = [0.6, 0.4];
    const rng = new Rng(7);
    const normals = Array.from({ length: 40000 }, () => [rng.normal(), rng.normal()] as [number, number]);
    const mc = expectedHypervolumeImprovement(mean, sd, front, [4, 4], normals);
    // midpoint rule over ±6 sd
    const n = 400;
    let quad = 0;
    for (let i = 0; i < n; i++)
      for (let j = 0; j < n; j++) {
        const z0 = -6 + (12 * (i + 0.5)) / n;
        const z1 = -6 + (12 * (j + 0.5)) / n;
        const w = normalPdf(z0) * normalPdf(z1) * (12 / n) ** 2;
        quad += w * hypervolumeImprovement(front, [mean[0] + sd[0] * z0, mean[1] + sd[1] * z1], [4, 4]);
      }
    assert.ok(quad > 0.05, `quadrature ${quad}`);
    close(mc, quad, 0.02 * quad + 1e-3, 'EHVI Monte Carlo vs quadrature');
  });
});

describe('sweep bayes: the optimiser', () => {
  const space = { x: { uniform: [0, 1] as [number, number] }, y: { uniform: [0, 1] as [number, number] } };
  const bowl = (p: Record<string, unknown>) => ((p.x as number) - 0.3) ** 2 + ((p.y as number) - 0.7) ** 2;
  const options = (seed: number, objectives: BayesOptions['objectives'], batch = 1): BayesOptions => ({
    space,
    trials: 20,
    initial: 5,
    seed,
    objectives,
    batch,
    candidates: 256,
    samples: 64,
  });
  const one = [{ metric: 'f', goal: 'min' as const }];

  it('finds the minimum of a bowl, better than random search at equal trials', async () => {
    let bayesSum = 0;
    let randomSum = 0;
    for (const seed of [0, 1, 2, 3]) {
      const history = await bayesSearch(options(seed, one), async (batch) =>
        batch.map((p) => ({ f: bowl(p) })),
      );
      assert.equal(history.length, 20);
      const best = Math.min(...history.map((h) => h.metrics!.f!));
      assert.ok(best < 0.01, `seed ${seed}: best ${best} (optimum 0 at (0.3, 0.7))`);
      bayesSum += best;
      randomSum += Math.min(...randomPoints(space, 20, seed + 100).map(bowl));
    }
    assert.ok(bayesSum < randomSum / 2, `mean best: bayes ${bayesSum / 4}, random ${randomSum / 4}`);
  });

  /** Two objectives whose Pareto front is y = 0.5, x in [0, 1] (f1 + f2 = 1 there). */
  const pair = (p: Record<string, unknown>) => {
    const g = 2 * ((p.y as number) - 0.5) ** 2;
    return { f1: (p.x as number) + g, f2: 1 - (p.x as number) + g };
  };
  const two = [
    { metric: 'f1', goal: 'min' as const },
    { metric: 'f2', goal: 'min' as const },
  ];
  const hv = (hs: Observation[] | Record<string, number>[]) =>
    hypervolume2d(
      hs.map((h) => {
        const m = ('metrics' in h ? h.metrics : h) as Record<string, number>;
        return [m.f1!, m.f2!] as [number, number];
      }),
      [1.2, 1.2],
    );

  it('approaches a known Pareto front (EHVI), with more hypervolume than random search', async () => {
    let bayesHv = 0;
    let randomHv = 0;
    for (const seed of [0, 1, 2]) {
      const history = await bayesSearch(options(seed, two), async (batch) => batch.map(pair));
      bayesHv += hv(history);
      randomHv += hv(randomPoints(space, 20, seed + 100).map(pair));
    }
    // the true front's hypervolume under (1.2, 1.2): 1.2² less the triangle f1 + f2 < 1 = 1.44 − 0.5 = 0.94
    assert.ok(bayesHv / 3 > 0.85, `bayes hypervolume ${bayesHv / 3} (true front 0.94)`);
    assert.ok(bayesHv > randomHv, `hypervolume: bayes ${bayesHv / 3}, random ${randomHv / 3}`);
  });

  it('proposes batches (Kriging believer) of distinct untried points and stops when a finite space runs out', async () => {
    const batches: number[] = [];
    const history = await bayesSearch(options(5, one, 3), async (batch) => {
      batches.push(batch.length);
      return batch.map((p) => ({ f: bowl(p) }));
    });
    assert.deepEqual(batches, [5, 3, 3, 3, 3, 3]);
    assert.equal(new Set(history.map((h) => JSON.stringify(h.params))).size, 20);
    const small = { r: [2, 4, 8], layers: [[0], [1], [0, 1]] };
    const seen = await bayesSearch(
      { ...options(0, one, 2), space: small, trials: 50, initial: 3 },
      async (batch) => batch.map((p) => ({ f: (p.r as number) * (p.layers as number[]).length })),
    );
    assert.equal(seen.length, 9);
    assert.equal(new Set(seen.map((h) => JSON.stringify(h.params))).size, 9);
  });

  it('is a function of the seed and the observations: a rerun proposes the same trials, failed ones are not retried', async () => {
    const calls: string[] = [];
    const run = () =>
      bayesSearch(options(3, two, 2), async (batch) =>
        batch.map((p) => {
          calls.push(JSON.stringify(p));
          return (p.x as number) > 0.9 ? null : pair(p);
        }),
      );
    const first = await run();
    const second = await run();
    assert.deepEqual(second, first);
    assert.equal(new Set(calls).size, first.length);
  });

  it('encodes ranges on the unit cube, numbers lists as ordinal and other lists one-hot', () => {
    const s = {
      lr: { log_uniform: [1e-4, 1e-2] as [number, number] },
      r: [2, 4, 8],
      layers: [[0], [1], [0, 1]],
      steps: { int: [2, 6] as [number, number] },
    };
    const x = encodePoint(s, { lr: 1e-3, r: 8, layers: [1], steps: 3 });
    // lr: the log-scale midpoint; r: the last of 3; layers: one-hot of the second; steps: (3 − 2)/4
    close(x[0]!, 0.5, 1e-12, 'log scale midpoint');
    assert.deepEqual(x.slice(1), [1, 0, 1, 0, 0.25]);
    assert.throws(
      () => encodePoint(s, { lr: 1e-3, r: 3, layers: [0], steps: 2 }),
      /'r' = 3 is not one of its choices/,
    );
  });
});
