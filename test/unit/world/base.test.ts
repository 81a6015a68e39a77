// World bases: building one from a recipe (a tiny one here), its manifest and integrity hashes,
// the bit-for-bit reproducibility of a recipe's first steps, and the shipped bases themselves.
import assert from 'node:assert/strict';
import { cpSync, existsSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, describe, it } from 'node:test';
import { backendInfo } from '../../../src/backend/index.ts';
import {
  buildWorldBase,
  FIRST_STEPS,
  firstStepLosses,
  kernelPath,
  openWorldBase,
  resolveWorldBase,
  sha256File,
  shippedWorldBaseDir,
  WORLD_BASE_FILES,
  WORLD_BASE_RECIPES,
  WORLD_BASE_SIZES,
  type WorldBaseRecipe,
} from '../../../src/world/base.ts';

const work = mkdtempSync(join(tmpdir(), 'attune-world-base-'));
after(() => rmSync(work, { recursive: true, force: true }));

const TINY: WorldBaseRecipe = {
  version: 1,
  size: 'small',
  world: {
    seed: 2,
    knownPeople: 4,
    taughtPeople: 2,
    unknownPeople: 2,
    cities: 4,
    countries: 2,
    biographiesPerPerson: 1,
    finetuneBiographies: 0,
    oodQuestions: 4,
  },
  model: { hiddenSize: 16, intermediateSize: 32, numLayers: 1, numHeads: 2, numKvHeads: 1 },
  pretrain: {
    steps: 5,
    batchSize: 2,
    lr: 1e-2,
    maxLength: 64,
    warmupSteps: 2,
    minLrRatio: 0.1,
    weightDecay: 0.01,
    seed: 1,
  },
};

describe('buildWorldBase (a tiny recipe)', () => {
  const out = join(work, 'tiny');
  const manifest = buildWorldBase(TINY, out);
  const active = backendInfo().active;

  it('writes a loadable model folder with base.json: recipe, hashes, accuracy, curve', () => {
    for (const f of [...WORLD_BASE_FILES, 'base.json']) assert.ok(existsSync(join(out, f)), f);
    const onDisk = JSON.parse(readFileSync(join(out, 'base.json'), 'utf8'));
    assert.deepEqual(onDisk, JSON.parse(JSON.stringify(manifest)));
    assert.deepEqual(manifest.recipe, TINY);
    for (const f of WORLD_BASE_FILES) assert.equal(manifest.sha256[f], sha256File(join(out, f)));
    assert.equal(manifest.known_questions, 4 * 7);
    assert.ok(manifest.known_accuracy >= 0 && manifest.known_accuracy <= 1);
    assert.deepEqual(manifest.loss_curve.at(-1)![0], 5);
    assert.ok(!existsSync(`${out}.tmp-${process.pid}`), 'the temporary folder is gone');
  });

  it("records the first steps on the active backend, equal to the run's own losses", () => {
    const mine = manifest.first_steps.find((f) => f.backend === active)!;
    assert.equal(mine.losses.length, FIRST_STEPS[active]);
    assert.deepEqual(
      mine.losses,
      manifest.loss_curve.slice(0, mine.losses.length).map(([, l]) => l),
    );
    if (backendInfo().nativeLoaded) assert.equal(manifest.first_steps.length, 2, 'both backends recorded');
  });

  it('reproduces those first steps bit for bit in a fresh run', () => {
    const mine = manifest.first_steps.find((f) => f.backend === active)!;
    assert.deepEqual(firstStepLosses(TINY, join(work, 'again'), mine.losses.length), mine.losses);
  });

  it('refuses an --out that exists, before any work', () => {
    assert.throws(() => buildWorldBase(TINY, out), /already exists/);
  });

  it('openWorldBase checks every hashed file and names the one that changed', () => {
    const copy = join(work, 'tampered');
    cpSync(out, copy, { recursive: true });
    assert.equal(openWorldBase(copy).manifest.recipe.world.seed, 2);
    const config = join(copy, 'config.json');
    writeFileSync(config, readFileSync(config, 'utf8').replace('"hidden_size": 16', '"hidden_size": 17'));
    assert.throws(
      () => openWorldBase(copy),
      (e: Error) => e.message.includes('config.json') && /sha256/.test(e.message),
    );
    cpSync(join(out, 'config.json'), config);
    rmSync(join(copy, 'tokenizer.json'));
    assert.throws(() => openWorldBase(copy), /tokenizer\.json.*missing/);
    assert.throws(() => openWorldBase(work), /not a world base/);
  });
});

describe('the shipped world bases', () => {
  for (const size of WORLD_BASE_SIZES) {
    const dir = shippedWorldBaseDir(size);
    it(`${size}: present, intact, built from today's recipe, and knows >= 90% of its known facts`, () => {
      assert.ok(existsSync(join(dir, 'base.json')), `${dir}/base.json is missing`);
      const { manifest } = resolveWorldBase(size);
      assert.deepEqual(
        manifest.recipe,
        WORLD_BASE_RECIPES[size],
        'rebuild the base after changing its recipe',
      );
      assert.ok(manifest.known_accuracy >= 0.9, `known-fact accuracy ${manifest.known_accuracy}`);
      assert.ok(manifest.known_questions >= 300);
    });
  }

  // The js backend's arithmetic is the same on every CPU, so its first steps must match bit for bit
  // anywhere; the native kernels' rounding depends on their SIMD path, so they match bit for bit on
  // the path the base was built with and to float32 accuracy on another (which is printed).
  it("small: the recipe's first steps reproduce the recorded losses bit for bit", (t) => {
    const { manifest } = resolveWorldBase('small');
    const active = backendInfo().active;
    const recorded = manifest.first_steps.find((f) => f.backend === active);
    assert.ok(recorded, `base.json has no first steps for the ${active} backend`);
    const losses = firstStepLosses(
      WORLD_BASE_RECIPES.small,
      join(work, 'small-first'),
      recorded.losses.length,
    );
    if (recorded.kernels === kernelPath(active)) {
      assert.deepEqual(losses, recorded.losses);
      return;
    }
    t.diagnostic(
      `native kernels here are ${kernelPath(active)}, the base was built on ${recorded.kernels}: compared to 1e-5, not bit for bit`,
    );
    for (const [i, l] of losses.entries())
      assert.ok(Math.abs(l - recorded.losses[i]!) < 1e-5 * Math.abs(l), `step ${i + 1}: ${l}`);
  });
});
