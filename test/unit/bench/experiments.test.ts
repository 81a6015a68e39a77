/** The cascade and PortLLM bench experiments: their rules by hand and their rows on a tiny world. */
import assert from 'node:assert/strict';
import { existsSync, mkdirSync, rmSync } from 'node:fs';
import { join } from 'node:path';
import { after, describe, it } from 'node:test';
import type { ExperimentContext } from '../../../src/bench/experiment.ts';
import { experiment } from '../../../src/bench/experiment.ts';
import { bestQuantile, CASCADE_ROWS } from '../../../src/bench/experiments/cascade.ts';
import { relativeDrift } from '../../../src/bench/experiments/portllm.ts';
import { runMethodsBench } from '../../../src/bench/methods.ts';
import { writeSafetensors } from '../../../src/io/index.ts';
import { fromArray } from '../../../src/tensor/index.ts';
import type { Prediction } from '../../../src/uq/index.ts';
import { evaluateCascade, splitHeldOut } from '../../../src/uq/index.ts';
import { worldFinetuneFile } from '../../../src/world/demo.ts';
import { generateWorld, writeWorld } from '../../../src/world/index.ts';
import { tempDir, writeTinyModel } from '../../helpers/tiny-run.ts';

const root = tempDir('attune-bench-experiments-');
after(() => rmSync(root, { recursive: true, force: true }));

describe('cascade experiment', () => {
  it('picks the Chow-Quantile level that defers the right example first on the held-out half', () => {
    // e1: one very unsure token, small wrong / large right -> should be deferred first.
    // e2: many mildly unsure tokens (lowest sum), both right. e3: sure, small right / large wrong.
    const heldOut = [
      { logprobs: [-0.1, -3], smallQuality: 0, largeQuality: 1 },
      { logprobs: Array(7).fill(-0.5), smallQuality: 1, largeQuality: 1 },
      { logprobs: [-0.05], smallQuality: 1, largeQuality: 0 },
    ];
    // the minimum (quantile 0) ranks e1 lowest, the sum ranks e2 lowest; levels up to 0.8 tie
    // with the minimum and the lowest wins the tie
    assert.equal(bestQuantile(heldOut), 0);
    // here only levels >= 0.7 rank e1 first (e2's interpolated quantile passes -2 at 0.6012), and
    // 0.7 .. 0.9 also defer e2 before e3, which 1 does not
    const upper = [
      { logprobs: [-2, -2], smallQuality: 0, largeQuality: 1 },
      { logprobs: [-5, -0.01], smallQuality: 1, largeQuality: 1 },
      { logprobs: [-0.1], smallQuality: 1, largeQuality: 0 },
    ];
    assert.equal(bestQuantile(upper), 0.7);
  });

  it('scores every rule per seed on the test half and reuses the finished seeds', () => {
    const records = Array.from({ length: 12 }, (_, i) => ({ prompt: `q${i}`, answer: `a${i}` }));
    let predictions = 0;
    const pred = (i: number, correct: boolean, lp: number[]): Prediction => ({
      prompt: `q${i}`,
      reference: `a${i}`,
      // a wrong answer still overlaps the gold: ROUGE-L F of [a<i>, x] vs [a<i>] is 2/3
      answer: correct ? `a${i}` : `a${i} x`,
      correct,
      scores: {},
      confidence: 0.5,
      logprobs: lp,
      extra: {},
    });
    const work = join(root, 'cascade-work');
    mkdirSync(work, { recursive: true });
    const run = {
      runDir: '',
      modelDir: 'm',
      adapterDir: null,
      cost: { trainable_params: 1, adapter_bytes: 1, step_s: 0, peak_rss_mb: null },
    };
    const ctx = {
      seeds: [0, 1, 2],
      work,
      questions: { mixed: records, ood: [], paraphrase: [] },
      methodRun: () => ({ ...run, modelDir: 'small' }),
      train: () => ({ ...run, modelDir: 'large' }),
      worldBase: () => 'large-base',
      predict: (model: { modelDir: string }) => {
        predictions++;
        return records.map((_, i) =>
          model.modelDir === 'small'
            ? pred(i, i % 3 !== 0, [-(i % 4) - 0.1, -0.2])
            : pred(i, i % 2 === 0, [-0.1]),
        );
      },
      note: () => {},
    } as unknown as ExperimentContext;
    const rows = experiment('cascade').run(ctx);
    assert.deepEqual(
      rows.map((r) => r[0]!.method),
      CASCADE_ROWS.map((r) => `cascade(${r})`),
    );
    assert.equal(predictions, 6, 'two models x three seeds');
    // every row has one result per seed
    for (const r of rows)
      assert.deepEqual(
        r.map((s) => s.seed),
        [0, 1, 2],
      );
    // seed 1's Chow-Sum AUC-DF is evaluateCascade's on the same seeded split
    const examples = records.map((_, i) => ({
      logprobs: [-(i % 4) - 0.1, -0.2],
      smallQuality: i % 3 !== 0 ? 1 : 0,
      largeQuality: i % 2 === 0 ? 1 : 0,
    }));
    const { heldOut, test } = splitHeldOut(examples, 1);
    const report = evaluateCascade(heldOut, test, { seed: 1 });
    const at = (rule: string) => CASCADE_ROWS.indexOf(rule as (typeof CASCADE_ROWS)[number]);
    assert.equal(rows[at('chow_sum')]![1]!.extra!.auc_df, report.methods.chow_sum!.auc_df);
    assert.equal(rows[at('random')]![1]!.extra!.auc_df, report.random_auc_df);
    assert.equal(rows[at('oracle')]![1]!.extra!.auc_df, report.oracle_auc_df);
    const diff = evaluateCascade(heldOut, test, { seed: 1, target: 'diff' });
    assert.equal(rows[at('post_hoc_mlp_diff')]![1]!.extra!.auc_df, diff.methods.post_hoc_mlp!.auc_df);
    // graded quality: a wrong answer has quality 2/3, a right one 1
    const graded = examples.map((e) => ({
      ...e,
      smallQuality: e.smallQuality === 1 ? 1 : 2 / 3,
      largeQuality: e.largeQuality === 1 ? 1 : 2 / 3,
    }));
    const g = splitHeldOut(graded, 1);
    const gReport = evaluateCascade(g.heldOut, g.test, { seed: 1 });
    const chowSum = rows[at('chow_sum')]![1]!.extra!;
    assert.ok(Math.abs(chowSum.auc_df_rougeL! - gReport.methods.chow_sum!.auc_df) < 1e-12);
    assert.ok(Math.abs(chowSum.small_rougeL! - gReport.small_accuracy) < 1e-12);
    assert.notEqual(chowSum.auc_df_rougeL, chowSum.auc_df);
    const again = experiment('cascade').run(ctx);
    assert.deepEqual(again, rows);
    assert.equal(predictions, 6, 'finished seeds are reused');
  });
});

