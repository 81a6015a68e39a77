import assert from 'node:assert/strict';
import { copyFileSync, rmSync, writeFileSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { after, describe, it } from 'node:test';
import { parse as parseYaml } from 'yaml';
import { loadSweepConfig, validateSweep } from '../../../src/sweep/config.ts';
import { randomPoints, trialsOf } from '../../../src/sweep/space.ts';
import { loadBaseConfig, trialConfig } from '../../../src/sweep/trial.ts';
import { FACTS, tempDir, writeJsonl } from '../../helpers/tiny-run.ts';

const root = tempDir('attune-autopeft-');
after(() => rmSync(root, { recursive: true, force: true }));
const fixture = resolve(import.meta.dirname, '../../fixtures/autopeft/sweep.yaml');

describe('the AutoPEFT example sweep', () => {
  it('searches layers, ranks, rank patterns, modules and DoRA on the small world base; every draw is a valid config', () => {
    copyFileSync(fixture, join(root, 'sweep.yaml'));
    writeJsonl(join(root, 'train.jsonl'), FACTS);
    writeJsonl(join(root, 'eval.jsonl'), FACTS.slice(0, 2));
    writeFileSync(
      join(root, 'train.yaml'),
      `model: ${resolve(import.meta.dirname, '../../../world-bases/small')}
data: { train: train.jsonl, eval: eval.jsonl, max_length: 48 }
method: { name: lora, r: 4, lora_alpha: 8, target_modules: [q_proj, v_proj] }
train: { steps: 40, batch_size: 8, lr: 3.0e-3 }
`,
    );
    const sweep = loadSweepConfig(join(root, 'sweep.yaml'));
    assert.equal(sweep.search.kind, 'bayes');
    assert.deepEqual(
      sweep.objectives.map((o) => o.metric),
      ['eval_loss', 'trainable_params'],
    );
    assert.deepEqual(sweep.evalWorld, [join(root, 'world-eval.jsonl')]);
    const base = loadBaseConfig(sweep.base);
    const space = sweep.search.kind === 'bayes' ? sweep.search.space : {};
    for (const t of trialsOf(randomPoints(space, 40, 1), null)) {
      const config = trialConfig(base, t, sweep.out, sweep.path);
      const method = config.method as Record<string, unknown>;
      assert.deepEqual(method.layers_to_transform, t.params['method.layers_to_transform']);
      assert.deepEqual(method.rank_pattern ?? {}, t.params['method.rank_pattern']);
      assert.equal(method.use_dora, t.params['method.use_dora']);
    }
  });

  it('accuracy objectives need a world eval file', () => {
    const raw = parseYaml(
      `base: b.yaml\nsearch: { bayes: { trials: 3, space: { method.r: [2, 4] } } }\nobjective: { metric: accuracy_taught, goal: max }\nout: o\n`,
    );
    assert.throws(
      () => validateSweep(raw, 'S.yaml', root),
      /objective\.metric 'accuracy_taught': expected one of eval_loss, final_loss, trainable_params \(accuracy, retention, ece, brier, wrong_auroc_<score> and ood_auroc_<score> need eval_world/,
    );
    const ok = validateSweep({ ...raw, eval_world: 'w.jsonl' }, 'S.yaml', root);
    assert.equal(ok.objectives[0]!.metric, 'accuracy_taught');
  });
});
