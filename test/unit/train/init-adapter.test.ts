/**
 * `init_adapter: DIR`: a run starts from a saved adapter's weights; the method options must agree
 * with its adapter_config.json field by field; a missing or invalid directory is refused.
 */
import assert from 'node:assert/strict';
import { existsSync, mkdirSync, rmSync } from 'node:fs';
import { join } from 'node:path';
import { after, describe, it } from 'node:test';
import { train } from '../../../src/train/trainer.ts';
import { FACTS, tempDir, tinyConfig, writeJsonl, writeTinyModel } from '../../helpers/tiny-run.ts';

const root = tempDir('attune-init-adapter-');
after(() => rmSync(root, { recursive: true, force: true }));
writeTinyModel(join(root, 'model'));
writeJsonl(join(root, 'train.jsonl'), FACTS);
const evalFile = join(root, 'train.jsonl');

describe('init_adapter', () => {
  it("starts at the adapter's loss (eval after a 1e-12 lr step equals the adapter's final eval loss)", async () => {
    const a = await train(
      tinyConfig(root, { data: { eval: evalFile }, train: { steps: 6 }, output_dir: join(root, 'run-a') }),
    );
    assert.ok(a.evalLoss !== null);
    const tiny = { steps: 1, lr: 1e-12 };
    const b = await train(
      tinyConfig(root, {
        data: { eval: evalFile },
        train: tiny,
        // the same targets in another order: PEFT saves target_modules from a set
        lora: { target_modules: ['v_proj', 'q_proj'] },
        init_adapter: a.adapterDir,
        output_dir: join(root, 'run-b'),
      }),
    );
    const fresh = await train(
      tinyConfig(root, { data: { eval: evalFile }, train: tiny, output_dir: join(root, 'run-c') }),
    );
    assert.ok(Math.abs(b.evalLoss! - a.evalLoss!) < 1e-5, `init ${b.evalLoss} vs adapter ${a.evalLoss}`);
    assert.ok(
      Math.abs(fresh.evalLoss! - a.evalLoss!) > 1e-3,
      `a fresh run (${fresh.evalLoss}) is not at the adapter's loss (${a.evalLoss})`,
    );

    // mismatched method options are refused, naming the field and both values
    await assert.rejects(
      async () =>
        train(
          tinyConfig(root, {
            lora: { r: 8 },
            train: tiny,
            init_adapter: a.adapterDir,
            output_dir: join(root, 'run-r'),
          }),
        ),
      /adapter_config\.json.*field 'r' is 4, but the run's method options give 8/,
    );
    await assert.rejects(
      async () =>
        train(
          tinyConfig(root, {
            lora: { target_modules: ['q_proj'] },
            train: tiny,
            init_adapter: a.adapterDir,
            output_dir: join(root, 'run-t'),
          }),
        ),
      /field 'target_modules' is \["q_proj","v_proj"\], but the run's method options give \["q_proj"\]/,
    );
  });

  it('refuses a missing directory and one without adapter_config.json', async () => {
    await assert.rejects(
      async () =>
        train(
          tinyConfig(root, {
            train: { steps: 1 },
            init_adapter: join(root, 'nope'),
            output_dir: join(root, 'run-m'),
          }),
        ),
      /init_adapter: .*nope is not a directory/,
    );
    assert.equal(existsSync(join(root, 'run-m')), false, 'refused before any output is written');
    const empty = join(root, 'empty');
    mkdirSync(empty);
    await assert.rejects(
      async () =>
        train(
          tinyConfig(root, { train: { steps: 1 }, init_adapter: empty, output_dir: join(root, 'run-e') }),
        ),
      /empty[/\\]adapter_config\.json/,
    );
  });
});
