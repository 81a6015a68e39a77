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
