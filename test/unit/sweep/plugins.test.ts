// A method registered only in a plug-in module (test/plugins/norms-tuner.ts, as docs/extending.md
// shows) runs in a sweep's trial processes when the sweep imports it (`imports: [...]`), and is
// unknown there when it does not; the CLI's --import names a file that is not there.
import './one-thread.ts';
import assert from 'node:assert/strict';
import { rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { after, describe, it } from 'node:test';
import { fileURLToPath } from 'node:url';
import { loadSweepConfig, loadSweepFile } from '../../../src/sweep/config.ts';
import { runSweep } from '../../../src/sweep/sweep.ts';
import { readTrialResult } from '../../../src/sweep/trial.ts';
import { FACTS, tempDir, writeJsonl, writeTinyModel } from '../../helpers/tiny-run.ts';
import { attune } from '../cli/commands/helpers.ts';

const root = tempDir('attune-sweep-plugins-');
after(() => rmSync(root, { recursive: true, force: true }));
writeTinyModel(join(root, 'model'));
writeJsonl(join(root, 'train.jsonl'), FACTS);
writeJsonl(join(root, 'eval.jsonl'), FACTS.slice(0, 2));
writeFileSync(
  join(root, 'train.yaml'),
  `model: model
data: { train: train.jsonl, eval: eval.jsonl, max_length: 32 }
method: { name: norms-only }
train: { steps: 2, batch_size: 2, lr: 1.0e-2 }
output_dir: ignored
`,
);
const plugin = fileURLToPath(new URL('../../plugins/norms-tuner.ts', import.meta.url));

/** A sweep of two norms-only trials into `out`, importing `imports`. */
function sweep(name: string, imports: string[]) {
  const path = join(root, `${name}.yaml`);
  writeFileSync(
    path,
    `base: train.yaml
search: { grid: { method.include_final: [false, true] } }
objective: { metric: eval_loss }
executor: { name: local, workers: 2 }
out: ${name}
imports: ${JSON.stringify(imports)}
`,
  );
  return loadSweepConfig(path);
}

describe('sweep plug-ins', () => {
  it('a trial process runs a method registered only in a plug-in module the sweep imports', async () => {
    // this process does not know the method yet: every trial config is refused before anything runs
    await assert.rejects(runSweep(sweep('unknown', [])), /norms-only/);
    const result = await runSweep(sweep('imported', [plugin]));
    assert.deepEqual(
      result.trials.map((t) => [t.params['method.include_final'], t.status, t.error]),
      [
        [false, 'done', undefined],
        [true, 'done', undefined],
      ],
    );
    const [layers, withFinal] = result.trials.map((t) => t.metrics!);
    // the tiny model's norms: two per layer, one final
    assert.ok(layers!.trainable_params > 0 && withFinal!.trainable_params > layers!.trainable_params);
    assert.ok(
      Number.isFinite(readTrialResult(join(root, 'imported'), result.trials[0]!.id).metrics.eval_loss),
    );
    // this process knows it now (the sweep imported it), its trial processes do not unless told
    const without = await runSweep(sweep('not-imported', []));
    for (const t of without.trials) {
      assert.equal(t.status, 'failed');
      assert.match(t.error!, /unknown fine-tuning method 'norms-only'/);
    }
  });

  it("an objective may name a plug-in's score: the sweep file is validated after its imports load", async () => {
    const uq = fileURLToPath(new URL('../../../src/uq/index.ts', import.meta.url));
    writeFileSync(
      join(root, 'score-plugin.mts'),
      `import { registerUqScore } from ${JSON.stringify(uq)};
registerUqScore({ name: 'answer_tokens', description: 'answer length in tokens', compute: (t) => t.logprobs.length });
`,
    );
    const path = join(root, 'score.yaml');
    writeFileSync(
      path,
      `base: train.yaml
search: { grid: { method.include_final: [false, true] } }
objective: { metric: wrong_auroc_answer_tokens, goal: max }
eval_world: eval.jsonl
out: score
imports: [${JSON.stringify(plugin)}, score-plugin.mts]
`,
    );
    assert.throws(
      () => loadSweepConfig(path),
      /score\.yaml: objective\.metric 'wrong_auroc_answer_tokens': expected one of eval_loss, .*wrong_auroc_mean_entropy/,
    );
    const sweep = await loadSweepFile(path);
    assert.deepEqual(sweep.objectives, [{ metric: 'wrong_auroc_answer_tokens', goal: 'max' }]);
    assert.equal(sweep.imports.length, 2);
  });

  it('a plug-in that is not there is refused by the sweep file and by --import, naming it', async () => {
    assert.throws(
      () => sweep('missing', ['plugins/nope.ts']),
      /missing\.yaml: imports: 'plugins\/nope\.ts': expected a plug-in module file \(.*\), found no file at .*plugins\/nope\.ts/,
    );
    const train = await attune(['train', join(root, 'train.yaml'), '--import', join(root, 'nope.ts')]);
    assert.equal(train.status, 1);
    assert.match(train.stderr, /error: --import: '.*nope\.ts': expected a plug-in module file/);
    const worker = await attune([
      'worker',
      '--queue',
      'redis://127.0.0.1:1',
      '--import',
      join(root, 'nope.ts'),
    ]);
    assert.equal(worker.status, 1);
    assert.match(worker.stderr, /error: --import: '.*nope\.ts': expected a plug-in module file/);
  });
});
