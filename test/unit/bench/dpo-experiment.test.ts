import assert from 'node:assert/strict';
import { rmSync } from 'node:fs';
import { join } from 'node:path';
import { after, describe, it } from 'node:test';
import { runMethodsBench } from '../../../src/bench/methods.ts';
import { worldFinetuneFile } from '../../../src/world/demo.ts';
import { generateWorld, writeWorld } from '../../../src/world/index.ts';
import { tempDir, writeTinyModel } from '../../helpers/tiny-run.ts';

const root = tempDir('attune-bench-dpo-');
after(() => rmSync(root, { recursive: true, force: true }));

describe('bench experiment dpo', () => {
  it('adds the dpo and ce rows on the abstention pairs with abstention rates and headlines', () => {
    const worldDir = join(root, 'world');
    writeWorld(
      generateWorld({ seed: 2, knownPeople: 4, taughtPeople: 4, unknownPeople: 4, biographiesPerPerson: 1 }),
      worldDir,
    );
    const result = runMethodsBench({
      base: writeTinyModel(join(root, 'base'), { hidden: 16, layers: 1 }),
      worldDir,
      trainFile: worldFinetuneFile(worldDir),
      out: join(root, 'out'),
      specs: [{ method: 'lora', loss: 'ce' }],
      seeds: [0],
      budget: {
        steps: 2,
        batchSize: 4,
        lr: 1e-2,
        fullLr: 1e-3,
        warmupSteps: 0,
        maxLength: 64,
        evalPerSplit: 2,
      },
      experiments: ['dpo'],
    });
    for (const loss of ['dpo', 'ce', 'dpo(nll_weight=1)']) {
      const row = result.results.find((r) => r.method === 'lora-abstain' && r.loss === loss)!;
      assert.ok(row, loss);
      assert.equal(row.seeds, 1);
      for (const name of ['abstain_unknown', 'abstain_unknown_trained', 'false_abstain']) {
        const v = row.extra?.[name];
        assert.ok(v && v.n === 1 && v.mean !== null && v.mean >= 0 && v.mean <= 1, `${loss} ${name}`);
      }
    }
    const claims = result.headlines.filter((h) => h.treatment.method === 'lora-abstain');
    assert.deepEqual(
      claims.map((h) => h.metric),
      ['extra.abstain_unknown', 'extra.abstain_unknown', 'extra.false_abstain', 'retention'],
    );
  });
});
