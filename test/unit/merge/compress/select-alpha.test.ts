/** ComPEFT's alpha chosen on held-out data: the grid's losses, the argmin, the CLI option. */
import assert from 'node:assert/strict';
import { readFileSync, rmSync } from 'node:fs';
import { join } from 'node:path';
import { after, describe, it } from 'node:test';
import { selectCompeftAlpha } from '../../../../src/merge/compress-select.ts';
import { train } from '../../../../src/train/trainer.ts';
import { FACTS, tempDir, tinyConfig, writeJsonl, writeTinyModel } from '../../../helpers/tiny-run.ts';
import { runCli } from './helpers.ts';

const root = tempDir('attune-compeft-alpha-');
after(() => rmSync(root, { recursive: true, force: true }));
writeTinyModel(join(root, 'model'), { hidden: 32 });
writeJsonl(join(root, 'train.jsonl'), FACTS);
const run = train(
  tinyConfig(root, {
    lora: { r: 4, lora_alpha: 8, target_modules: 'all-linear' },
    train: { steps: 30, batch_size: 4, lr: 2e-2 },
    output_dir: join(root, 'run'),
  }),
);

describe('ComPEFT alpha selection on held-out data', () => {
  it('scores every alpha of the grid, picks the lowest held-out loss and reports the uncompressed loss', () => {
    const s = selectCompeftAlpha({
      adapterDir: run.adapterDir,
      baseDir: join(root, 'model'),
      data: join(root, 'train.jsonl'),
      density: 0.3,
      alphas: [0.25, 1, 4],
    });
    assert.deepEqual(
      s.candidates.map((c) => c.alpha),
      [0.25, 1, 4],
    );
    const min = Math.min(...s.candidates.map((c) => c.loss));
    assert.equal(s.candidates.find((c) => c.alpha === s.alpha)!.loss, min);
    // the trained adapter fits its own facts: lower loss than any 30%-dense ternary copy
    assert.ok(s.uncompressedLoss < min, `uncompressed ${s.uncompressedLoss} vs best ${min}`);
    assert.ok(new Set(s.candidates.map((c) => c.loss.toFixed(6))).size === 3, 'alpha changes the loss');
    // deterministic: the same inputs give the same losses (the base is restored between alphas)
    const again = selectCompeftAlpha({
      adapterDir: run.adapterDir,
      baseDir: join(root, 'model'),
      data: join(root, 'train.jsonl'),
      density: 0.3,
      alphas: [4, 0.25],
    });
    assert.equal(again.candidates[0]!.loss, s.candidates[2]!.loss);
    assert.equal(again.uncompressedLoss, s.uncompressedLoss);
    assert.throws(
      () =>
        selectCompeftAlpha({
          adapterDir: run.adapterDir,
          baseDir: join(root, 'model'),
          data: join(root, 'train.jsonl'),
          alphas: [0],
        }),
      /alpha grid must be finite numbers > 0/,
    );
  });

  it('attune compress --select-alpha writes the chosen alpha and reports the grid in --json', async () => {
    const out = join(root, 'compeft');
    const r = await runCli([
      'compress',
      '--adapter',
      run.adapterDir,
      '--base',
      join(root, 'model'),
      '--select-alpha',
      '--data',
      join(root, 'train.jsonl'),
      '--density',
      '0.3',
      '--out',
      out,
      '--json',
    ]);
    assert.equal(r.status, 0, r.stderr);
    const json = JSON.parse(r.stdout.trim().split('\n').at(-1)!);
    assert.equal(json.alpha, json.alpha_selection.alpha);
    assert.equal(json.alpha_selection.candidates.length, 9);
    assert.match(r.stdout, /<- chosen/);
    assert.ok(readFileSync(join(out, 'compeft.bin')).length > 0);
    const bad = await runCli([
      'compress',
      '--adapter',
      run.adapterDir,
      '--select-alpha',
      '--out',
      join(root, 'x'),
    ]);
    assert.equal(bad.status, 2);
    assert.match(bad.stderr, /--select-alpha needs --adapter <dir>, its --base <dir> and --data/);
  });
});
