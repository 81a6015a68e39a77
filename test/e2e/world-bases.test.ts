// The shipped world bases, checked end to end: each answers the known-fact questions of its world
// as base.json records (re-evaluated here, greedy exact match), and the large base's recipe
// reproduces its first steps (the unit tests check the small one's on both backends).
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, describe, it } from 'node:test';
import { backendInfo } from '../../src/backend/index.ts';
import {
  firstStepLosses,
  kernelPath,
  knownAccuracy,
  resolveWorldBase,
  WORLD_BASE_RECIPES,
  WORLD_BASE_SIZES,
} from '../../src/world/base.ts';
import { writeWorld } from '../../src/world/write.ts';

const work = mkdtempSync(join(tmpdir(), 'attune-world-bases-e2e-'));
after(() => rmSync(work, { recursive: true, force: true }));

describe('the shipped world bases', () => {
  for (const size of WORLD_BASE_SIZES) {
    it(`${size}: answers at least 90% of its known facts, exactly as base.json records`, () => {
      const base = resolveWorldBase(size);
      const worldDir = join(work, `world-${size}`);
      writeWorld(base.world, worldDir);
      const measured = knownAccuracy(base.dir, worldDir);
      assert.equal(measured.questions, base.manifest.known_questions);
      assert.equal(measured.accuracy, base.manifest.known_accuracy);
      assert.ok(measured.accuracy >= 0.9, `${size}: ${measured.accuracy}`);
    });
  }

  it("large: the recipe's first steps reproduce the recorded losses", (t) => {
    const { manifest } = resolveWorldBase('large');
    const active = backendInfo().active;
    const recorded = manifest.first_steps.find((f) => f.backend === active)!;
    const steps = Math.min(recorded.losses.length, 3);
    const losses = firstStepLosses(WORLD_BASE_RECIPES.large, join(work, 'large-first'), steps);
    if (recorded.kernels === kernelPath(active)) {
      assert.deepEqual(losses, recorded.losses.slice(0, steps));
      return;
    }
    t.diagnostic(
      `kernels here are ${kernelPath(active)}, the base was built on ${recorded.kernels}: compared to 1e-5`,
    );
    for (const [i, l] of losses.entries())
      assert.ok(Math.abs(l - recorded.losses[i]!) < 1e-5 * Math.abs(l), `step ${i + 1}`);
  });
});
