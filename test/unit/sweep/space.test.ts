import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { bestTrial, frontObjectives, paretoFront } from '../../../src/sweep/pareto.ts';
import { canonicalJson, expandTrials, gridPoints, randomPoints, trialId } from '../../../src/sweep/space.ts';
import { Rng } from '../../../src/tensor/rng.ts';

describe('sweep search space', () => {
  it('a grid is every combination, the first field slowest, once per seed', () => {
    assert.deepEqual(gridPoints({ 'train.lr': [1e-3, 1e-2], 'method.r': [4, 8, 16] }), [
      { 'train.lr': 1e-3, 'method.r': 4 },
      { 'train.lr': 1e-3, 'method.r': 8 },
      { 'train.lr': 1e-3, 'method.r': 16 },
      { 'train.lr': 1e-2, 'method.r': 4 },
      { 'train.lr': 1e-2, 'method.r': 8 },
      { 'train.lr': 1e-2, 'method.r': 16 },
    ]);
    const trials = expandTrials({ search: { kind: 'grid', grid: { 'method.r': [4, 8] } }, seeds: [0, 1] });
    assert.deepEqual(
      trials.map((t) => [t.params['method.r'], t.seed]),
      [
        [4, 0],
        [4, 1],
        [8, 0],
        [8, 1],
      ],
    );
    assert.equal(new Set(trials.map((t) => t.id)).size, 4);
    // no seeds: the base config's seed (null), and a repeated value is one trial
    const repeated = expandTrials({ search: { kind: 'grid', grid: { 'method.r': [4, 4] } }, seeds: null });
    assert.deepEqual(repeated, [
      { id: trialId({ 'method.r': 4 }, null), params: { 'method.r': 4 }, seed: null },
    ]);
  });

  it('random search draws from the seeded Rng: choices, uniform, log-uniform and int ranges, reproducibly', () => {
    const space = {
      'method.r': [4, 8, 16],
      'train.max_grad_norm': { uniform: [0.5, 1.5] as [number, number] },
      'train.lr': { log_uniform: [1e-4, 1e-2] as [number, number] },
      'train.batch_size': { int: [2, 4] as [number, number] },
    };
    const points = randomPoints(space, 3, 7);
    // by hand: the fields draw in order, one Rng(7) for the whole search
    const rng = new Rng(7);
    for (const p of points) {
      assert.equal(p['method.r'], [4, 8, 16][rng.int(3)]);
      assert.equal(p['train.max_grad_norm'], 0.5 + rng.uniform() * 1);
      assert.equal(
        p['train.lr'],
        Math.exp(Math.log(1e-4) + rng.uniform() * (Math.log(1e-2) - Math.log(1e-4))),
      );
      assert.equal(p['train.batch_size'], 2 + rng.int(3));
    }
    assert.deepEqual(randomPoints(space, 3, 7), points);
    assert.notDeepEqual(randomPoints(space, 3, 8), points);
    for (const p of randomPoints(space, 50, 1)) {
      assert.ok((p['train.lr'] as number) >= 1e-4 && (p['train.lr'] as number) <= 1e-2);
      assert.ok([2, 3, 4].includes(p['train.batch_size'] as number));
    }
  });

  it('a trial id depends on its params and seed only, not on key order', () => {
    assert.equal(trialId({ a: 1, b: [1, 2] }, 0), trialId({ b: [1, 2], a: 1 }, 0));
    assert.notEqual(trialId({ a: 1 }, 0), trialId({ a: 1 }, 1));
    assert.notEqual(trialId({ a: 1 }, null), trialId({ a: 2 }, null));
    assert.match(trialId({ a: 1 }, 0), /^t-[0-9a-f]{10}$/);
    assert.equal(canonicalJson({ b: { d: 1, c: 2 }, a: null }), '{"a":null,"b":{"c":2,"d":1}}');
  });
});

describe('sweep ranking', () => {
  const t = (id: string, eval_loss: number, trainable_params: number) => ({
    id,
    metrics: { eval_loss, trainable_params },
  });
  const trials = [t('a', 1.0, 100), t('b', 0.8, 400), t('c', 0.9, 400), t('d', 0.7, 900), t('e', 1.2, 50)];

  it('the Pareto front keeps exactly the non-dominated trials', () => {
    const objectives = frontObjectives([{ metric: 'eval_loss', goal: 'min' }]);
    assert.deepEqual(objectives[1], { metric: 'trainable_params', goal: 'min' });
    // c is dominated by b (same size, higher loss); every other one trades loss for size
    assert.deepEqual(
      paretoFront(trials, objectives).map((x) => x.id),
      ['a', 'b', 'd', 'e'],
    );
    // maximising the size instead: only the largest with the lowest loss survives, and e nothing
    assert.deepEqual(
      paretoFront(trials, [
        { metric: 'eval_loss', goal: 'min' },
        { metric: 'trainable_params', goal: 'max' },
      ]).map((x) => x.id),
      ['d'],
    );
  });

  it('best is the optimum of the first objective, in either direction', () => {
    assert.equal(bestTrial(trials, [{ metric: 'eval_loss', goal: 'min' }])!.id, 'd');
    assert.equal(bestTrial(trials, [{ metric: 'eval_loss', goal: 'max' }])!.id, 'e');
    // ties on the first objective go to the second
    assert.equal(
      bestTrial(trials, [
        { metric: 'trainable_params', goal: 'max' },
        { metric: 'eval_loss', goal: 'min' },
      ])!.id,
      'd',
    );
    assert.equal(
      bestTrial(
        [t('x', 1, 400), t('y', 0.5, 400)],
        [
          { metric: 'trainable_params', goal: 'min' },
          { metric: 'eval_loss', goal: 'min' },
        ],
      )!.id,
      'y',
    );
    assert.equal(bestTrial([], [{ metric: 'eval_loss', goal: 'min' }]), null);
  });
});
