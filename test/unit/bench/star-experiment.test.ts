/** The `star` bench experiment's label budgets, and the row cache tag that keeps other budgets' rows apart. */
import assert from 'node:assert/strict';
import { existsSync, rmSync } from 'node:fs';
import { join } from 'node:path';
import { after, describe, it } from 'node:test';
import { roundSteps, starBudget } from '../../../src/bench/experiments/star.ts';
import { experimentContext, questionsOf } from '../../../src/bench/methods.ts';
import { resolveWorldBase } from '../../../src/world/base.ts';
import { generateWorld, renderQuestionPool, writeWorld } from '../../../src/world/index.ts';
import { tinyBenchOptions } from '../../helpers/tiny-bench.ts';
import { tempDir, writeTinyModel } from '../../helpers/tiny-run.ts';

const root = tempDir('attune-star-experiment-');
after(() => rmSync(root, { recursive: true, force: true }));

describe('star experiment', () => {
  it("fits both budgets in the shipped world bases' question pools", () => {
    for (const size of ['small', 'large']) {
      const pool = renderQuestionPool(resolveWorldBase(size).world, { seed: 0 }).length;
      for (const quick of [true, false]) {
        const b = starBudget(quick);
        const labels = b.seed_labels + b.rounds * b.per_round;
        assert.ok(labels <= pool, `${size} (quick ${quick}): ${labels} labels of a ${pool}-question pool`);
        assert.ok(b.rounds >= 2, 'a learning curve needs at least three points');
      }
    }
  });

  it('trains a fixed number of passes over the labels of a round', () => {
    assert.equal(roundSteps(60, 80, 32), 150);
    assert.equal(roundSteps(20, 80, 32), 50);
    assert.equal(roundSteps(1, 80, 32), 3, 'a partial batch is a step');
    assert.ok(roundSteps(40, 80, 32) === 2 * roundSteps(20, 80, 32), 'twice the labels, twice the steps');
  });

  it('keeps rows evaluated under another cache tag apart', () => {
    const worldDir = join(root, 'world');
    writeWorld(
      generateWorld({ seed: 3, knownPeople: 2, taughtPeople: 2, unknownPeople: 2, biographiesPerPerson: 1 }),
      worldDir,
    );
    const base = writeTinyModel(join(root, 'base'), { hidden: 16, layers: 1 });
    const o = tinyBenchOptions(base, worldDir, root, 'out');
    const ctx = experimentContext(o, 'star', questionsOf(worldDir, 2), 'k');
    const cost = { trainable_params: 0, adapter_bytes: 0, step_s: 0, peak_rss_mb: null };
    const row = { method: 'lora-active-random', loss: 'ce' };
    const model = { modelDir: base, adapterDir: null };
    const a = ctx.evaluate(row, 0, model, cost, () => ({ labels: 1 }), 'b1-2x3');
    const b = ctx.evaluate(row, 0, model, cost, () => ({ labels: 2 }), 'b4-5x6');
    assert.equal(a.extra?.labels, 1);
    assert.equal(b.extra?.labels, 2, 'another tag is evaluated anew, not read back');
    assert.equal(ctx.evaluate(row, 0, model, cost, () => ({ labels: 3 }), 'b1-2x3').extra?.labels, 1);
    assert.ok(existsSync(join(ctx.work, 'rows', 'lora-active-random-ce-b1-2x3-seed0', 'result.json')));
  });
});
