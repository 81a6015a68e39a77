/**
 * Loss weights from the JSONL (token-weighted SFT from a field): a record's `weight`, an assistant
 * message's `weight` and `token_weights` (one per trained token) become per-position weights
 * aligned with the labels; bad values are errors naming the record.
 */
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { parseJsonl } from '../../../src/data/jsonl.ts';
import { IGNORE_INDEX, tokenizeRecord, tokenizeRecords } from '../../../src/data/tokenize.ts';
import { DataError } from '../../../src/errors.ts';
import { chatTokenizer, tinystoriesTokenizer } from './helpers.ts';

const record = (value: unknown) => parseJsonl(JSON.stringify(value), 'w.jsonl').records[0]!;

/** Positions >= 1 whose label is trained (the tokens the loss scores). */
const scored = (labels: Int32Array) => [...labels.keys()].filter((t) => t >= 1 && labels[t] !== IGNORE_INDEX);

describe('record loss weights', () => {
  it('a record without weights has no tokenWeights', (t) => {
    const tok = tinystoriesTokenizer(t);
    if (!tok) return;
    assert.equal(
      tokenizeRecord(record({ prompt: 'Once ', completion: 'upon a time' }), tok).tokenWeights,
      undefined,
    );
  });

  it('weight scales every position; token_weights set each scored token in order', (t) => {
    const tok = tinystoriesTokenizer(t);
    if (!tok) return;
    const plain = tokenizeRecord(record({ prompt: 'Once ', completion: 'upon a time' }), tok);
    const n = scored(plain.labels).length;
    assert.ok(n >= 3);
    const tw = Array.from({ length: n }, (_, i) => i + 1);
    const ex = tokenizeRecord(
      record({ prompt: 'Once ', completion: 'upon a time', weight: 0.5, token_weights: tw }),
      tok,
    );
    assert.deepEqual([...ex.inputIds], [...plain.inputIds]);
    const w = ex.tokenWeights!;
    assert.equal(w.length, ex.labels.length);
    for (const [i, pos] of scored(ex.labels).entries()) assert.equal(w[pos], 0.5 * (i + 1));
    // prompt positions only carry the record weight (their labels are masked anyway)
    assert.equal(w[0], 0.5);
  });

  it('token_weights of the wrong length is an error naming the record and both counts', (t) => {
    const tok = tinystoriesTokenizer(t);
    if (!tok) return;
    const n = scored(
      tokenizeRecord(record({ prompt: 'Once ', completion: 'upon a time' }), tok).labels,
    ).length;
    assert.throws(
      () => tokenizeRecord(record({ prompt: 'Once ', completion: 'upon a time', token_weights: [1] }), tok),
      (e: unknown) =>
        e instanceof DataError &&
        e.message ===
          `w.jsonl:1: field 'token_weights' has 1 weights, but the record has ${n} trained tokens (one weight per trained token, in order)`,
    );
  });

  it('truncation keeps the weights aligned with the kept labels', (t) => {
    const tok = tinystoriesTokenizer(t);
    if (!tok) return;
    const full = tokenizeRecord(record({ text: 'Once upon a time there was a cat' }), tok);
    const n = scored(full.labels).length;
    const tw = Array.from({ length: n }, (_, i) => i + 1);
    const r = record({ text: 'Once upon a time there was a cat', token_weights: tw });
    const all = tokenizeRecord(r, tok).tokenWeights!;
    const left = tokenizeRecord(r, tok, { maxLength: 4, truncation: 'left' });
    assert.deepEqual([...left.tokenWeights!], [...all.slice(all.length - 4)]);
  });

  it('an assistant message weight applies to that turn only (OpenAI fine-tuning style 0/1, any >= 0)', (t) => {
    const tok = chatTokenizer(t);
    if (!tok) return;
    const messages = [
      { role: 'user', content: 'Hi there' },
      { role: 'assistant', content: 'Hello friend', weight: 0 },
      { role: 'user', content: 'Bye' },
      { role: 'assistant', content: 'Bye bye' },
    ];
    const ex = tokenizeRecord(record({ messages }), tok);
    const w = ex.tokenWeights!;
    const trained = scored(ex.labels);
    // the first run (turn 1) is weight 0, the second (turn 3) weight 1
    const firstRunEnd = trained.findIndex((pos, i) => i > 0 && pos !== trained[i - 1]! + 1);
    assert.ok(firstRunEnd > 0);
    for (const pos of trained.slice(0, firstRunEnd)) assert.equal(w[pos], 0);
    for (const pos of trained.slice(firstRunEnd)) assert.equal(w[pos], 1);
    // all-ones message weights set nothing
    const ones = messages.map((m) => (m.role === 'assistant' ? { ...m, weight: 1 } : m));
    assert.equal(tokenizeRecord(record({ messages: ones }), tok).tokenWeights, undefined);
  });

  it('bad weight values are record errors (skippable)', () => {
    const lines = [
      { prompt: 'a', completion: 'b', weight: -1 },
      { prompt: 'a', completion: 'b', token_weights: 'x' },
      { prompt: 'a', completion: 'b', token_weights: [1, null] },
      { messages: [{ role: 'user', content: 'a', weight: 1 }] },
      { messages: [{ role: 'assistant', content: 'a', weight: 'high' }] },
    ].map((l) => JSON.stringify(l));
    const { records, skipped } = parseJsonl(lines.join('\n'), 'bad.jsonl', { onBadRecord: 'skip' });
    assert.equal(records.length, 0);
    assert.deepEqual(
      skipped.map((s) => s.reason),
      [
        "field 'weight' must be a finite number >= 0, found -1",
        "field 'token_weights' must be a list of numbers, found string",
        'token_weights[1] must be a finite number >= 0, found null',
        "messages[0].weight is set on a 'user' message; only assistant messages are trained",
        'messages[0].weight must be a finite number >= 0, found string',
      ],
    );
  });

  it('tokenizeRecords keeps per-record weights on each example', (t) => {
    const tok = tinystoriesTokenizer(t);
    if (!tok) return;
    const { examples } = tokenizeRecords(
      [record({ prompt: 'a ', completion: 'b' }), record({ prompt: 'a ', completion: 'b', weight: 3 })],
      tok,
    );
    assert.equal(examples[0]!.tokenWeights, undefined);
    assert.ok(examples[1]!.tokenWeights!.every((w) => w === 3));
  });
});
