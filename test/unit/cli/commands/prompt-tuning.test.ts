// prompt_tuning end to end through the CLI: a YAML config with a text init trains, saves PEFT's
// PROMPT_TUNING layout, and `score` / `generate --adapter` use the learned prompt.
import assert from 'node:assert/strict';
import { readFileSync, rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { after, describe, it } from 'node:test';
import { openSafetensors } from '../../../../src/io/index.ts';
import { FACTS, tempDir, writeJsonl, writeTinyModel } from '../../../helpers/tiny-run.ts';
import { attune } from './helpers.ts';

const root = tempDir('attune-cli-prompt-tuning-');
after(() => rmSync(root, { recursive: true, force: true }));
const model = writeTinyModel(join(root, 'model'), { seed: 3, hidden: 32 });
writeJsonl(join(root, 'train.jsonl'), FACTS);
const texts = writeJsonl(
  join(root, 'texts.jsonl'),
  FACTS.map((f) => ({ text: f.prompt + f.completion })),
);

describe('attune train with method prompt_tuning (YAML)', () => {
  it('trains a text-initialised prompt, saves PEFT layout, and score/generate apply it', async () => {
    const config = join(root, 'pt.yaml');
    writeFileSync(
      config,
      `model: model
data: { train: train.jsonl, max_length: 32 }
method: { name: prompt_tuning, num_virtual_tokens: 4, prompt_tuning_init: text, prompt_tuning_init_text: "Facts:" }
train: { steps: 6, batch_size: 2, lr: 5.0e-2, seed: 0 }
output_dir: run
`,
    );
    const trained = await attune(['train', config, '--json']);
    assert.equal(trained.status, 0, trained.stderr);
    const adapter = join(root, 'run', 'adapter');
    const cfg = JSON.parse(readFileSync(join(adapter, 'adapter_config.json'), 'utf8'));
    assert.equal(cfg.peft_type, 'PROMPT_TUNING');
    assert.equal(cfg.prompt_tuning_init, 'TEXT');
    assert.equal(cfg.prompt_tuning_init_text, 'Facts:');
    assert.equal(cfg.num_virtual_tokens, 4);
    const file = openSafetensors(join(adapter, 'adapter_model.safetensors'));
    assert.deepEqual(file.names(), ['prompt_embeddings']);
    assert.deepEqual([...file.info('prompt_embeddings').shape], [4, 32]);
    file.close();

    const score = async (extra: string[]) => {
      const r = await attune(['score', '--model', model, '--data', texts, '--json', ...extra]);
      assert.equal(r.status, 0, r.stderr);
      return r.json!;
    };
    const plain = await score([]);
    const tuned = await score(['--adapter', adapter]);
    // the learned prompt was trained on these facts: it raises their log-probability
    const logprob = (j: Record<string, unknown>) =>
      (j.sequences as { sum_logprob: number }[]).reduce((s, q) => s + q.sum_logprob, 0);
    assert.equal((tuned.sequences as unknown[]).length, FACTS.length);
    assert.ok(logprob(tuned) > logprob(plain), `tuned ${logprob(tuned)} vs plain ${logprob(plain)}`);

    const gen = await attune([
      'generate',
      '--model',
      model,
      '--adapter',
      adapter,
      '--prompt',
      FACTS[0]!.prompt,
      '--max-new-tokens',
      '3',
      '--json',
    ]);
    assert.equal(gen.status, 0, gen.stderr);
    assert.ok((gen.json!.generated_ids as number[]).length <= 3);
  });
});