describe('PortLLM experiment', () => {
  it('relative drift is ||W1 - W0|| / ||W0|| over the matrices only', () => {
    const a = join(root, 'drift-a');
    const b = join(root, 'drift-b');
    mkdirSync(a, { recursive: true });
    mkdirSync(b, { recursive: true });
    const t = (v: number[], shape: number[]) => fromArray(v, shape, { track: false });
    writeSafetensors(join(a, 'model.safetensors'), { w: t([1, 2, 3, 4], [2, 2]), n: t([1, 1], [2]) });
    writeSafetensors(join(b, 'model.safetensors'), { w: t([1, 2, 3, 5], [2, 2]), n: t([9, 9], [2]) });
    assert.ok(Math.abs(relativeDrift(a, b) - 1 / Math.sqrt(30)) < 1e-12);
  });

  it("ports each seed's lora + ce adapter to the evolved base and rows it next to LoRA on the evolved base", () => {
    const worldDir = join(root, 'world');
    writeWorld(
      generateWorld({ seed: 6, knownPeople: 4, taughtPeople: 4, unknownPeople: 4, biographiesPerPerson: 1 }),
      worldDir,
    );
    const base = writeTinyModel(join(root, 'base'), { hidden: 16, layers: 1 });
    const out = join(root, 'out');
    const result = runMethodsBench({
      base,
      worldDir,
      trainFile: worldFinetuneFile(worldDir),
      out,
      specs: [{ method: 'lora', loss: 'ce' }],
      seeds: [0, 1],
      budget: {
        steps: 2,
        batchSize: 2,
        lr: 1e-2,
        fullLr: 1e-3,
        warmupSteps: 0,
        maxLength: 64,
        evalPerSplit: 2,
      },
      experiments: ['portllm'],
    });
    assert.deepEqual(
      result.results.map((r) => [r.method, r.seeds]),
      [
        ['lora', 2],
        ['compeft(lora)', 2],
        ['evolved_base', 2],
        ['port(lora)', 2],
        ['lora(evolved)', 2],
      ],
    );
    const port = result.results[3]!;
    assert.ok((port.extra?.drift?.mean ?? 0) > 0, 'the evolved base differs from the base');
    assert.equal(port.trainable_params, result.results[0]!.trainable_params, "the patch is the lora row's");
    assert.ok(
      result.headlines.some((h) => h.paper.startsWith('PortLLM') && h.treatment.method === 'port(lora)'),
    );
    const folder = join(out, 'experiments');
    assert.ok(existsSync(folder));
  });
});
