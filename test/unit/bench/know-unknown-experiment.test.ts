import assert from 'node:assert/strict';
import { existsSync, readdirSync, readFileSync, rmSync } from 'node:fs';
import { join } from 'node:path';
import { after, describe, it } from 'node:test';
import { runMethodsBench } from '../../../src/bench/methods.ts';
import { worldFinetuneFile } from '../../../src/world/demo.ts';
import { generateWorld, writeWorld } from '../../../src/world/index.ts';
import { tempDir, writeTinyModel } from '../../helpers/tiny-run.ts';

const root = tempDir('attune-bench-ku-');
after(() => rmSync(root, { recursive: true, force: true }));

/** Every path under `dir` (relative), depth first. */
function walk(dir: string, prefix = ''): string[] {
  return readdirSync(dir, { withFileTypes: true }).flatMap((e) =>
    e.isDirectory()
      ? [`${prefix}${e.name}/`, ...walk(join(dir, e.name), `${prefix}${e.name}/`)]
      : [`${prefix}${e.name}`],
  );
}

describe('bench experiment know_unknown', () => {
  it('trains stage 2 on the merged stage-1 model and reports abstention rows and headlines', () => {
    const worldDir = join(root, 'world');
    writeWorld(
      generateWorld({ seed: 2, knownPeople: 4, taughtPeople: 4, unknownPeople: 4, biographiesPerPerson: 1 }),
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
        batchSize: 4,
        lr: 1e-2,
        fullLr: 1e-3,
        warmupSteps: 0,
        maxLength: 192,
        evalPerSplit: 2,
      },
      experiments: ['know_unknown'],
    });
    for (const loss of ['ce-two-stage', 'ce-mixed']) {
      const row = result.results.find((r) => r.method === 'lora-know-unknown' && r.loss === loss)!;
      assert.ok(row, loss);
      assert.equal(row.seeds, 1);
      for (const name of ['abstain_unknown', 'false_abstain']) {
        const v = row.extra?.[name];
        assert.ok(v && v.n === 1 && v.mean !== null && v.mean >= 0 && v.mean <= 1, `${loss} ${name}`);
      }
    }
    const claims = result.headlines.filter((h) => h.treatment.method === 'lora-know-unknown');
    assert.deepEqual(
      claims.map((h) => h.metric),
      ['extra.abstain_unknown', 'taught_accuracy', 'extra.false_abstain'],
    );
    // the merged stage-1 model exists, and the stage-2 run's config trains on it
    const paths = walk(out);
    const merged = paths.find((p) => p.endsWith('stage1-merged-seed0/config.json'));
    assert.ok(merged, 'merged stage-1 model');
    const mergedDir = join(out, merged.replace(/\/config\.json$/, ''));
    assert.ok(
      existsSync(join(mergedDir, 'tokenizer.json')) ||
        readdirSync(mergedDir).some((f) => f.startsWith('tokenizer')),
    );
    const stage2Configs = paths.filter((p) => /know-unknown-stage2/.test(p) && /\.(json|ya?ml)$/.test(p));
    assert.ok(
      stage2Configs.some((p) => readFileSync(join(out, p), 'utf8').includes('stage1-merged-seed0')),
      `no stage-2 file names the merged model: ${stage2Configs.join(', ')}`,
    );
  });
});
