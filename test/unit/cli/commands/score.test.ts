import assert from 'node:assert/strict';
import { rmSync } from 'node:fs';
import { join } from 'node:path';
import { after, describe, it } from 'node:test';
import { tempDir, writeJsonl, writeTinyModel } from '../../../helpers/tiny-run.ts';
import { attune } from './helpers.ts';

const root = tempDir('attune-cli-score-');
after(() => rmSync(root, { recursive: true, force: true }));
const model = writeTinyModel(join(root, 'model'));

describe('attune score', () => {
  it('--data reads {text} / {ids} records; the old --input still works, with a one-line note', async () => {
    const data = writeJsonl(join(root, 'texts.jsonl'), [{ text: 'ab' }, { ids: [256, 97, 98] }]);
    const r = await attune(['score', '--model', model, '--data', data, '--json']);
    assert.equal(r.status, 0, r.stderr);
    assert.equal(r.stderr, '');
    const sequences = r.json!.sequences as { ids: number[]; tokens: { logprob: number | null }[] }[];
    assert.equal(sequences.length, 2);
    assert.deepEqual(sequences[1]!.ids, [256, 97, 98]);
    assert.deepEqual(Object.keys(sequences[0]!.tokens[0]!), ['id', 'token', 'logprob', 'entropy']);
    const old = await attune(['score', '--model', model, '--input', data, '--json']);
    assert.equal(old.status, 0, old.stderr);
    assert.equal(old.stderr, 'note: --input is deprecated; use --data\n');
    assert.deepEqual(old.json, r.json);
  });

  it('--ids must be non-negative integers (usage error, exit 2)', async () => {
    const r = await attune(['score', '--model', model, '--ids', '1,x']);
    assert.equal(r.status, 2);
    assert.equal(r.stderr, 'error: --ids: expected comma-separated integers >= 0, got "1,x"\n');
    const ok = await attune(['score', '--model', model, '--ids', '256,97', '--json']);
    assert.equal(ok.status, 0, ok.stderr);
    assert.deepEqual(ok.json!.ids, [256, 97]);
  });

  it('a bad --data line is one error naming file:line, exit 1', async () => {
    const data = writeJsonl(join(root, 'bad.jsonl'), [{ text: 'ok' }, { prompt: 'no' }]);
    const r = await attune(['score', '--model', model, '--data', data]);
    assert.equal(r.status, 1);
    assert.match(r.stderr, /^error: .*bad\.jsonl:2: expected \{"text": string\} or \{"ids"/);
  });
});
