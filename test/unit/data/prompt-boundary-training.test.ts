/**
 * The quick start's failure (issue 12): LoRA-trained on prompt/completion pairs whose last prompt
 * word merges with the completion's first (`found▁a▁`), the model must then answer its prompts,
 * encoded as `generate` / `eval` encode them, with greedy decoding. Real tinystories-656k
 * (ATTUNE_TEST_MODELS); a few seconds.
 */
import assert from 'node:assert/strict';
import { rmSync } from 'node:fs';
import { join } from 'node:path';
import { after, it } from 'node:test';
import { Tokenizer } from '../../../src/io/tokenizer.ts';
import { generate } from '../../../src/models/generate.ts';
import { validateTrainConfig } from '../../../src/train/config.ts';
import { train } from '../../../src/train/trainer.ts';
import { testModelDir } from '../../helpers/models-env.ts';
import { tempDir, writeJsonl } from '../../helpers/tiny-run.ts';

const root = tempDir('attune-boundary-');
after(() => rmSync(root, { recursive: true, force: true }));

const PAIRS = [
  { prompt: 'Lily found', completion: ' a red hat.' },
  { prompt: 'Tom saw', completion: ' a blue car.' },
  { prompt: 'Sue had', completion: ' a big dog.' },
  { prompt: 'Max was', completion: ' a sad cat.' },
];

it('after a short LoRA run, greedy generation from the inference encoding answers every prompt', (t) => {
  const model = testModelDir('tinystories-656k');
  if (model.skip !== false) return t.skip(model.skip);
  const tokenizer = Tokenizer.fromDir(model.dir);
  // Every pair merges across the boundary when tokenised whole (the reported failure).
  for (const { prompt, completion } of PAIRS) {
    const promptIds = tokenizer.encode(prompt);
    assert.notDeepEqual(tokenizer.encode(prompt + completion).slice(0, promptIds.length), promptIds, prompt);
  }
  writeJsonl(join(root, 'train.jsonl'), PAIRS);
  const reports: string[] = [];
  const stderr = process.stderr.write.bind(process.stderr);
  process.stderr.write = ((line: string) => reports.push(String(line)) > 0) as typeof process.stderr.write;
  let result: ReturnType<typeof train>;
  try {
    result = train(
      validateTrainConfig(
        {
          model: model.dir,
          data: { train: join(root, 'train.jsonl') },
          method: 'lora',
          lora: { r: 8, lora_alpha: 16, target_modules: 'all-linear' },
          train: { steps: 40, batch_size: 4, lr: 1e-2, seed: 0 },
          output_dir: join(root, 'run'),
        },
        'test config',
      ),
    );
  } finally {
    process.stderr.write = stderr;
  }
  assert.equal(
    reports.filter((l) => l.includes('merges text across the prompt/response boundary')).length,
    1,
  );
  for (const { prompt, completion } of PAIRS) {
    const promptIds = tokenizer.encode(prompt);
    const out = generate(result.model, promptIds, { maxNewTokens: 8, eosTokenIds: tokenizer.eosTokenIds });
    assert.equal(out.stopReason, 'eos', prompt);
    const text = tokenizer.decode([...promptIds, ...out.generatedIds], { skipSpecialTokens: true });
    assert.equal(text, prompt + completion);
  }
});
