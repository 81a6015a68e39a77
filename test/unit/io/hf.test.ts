import assert from 'node:assert/strict';
import { readdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { after, describe, it } from 'node:test';
import { readGenerationConfig, readModelConfig, tokenIdsOf } from '../../../src/io/hf.ts';
import { parseJson, readJson, readJsonObject, writeJsonAtomic } from '../../../src/io/json.ts';
import { assertFormatError, cleanup, tempDir, writeRaw } from './helpers.ts';

after(cleanup);

describe('JSON files', () => {
  it('names the file, line and column of a syntax error on one line', () => {
    const cases: [string, string, string][] = [
      ['{\n  "a": 1,\n  "b": tru\n}', 'line 3, column 11', 'expected true'],
      ['{"a": 1,}', 'line 1, column 9', 'property name'],
      ['{"a": }', 'line 1, column 7', 'unexpected "}"'],
      ['', 'line 1, column 1', 'end of input'],
      ['[1 2]', 'line 1, column 4', "expected ',' or ']'"],
      ['{"a": "x\ny"}', 'line 1, column 9', 'control character'],
      ['{} x', 'line 1, column 4', 'after the end'],
    ];
    for (const [text, where, what] of cases) {
      assertFormatError(() => parseJson(text, 'cfg.json'), ['cfg.json', where, what]);
    }
  });

  it('reads files, skipping a UTF-8 BOM', () => {
    const dir = tempDir();
    const path = writeRaw(dir, 'a.json', '\ufeff{"x": [1, 2]}');
    assert.deepEqual(readJson(path), { x: [1, 2] });
    assertFormatError(() => readJson(join(dir, 'none.json')), ['none.json', 'not found']);
    assertFormatError(
      () => readJsonObject(writeRaw(dir, 'arr.json', '[1]'), 'a model config'),
      ['arr.json', 'a model config', 'an array'],
    );
  });

  it('writes 2-space-indented JSON with a trailing newline, atomically', () => {
    const dir = tempDir();
    const path = join(dir, 'out.json');
    writeJsonAtomic(path, { b: 1, a: [true, null], s: 'é' });
    assert.equal(
      readFileSync(path, 'utf8'),
      '{\n  "b": 1,\n  "a": [\n    true,\n    null\n  ],\n  "s": "é"\n}\n',
    );
    assert.throws(() => writeJsonAtomic(path, undefined), TypeError);
    assert.deepEqual(readdirSync(dir), ['out.json']);
  });
});

describe('Hugging Face config files', () => {
  it('returns config.json raw and generation_config.json or null', () => {
    const dir = tempDir();
    writeJsonAtomic(join(dir, 'config.json'), { model_type: 'llama', hidden_size: 8, rope_scaling: null });
    assert.deepEqual(readModelConfig(dir), { model_type: 'llama', hidden_size: 8, rope_scaling: null });
    assert.equal(readGenerationConfig(dir), null);
    writeJsonAtomic(join(dir, 'generation_config.json'), { eos_token_id: [2, 7] });
    assert.deepEqual(readGenerationConfig(dir), { eos_token_id: [2, 7] });
  });

  it('names config.json when it is missing or malformed', () => {
    const dir = tempDir();
    assertFormatError(() => readModelConfig(dir), ['config.json', 'not found']);
    writeRaw(dir, 'config.json', '{"model_type": "llama",\n}');
    assertFormatError(() => readModelConfig(dir), ['config.json', 'line 2, column 1']);
    writeRaw(dir, 'generation_config.json', '"text"');
    assertFormatError(() => readGenerationConfig(dir), ['generation_config.json', 'a string']);
  });

  it('reads token ids given as one id or a list', () => {
    assert.deepEqual(tokenIdsOf({ eos_token_id: 2 }, 'g.json'), [2]);
    assert.deepEqual(tokenIdsOf({ eos_token_id: [2, 9] }, 'g.json'), [2, 9]);
    assert.deepEqual(tokenIdsOf({ eos_token_id: null }, 'g.json'), []);
    assert.deepEqual(tokenIdsOf({}, 'g.json'), []);
    assert.deepEqual(tokenIdsOf({ bos_token_id: 1 }, 'g.json', 'bos_token_id'), [1]);
    assertFormatError(() => tokenIdsOf({ eos_token_id: '2' }, 'g.json'), ['g.json', 'eos_token_id']);
  });
});
