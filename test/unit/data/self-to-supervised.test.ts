import assert from 'node:assert/strict';
import { rmSync } from 'node:fs';
import { join } from 'node:path';
import { after, describe, it } from 'node:test';
import type { DataRecord } from '../../../src/data/jsonl.ts';
import { equivalentAnswers, selfToSupervised } from '../../../src/data/self-to-supervised.ts';
import { generateBatch, loadModel } from '../../../src/models/index.ts';
import { tempDir, writeTinyModel } from '../../helpers/tiny-run.ts';

const root = tempDir('attune-s3ft-');
after(() => rmSync(root, { recursive: true, force: true }));

describe('S3FT (self-to-supervised)', () => {
  it('the default judge compares first lines up to case, spacing and trailing punctuation', () => {
    assert.ok(equivalentAnswers(' Oslo', 'oslo.'));
    assert.ok(equivalentAnswers(" I don't know", "I don ' t know ."));
    assert.ok(equivalentAnswers('1972', '1972\nQ: next'));
    assert.ok(!equivalentAnswers('Oslo', 'Lima'));
    assert.ok(!equivalentAnswers('', ''));
  });

  it("replaces a judged-equivalent completion by the model's own answer and keeps the rest", () => {
    const { model, tokenizer } = loadModel(writeTinyModel(join(root, 'model'), { seed: 3 }));
    const prompts = ['Ada lives in ', 'Bo lives in ', 'Cy lives in ', 'Di lives in ', 'Ed: '];
    const own = generateBatch(
      model,
      prompts.map((p) => ({ promptIds: tokenizer!.encode(p) })),
      {
        temperature: 0,
        maxNewTokens: 32,
        eosTokenIds: tokenizer!.eosTokenIds,
        stopStrings: ['\n'],
        tokenizer,
      },
    ).map((g) => (g.text ?? '').split('\n')[0]!.trim());
    const k = own.findIndex((a) => a !== '');
    assert.ok(k >= 0, 'the tiny model answers one of the prompts');
    const records: DataRecord[] = [
      {
        shape: 'prompt_completion',
        file: 'f',
        line: 1,
        prompt: prompts[k]!,
        completion: ` ${own[k]!.toUpperCase()}.`,
      },
      {
        shape: 'prompt_completion',
        file: 'f',
        line: 2,
        prompt: prompts[k]!,
        completion: ' something else entirely',
      },
      { shape: 'text', file: 'f', line: 3, text: 'kept as is' },
    ];
    const result = selfToSupervised(model, tokenizer!, records);
    assert.equal(result.judged, 2);
    assert.deepEqual(result.replaced, [0]);
    assert.deepEqual(result.records[0], { ...records[0], completion: ` ${own[k]}` });
    assert.deepEqual(result.records.slice(1), records.slice(1));
    // a custom judge decides instead
    const all = selfToSupervised(model, tokenizer!, records, { judge: () => true });
    assert.deepEqual(all.replaced, [0, 1]);
  });
});
