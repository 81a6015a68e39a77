/** Issue 12 item 8: config.json is checked against the weights once, on load, naming the field. */
import assert from 'node:assert/strict';
import { existsSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, describe, it } from 'node:test';
import { inspectModelDir } from '../../../src/cli/commands/inspect.ts';
import { ConfigError } from '../../../src/errors.ts';
import { runMerge, validateMergeConfig } from '../../../src/merge/index.ts';
import { checkModelDir, createModel, llamaConfigJson, saveModel } from '../../../src/models/index.ts';

const tmp = mkdtempSync(join(tmpdir(), 'attune-config-check-'));
after(() => rmSync(tmp, { recursive: true, force: true }));

const llama = llamaConfigJson({
  vocabSize: 60,
  hiddenSize: 32,
  intermediateSize: 48,
  numLayers: 2,
  numHeads: 4,
});

/** A saved model whose config.json then gets `edit` applied. */
function modelDir(name: string, edit: Record<string, unknown> = {}): string {
  const dir = join(tmp, name);
  saveModel(createModel(llama, { seed: 1 }), dir);
  const config = JSON.parse(readFileSync(join(dir, 'config.json'), 'utf8'));
  writeFileSync(join(dir, 'config.json'), JSON.stringify({ ...config, ...edit }));
  return dir;
}

describe('config.json against the weights', () => {
  it('passes a consistent directory', () => {
    checkModelDir(modelDir('good'));
    assert.equal(inspectModelDir(join(tmp, 'good')).hidden_size, 32);
  });
  const cases: [string, Record<string, unknown>, RegExp][] = [
    [
      'hidden',
      { hidden_size: 64 },
      /config\.json: hidden_size is 64 but model\.embed_tokens\.weight is \[60,32\]$/,
    ],
    [
      'vocab',
      { vocab_size: 61 },
      /config\.json: vocab_size is 61 but model\.embed_tokens\.weight is \[60,32\]$/,
    ],
    [
      'kv',
      { num_key_value_heads: 2 },
      /config\.json: num_key_value_heads is 2 \(x head_dim 8 = 16\) but model\.layers\.0\.self_attn\.k_proj\.weight is \[32,32\]$/,
    ],
    [
      'ffn',
      { intermediate_size: 64 },
      /config\.json: intermediate_size is 64 but model\.layers\.0\.mlp\.gate_proj\.weight is \[48,32\]$/,
    ],
    [
      'layers',
      { num_hidden_layers: 1 },
      /config\.json: num_hidden_layers is 1 but the checkpoint holds 2 layer\(s\)/,
    ],
  ];
  for (const [name, edit, message] of cases) {
    it(`${name}: inspect fails with one message naming the field, the value and the tensor`, () => {
      const dir = modelDir(name, edit);
      assert.throws(
        () => checkModelDir(dir),
        (e: unknown) => e instanceof ConfigError && message.test(e.message),
      );
      assert.throws(() => inspectModelDir(dir), message);
    });
  }
  it('merge refuses an inconsistent model before writing anything', () => {
    const base = modelDir('merge-base');
    const bad = modelDir('merge-bad', { hidden_size: 64 });
    const out = join(tmp, 'merged');
    const config = validateMergeConfig(
      { merge_method: 'linear', models: [{ model: base }, { model: bad }] },
      join(tmp, 'merge.yaml'),
      tmp,
    );
    assert.throws(
      () => runMerge(config, { out }),
      /merge-bad\/config\.json: hidden_size is 64 but model\.embed_tokens\.weight/,
    );
    assert.equal(existsSync(out), false);
  });
});
