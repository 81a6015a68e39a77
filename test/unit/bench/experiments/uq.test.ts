/** The `uq` bench experiment on a tiny world: its rows, their measurements, the reuse of the lora + ce runs. */
import assert from 'node:assert/strict';
import { readdirSync, rmSync } from 'node:fs';
import { join } from 'node:path';
import { after, it } from 'node:test';
import { runMethodsBench } from '../../../../src/bench/methods.ts';
import { extraPassScores, HEAD_KINDS, samplingScores } from '../../../../src/uq/index.ts';
import { worldFinetuneFile } from '../../../../src/world/demo.ts';
import { generateWorld, writeWorld } from '../../../../src/world/index.ts';
import { tempDir, writeTinyModel } from '../../../helpers/tiny-run.ts';

const root = tempDir('attune-bench-uq-');
after(() => rmSync(root, { recursive: true, force: true }));

it('reports every score, each calibrator and both conformal guarantees, on the lora + ce runs', () => {
  const worldDir = join(root, 'world');
  writeWorld(
    generateWorld({ seed: 5, knownPeople: 4, taughtPeople: 4, unknownPeople: 4, biographiesPerPerson: 1 }),
    worldDir,
  );
  const out = join(root, 'out');
  const result = runMethodsBench({
    base: writeTinyModel(join(root, 'base'), { hidden: 16, layers: 1 }),
    worldDir,
    trainFile: worldFinetuneFile(worldDir),
    out,
    specs: [{ method: 'lora', loss: 'ce' }],
    seeds: [0],
    budget: {
      steps: 2,
      batchSize: 2,
      lr: 1e-2,
      fullLr: 1e-3,
      warmupSteps: 0,
      maxLength: 64,
      evalPerSplit: 4,
    },
    experiments: ['uq'],
  });
  const lora = result.results.find((r) => r.method === 'lora' && r.loss === 'ce')!;
  const rows = result.results.filter((r) => r.method.startsWith('uq-'));
  const scoreRows = rows.filter((r) => r.method === 'uq-score').map((r) => r.loss);
  for (const name of ['msp', ...extraPassScores().map((s) => s.name)])
    assert.ok(scoreRows.includes(name), name);
  // the learned heads were fitted (on the held-out paraphrases) and scored: one row per head score
  assert.equal(HEAD_KINDS.length, 3);
  for (const name of ['evidential_vacuity', 'deup', 'bayescap']) assert.ok(scoreRows.includes(name), name);
  // every sampling score, and the clustered ones again with answers grouped by ROUGE-L
  const sampling = samplingScores().map((s) => s.name);
  const clustered = samplingScores()
    .filter((s) => s.clustered)
    .map((s) => `${s.name}@rougeL`);
  assert.deepEqual(clustered, ['semantic_entropy@rougeL', 'num_semantic_sets@rougeL']);
  for (const name of [...sampling, ...clustered]) assert.ok(scoreRows.includes(name), name);
  for (const r of rows.filter((x) => x.method === 'uq-score')) {
    const e = r.extra!;
    assert.ok('prr' in e && 'auroc' in e && 'missing' in e, `${r.loss}: prr, auroc, missing`);
    const auroc = e.auroc!.mean;
    if (auroc !== null) assert.ok(auroc >= 0 && auroc <= 1, `${r.loss} auroc ${auroc}`);
    // every question was sampled and every head scored every answer: only a verbalised confidence
    // (a number the model states) can be missing
    if (r.loss !== 'verbalized') assert.equal(e.missing!.mean, 0, r.loss);
  }
  assert.deepEqual(
    rows.filter((r) => r.method === 'uq-calibrator').map((r) => r.loss),
    ['none', 'temperature', 'platt', 'isotonic'],
  );
  const marginal = rows.find((r) => r.method === 'uq-conformal' && r.loss === 'marginal')!;
  assert.equal(marginal.extra?.alpha?.mean, 0.1);
  assert.equal(marginal.seeds, 1);
  for (const r of rows) {
    // the rows are the lora + ce runs measured again: same accuracy, no training of their own
    assert.deepEqual(r.taught_accuracy, lora.taught_accuracy);
    assert.equal(r.extra?.n?.mean, 12);
  }
  const none = rows.find((r) => r.method === 'uq-calibrator' && r.loss === 'none')!;
  assert.ok(none.extra!.ece!.mean! >= 0 && none.extra!.ece!.mean! <= 1);
  assert.ok(result.headlines.some((h) => h.treatment.method === 'uq-score' && h.treatment.loss === 'rauq'));
  const work = readdirSync(join(out, 'experiments')).find((d) => d.startsWith('uq-'))!;
  // the method rows' adapters were reused: the experiment trained nothing itself
  assert.ok(!readdirSync(join(out, 'experiments', work)).includes('runs'));
  assert.deepEqual(
    readdirSync(join(out, 'experiments', work))
      .filter((f) => f.startsWith('measure-'))
      .sort(),
    ['measure-seed0.json'],
  );
});
