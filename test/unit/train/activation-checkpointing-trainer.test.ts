import assert from 'node:assert/strict';
import { readFileSync, rmSync } from 'node:fs';
import { join } from 'node:path';
import { after, describe, it } from 'node:test';
import { train } from '../../../src/train/trainer.ts';
import { FACTS, tempDir, tinyConfig, writeJsonl, writeTinyModel } from '../../helpers/tiny-run.ts';

const root = tempDir('attune-ckpt-trainer-');
after(() => rmSync(root, { recursive: true, force: true }));
writeTinyModel(join(root, 'model'), { hidden: 32 });
writeJsonl(join(root, 'train.jsonl'), FACTS);

function losses(dir: string): number[] {
  return readFileSync(join(dir, 'metrics.jsonl'), 'utf8')
    .trim()
    .split('\n')
    .map((l) => JSON.parse(l).loss as number);
}

describe('train.activation_checkpointing', () => {
  it('a LoRA run with residual and adapter dropout has the same loss curve with and without it', () => {
    const run = (checkpointing: boolean, name: string) => {
      const config = tinyConfig(root, {
        lora: { r: 4, lora_alpha: 8, lora_dropout: 0.2, target_modules: 'all-linear' },
        train: { steps: 4, batch_size: 2, residual_dropout: 0.1, activation_checkpointing: checkpointing },
        output_dir: join(root, name),
      });
      assert.equal(config.train.activation_checkpointing, checkpointing);
      const result = train(config);
      assert.equal(result.model.activationCheckpointing, checkpointing, 'the model runs as configured');
      return losses(config.output_dir);
    };
    const plain = run(false, 'plain');
    const ckpt = run(true, 'ckpt');
    assert.equal(plain.length, 4);
    assert.ok(plain[3]! < plain[0]!, `loss falls: ${plain.join(', ')}`);
    assert.deepEqual(ckpt, plain);
  });
});
