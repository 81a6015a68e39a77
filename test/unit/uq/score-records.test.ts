import assert from 'node:assert/strict';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, describe, it } from 'node:test';
import { DataError, FormatError } from '../../../src/errors.ts';
import { readScoreRecords } from '../../../src/uq/index.ts';

const tmp = mkdtempSync(join(tmpdir(), 'attune-score-records-'));
after(() => rmSync(tmp, { recursive: true, force: true }));

describe('readScoreRecords', () => {
  it('reads {text} and {ids} records, skipping blank lines (and a BOM)', () => {
    const path = join(tmp, 'ok.jsonl');
    writeFileSync(path, '\ufeff{"text": "Tom had"}\n\n{"ids": [1, 80, 388]}\n');
    assert.deepEqual(readScoreRecords(path), [{ text: 'Tom had' }, { ids: [1, 80, 388] }]);
  });

  it('names file:line of a bad record, and a missing or empty file', () => {
    const path = join(tmp, 'bad.jsonl');
    for (const [body, message] of [
      [
        '{"text": "a"}\n{"ids": [1, -2]}\n',
        /bad\.jsonl:2: expected \{"text": string\} or \{"ids": \[non-negative int, \.\.\.\]\}/,
      ],
      ['{"text": 5}\n', /bad\.jsonl:1: expected/],
      ['{"ids": []}\n', /bad\.jsonl:1: expected/],
      ['not json\n', /bad\.jsonl:1: invalid JSON/],
      ['\n\n', /bad\.jsonl:1: no records/],
    ] as const) {
      writeFileSync(path, body);
      assert.throws(
        () => readScoreRecords(path),
        (e: unknown) => e instanceof DataError && message.test(e.message),
      );
    }
    assert.throws(
      () => readScoreRecords(join(tmp, 'nope.jsonl')),
      (e: unknown) => e instanceof FormatError && /nope\.jsonl: file not found/.test(e.message),
    );
  });
});
