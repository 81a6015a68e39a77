/** docs/extending.md's promise: a method registered from outside src/ is usable from YAML. */
import assert from 'node:assert/strict';
import { readFileSync, rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { after, describe, it } from 'node:test';
import '../../plugins/norms-tuner.ts';
import '../../plugins/scaled-ce-loss.ts';
import { loadTrainConfig } from '../../../src/train/config.ts';
import { renderConfigDocs } from '../../../src/train/config-docs.ts';
import { train } from '../../../src/train/trainer.ts';
import { FACTS, tempDir, writeJsonl, writeTinyModel } from '../../helpers/tiny-run.ts';

const root = tempDir('attune-extending-');
after(() => rmSync(root, { recursive: true, force: true }));
writeTinyModel(join(root, 'model'), { hidden: 32 });
writeJsonl(join(root, 'train.jsonl'), FACTS);

describe('plug-in methods (docs/extending.md)', () => {
  it('a tuner and a loss registered outside src/ train from YAML with their own options', () => {
    const path = join(root, 'plugin.yaml');
    writeFileSync(
      path,
      `model: model
data: {train: train.jsonl}
method: {name: norms-only, include_final: false}
loss: {name: scaled-ce, scale: 2}
train: {steps: 3, lr: 1.0e-2}
output_dir: run
`,
    );
    const config = loadTrainConfig(path);
    assert.deepEqual(config.method, { name: 'norms-only', include_final: false });
    const result = train(config);
    const names = result.adapter.namedTrainableParameters().map(([n]) => n);
    assert.ok(names.length > 0 && names.every((n) => n.includes('layers.') && n.endsWith('norm.weight')));
    const first = JSON.parse(readFileSync(join(root, 'run', 'metrics.jsonl'), 'utf8').split('\n')[0]!);
    assert.ok(Math.abs(first.loss - 2 * first.nll) < 1e-5, `loss ${first.loss} = 2 x nll ${first.nll}`);
    assert.throws(
      () => loadTrainConfig(path, ['loss.scale=-1', 'method.include_fnal=true']),
      (e: Error) => /loss 'scaled-ce'/.test(e.message) && /did you mean 'include_final'/.test(e.message),
    );
  });

  it('the generated config reference lists plug-ins with their options', () => {
    const docs = renderConfigDocs();
    assert.match(docs, /### `method: norms-only`/);
    assert.match(docs, /\| `include_final` \| boolean \| `true` \| also train the final norm \|/);
    assert.match(docs, /### `loss: scaled-ce`/);
  });
});

describe('plug-in uncertainty scores, metrics and graders (docs/extending.md)', () => {
  it('a registered score, metric and grader are reported with the built-ins', async () => {
    const uq = await import('../../../src/uq/index.ts');
    uq.registerUqScore({
      name: 'max_neg_logprob',
      description: '-min_t l_t',
      compute: (t) => -Math.min(...t.logprobs),
    });
    uq.registerUqMetric({
      name: 'error_rate',
      description: 'fraction of wrong answers',
      needs: 'ranking',
      better: 'lower',
      compute: (i) => ({ value: i.correct.reduce((s, c) => s + 1 - c, 0) / i.correct.length }),
    });
    uq.registerGrader({
      name: 'prefix',
      description: 'the answer starts with the reference',
      isCorrect: (a, r) => a.trim().startsWith(r.trim()),
    });
    const scores = uq.sequenceScores({
      logprobs: [-0.5, -2],
      entropies: [1, 1],
      top1: [-0.1, -0.2],
      top2: [-3, -3],
    });
    assert.equal(scores.max_neg_logprob, 2);
    assert.equal(scores.msp, 2.5, 'built-ins still there');
    const m = uq.predictionMetrics({ correct: [1, 0, 0, 1], uncertainty: [0.1, 0.9, 0.8, 0.2] });
    assert.equal(m.values.error_rate, 0.5);
    assert.equal(m.auroc, 1);
    assert.ok(uq.predictionMetricNames().includes('error_rate'));
    assert.equal(uq.grade('Oslo, Norway', 'Oslo', 'prefix'), true);
    assert.throws(() => uq.grade('x', 'y', 'prefx'), /unknown grader 'prefx' .*did you mean 'prefix'/);
  });
});
