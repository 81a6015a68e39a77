/** data/dataset: JSONL file -> examples on the real tinystories tokenizer; skipped records counted and reported. */
import assert from 'node:assert/strict';
import { after, describe, it } from 'node:test';
import { DataLoader, padTokenIdOf } from '../../../src/data/batching.ts';
import { describeSkipped, loadDataset } from '../../../src/data/dataset.ts';
import { FormatError } from '../../../src/errors.ts';
import { assertDataError, cleanup, tinystoriesTokenizer, writeJsonl } from './helpers.ts';

after(cleanup);

const lines = [
  { text: 'Once upon a time there was a dog.' },
  { prompt: 'Q: Who is Tom?\n', completion: 'A: Tom is a cat.' },
  { prompt: 'Q: Who is Tom?\n', completion: 7 },
  '',
  { text: 'Tom is a cat.' },
  '{"text": "unterminated',
];

describe('loadDataset', () => {
  it('warns once, with a count and the first line, when the tokenizer merges across prompt/completion', (t) => {
    const tok = tinystoriesTokenizer(t);
    if (!tok) return;
    const path = writeJsonl('train.jsonl', [
      { prompt: 'Q: Who is Tom?\n', completion: 'A: Tom is a cat.' },
      { prompt: 'Once upon a time, Lily found', completion: ' a small red ball.' },
      { prompt: 'Once upon a time', completion: ' there was' },
    ]);
    const reports: string[] = [];
    const dataset = loadDataset(path, tok, { report: (l) => reports.push(l) });
    assert.equal(dataset.stats.boundaryMerges, 2);
    assert.deepEqual(reports, [
      `${path}: warning: the tokenizer merges text across the prompt/response boundary in 2 of 3 records ` +
        '(first: line 2, token "found▁a▁"); their prompts are tokenized as at inference and the responses ' +
        'separately, so they are trained on tokens that differ from tokenizing each record whole',
    ]);
    const clean = writeJsonl('clean.jsonl', [{ prompt: 'Q: Who is Tom?\n', completion: 'A: Tom is a cat.' }]);
    const none: string[] = [];
    assert.equal(loadDataset(clean, tok, { report: (l) => none.push(l) }).stats.boundaryMerges, 0);
    assert.deepEqual(none, []);
  });

  it('fails on the first bad record by default, naming file and line', (t) => {
    const tok = tinystoriesTokenizer(t);
    if (!tok) return;
    const path = writeJsonl('train.jsonl', lines);
    assertDataError(
      () => loadDataset(path, tok),
      `${path}:3: field 'completion' must be a string, found number`,
    );
  });

  it('skip mode keeps the good records, counts and reports the bad ones', (t) => {
    const tok = tinystoriesTokenizer(t);
    if (!tok) return;
    const path = writeJsonl('train.jsonl', lines);
    const reports: string[] = [];
    const dataset = loadDataset(path, tok, {
      onBadRecord: 'skip',
      maxLength: 9,
      report: (l) => reports.push(l),
    });
    assert.deepEqual(
      dataset.examples.map((e) => e.line),
      [1, 5],
    );
    assert.deepEqual(
      dataset.skipped.map((s) => s.line),
      [2, 3, 6],
    );
    assert.equal(dataset.stats.records, 5);
    assert.equal(dataset.stats.examples, 2);
    assert.equal(dataset.stats.skipped, 3);
    assert.equal(dataset.stats.truncated, 1);
    assert.equal(
      dataset.stats.tokens,
      dataset.examples.reduce((n, e) => n + e.inputIds.length, 0),
    );
    assert.deepEqual(
      dataset.examples.map((e) => e.inputIds.length),
      [9, 7],
    );
    assert.equal(reports.length, 1);
    assert.match(
      reports[0]!,
      new RegExp(
        `^${path.replace(/[.*+?^${}()|[\]\\]/g, '\\$&')}: skipped 3 of 5 records \\(line 2: no trained tokens left after truncating 17 tokens to maxLength 9 .*; line 3: field 'completion' must be a string, found number; line 6: invalid JSON: .*\\); truncated 1 records to maxLength$`,
      ),
    );
    // The examples feed a DataLoader as they are.
    const loader = new DataLoader(dataset.examples, { batchSize: 2, padTokenId: padTokenIdOf(tok), seed: 1 });
    const batch = loader.next();
    assert.deepEqual(batch.inputIds.shape, [2, 9]);
  });

  it('reports nothing when every record is used', (t) => {
    const tok = tinystoriesTokenizer(t);
    if (!tok) return;
    const path = writeJsonl('clean.jsonl', [lines[0], lines[1]]);
    const reports: string[] = [];
    const dataset = loadDataset(path, tok, { report: (l) => reports.push(l) });
    assert.deepEqual(reports, []);
    assert.equal(dataset.stats.examples, 2);
    assert.equal(dataset.stats.trainedTokens, 9 + 7);
  });

  it('an empty file, or one whose records were all skipped, is a FormatError', (t) => {
    const tok = tinystoriesTokenizer(t);
    if (!tok) return;
    const empty = writeJsonl('empty.jsonl', ['', '']);
    assert.throws(
      () => loadDataset(empty, tok),
      (e: unknown) => e instanceof FormatError && /no records/.test(e.message),
    );
    const bad = writeJsonl('bad.jsonl', ['{', '[]']);
    assert.throws(
      () => loadDataset(bad, tok, { onBadRecord: 'skip', report: () => {} }),
      (e: unknown) => e instanceof FormatError && /none of its 2 records is usable/.test(e.message),
    );
  });
});

describe('describeSkipped', () => {
  it('lists at most maxListed reasons', () => {
    const skipped = [1, 2, 3, 4, 5].map((line) => ({ file: 'f', line, reason: `r${line}` }));
    assert.equal(
      describeSkipped('f', skipped, 10),
      'f: skipped 5 of 10 records (line 1: r1; line 2: r2; line 3: r3; and 2 more)',
    );
    assert.equal(describeSkipped('f', [], 10), null);
  });
});
