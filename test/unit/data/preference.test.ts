import assert from 'node:assert/strict';
import { after, describe, it } from 'node:test';
import { DataLoader } from '../../../src/data/batching.ts';
import { loadPreferenceDataset, readPreferenceJsonl } from '../../../src/data/preference.ts';
import { IGNORE_INDEX } from '../../../src/data/tokenize.ts';
import { DataError } from '../../../src/errors.ts';
import { Tokenizer, writeByteTokenizer } from '../../../src/io/index.ts';
import { CHATML_TEMPLATE, cleanup, tempDir, writeJsonl } from './helpers.ts';

after(cleanup);

function byteTokenizer(): Tokenizer {
  const dir = tempDir();
  writeByteTokenizer(dir);
  return Tokenizer.fromDir(dir);
}

/** The text of the trained tokens of an example. */
function trainedText(tokenizer: Tokenizer, labels: Int32Array): string {
  return tokenizer.decode([...labels].filter((l) => l !== IGNORE_INDEX));
}

describe('preference data', () => {
  const tokenizer = byteTokenizer();

  it('a pair becomes chosen then rejected, trained on the response only', () => {
    const path = writeJsonl('p.jsonl', [
      { prompt: 'Q: 2+2?\nA:', chosen: ' 4', rejected: ' 5' },
      { prompt: 'Sky is ', chosen: 'blue', rejected: 'green', id: 7 },
    ]);
    const set = loadPreferenceDataset(path, tokenizer, { report: () => {} });
    assert.equal(set.examples.length, 4);
    assert.equal(set.stats.records, 2);
    const texts = set.examples.map((e) => trainedText(tokenizer, e.labels));
    // EOS is appended (and trained) as for prompt/completion records
    assert.deepEqual(
      texts.map((t) => t.replace(/<\|[a-z]+\|>|<\/s>/g, '')),
      [' 4', ' 5', 'blue', 'green'],
    );
    // the prompt tokens are identical in both examples of a pair and masked
    const [c, r] = set.examples;
    const promptLength = tokenizer.encode('Q: 2+2?\nA:').length;
    assert.deepEqual([...c!.inputIds.slice(0, promptLength)], [...r!.inputIds.slice(0, promptLength)]);
    assert.ok([...c!.labels.slice(0, promptLength)].every((l) => l === IGNORE_INDEX));
    assert.equal(c!.line, 1);
    assert.equal(set.examples[2]!.line, 2);
  });

  it('{messages, chosen, rejected} renders the chat template with the response as the assistant turn', () => {
    const path = writeJsonl('m.jsonl', [
      { messages: [{ role: 'user', content: 'Hi' }], chosen: 'Hello!', rejected: 'Go away.' },
    ]);
    const set = loadPreferenceDataset(path, tokenizer, { chatTemplate: CHATML_TEMPLATE, report: () => {} });
    assert.equal(set.examples.length, 2);
    assert.equal(trainedText(tokenizer, set.examples[0]!.labels), 'Hello!<|im_end|>');
    assert.equal(trainedText(tokenizer, set.examples[1]!.labels), 'Go away.<|im_end|>');
    assert.ok(tokenizer.decode([...set.examples[0]!.inputIds]).includes('<|im_start|>assistant\nHello!'));
  });

  it('bad records are errors naming file, line and reason', () => {
    const cases: [unknown, RegExp][] = [
      [{ prompt: '', chosen: 'a', rejected: 'b' }, /:1: field 'prompt' must not be empty/],
      [{ prompt: 'x', rejected: 'b' }, /:1: preference record is missing field 'chosen'/],
      [{ prompt: 'x', chosen: 'a' }, /:1: preference record is missing field 'rejected'/],
      [{ prompt: 'x', chosen: '  ', rejected: 'b' }, /:1: field 'chosen' must not be empty/],
      [{ prompt: 'x', chosen: 'a', rejected: 3 }, /:1: field 'rejected' must be a string, found number/],
      [{ prompt: 'x', chosen: 'same', rejected: 'same' }, /:1: 'chosen' and 'rejected' are the same text/],
      [{ chosen: 'a', rejected: 'b' }, /:1: a preference record needs 'prompt' or 'messages'/],
      [{ prompt: 'x', messages: [], chosen: 'a', rejected: 'b' }, /:1: ambiguous preference record/],
      [
        { messages: [{ role: 'assistant', content: 'x' }], chosen: 'a', rejected: 'b' },
        /:1: the conversation ends with an assistant turn/,
      ],
      [
        { messages: [{ role: 'bot', content: 'x' }], chosen: 'a', rejected: 'b' },
        /:1: messages\[0\]\.role 'bot'/,
      ],
      ['{not json', /:1: invalid JSON/],
    ];
    for (const [record, pattern] of cases) {
      const path = writeJsonl('bad.jsonl', [record]);
      assert.throws(
        () => readPreferenceJsonl(path),
        (e: unknown) => e instanceof DataError && pattern.test(e.message) && e.message.startsWith(path),
        `${JSON.stringify(record)}`,
      );
    }
  });

  it("onBadRecord 'skip' drops whole pairs, counts and reports them", () => {
    const path = writeJsonl('mixed.jsonl', [
      { prompt: 'a', chosen: 'x', rejected: 'y' },
      { prompt: 'b', chosen: 'x', rejected: 'x' },
      '',
      { prompt: 'c', chosen: 'x', rejected: 'z' },
    ]);
    const lines: string[] = [];
    const set = loadPreferenceDataset(path, tokenizer, { onBadRecord: 'skip', report: (l) => lines.push(l) });
    assert.equal(set.examples.length, 4);
    assert.deepEqual(
      set.skipped.map((s) => s.line),
      [2],
    );
    assert.match(lines[0]!, /skipped 1 of 3 records \(line 2: 'chosen' and 'rejected' are the same text/);
    assert.throws(() => loadPreferenceDataset(path, tokenizer, { report: () => {} }), /mixed\.jsonl:2:/);
  });

  it("an optional 'weight' reaches both examples of the pair; a bad weight names file and line", () => {
    const path = writeJsonl('w.jsonl', [
      { prompt: 'a', chosen: 'x', rejected: 'y', weight: 0.25 },
      { prompt: 'b', chosen: 'x', rejected: 'y' },
    ]);
    const set = loadPreferenceDataset(path, tokenizer, { report: () => {} });
    assert.deepEqual(
      set.examples.map((e) => e.weight),
      [0.25, 0.25, undefined, undefined],
    );
    assert.equal(readPreferenceJsonl(path).records[1]!.weight, 1);
    for (const [weight, found] of [
      [-1, 'found -1'],
      ['2', 'found string'],
      [null, 'found null'],
    ] as const) {
      const bad = writeJsonl('wb.jsonl', [
        { prompt: 'a', chosen: 'x', rejected: 'y' },
        { prompt: 'a', chosen: 'x', rejected: 'y', weight },
      ]);
      assert.throws(
        () => readPreferenceJsonl(bad),
        (e: unknown) =>
          e instanceof DataError &&
          e.line === 2 &&
          e.message.includes(`field 'weight' must be a finite number >= 0, ${found}`),
      );
    }
  });

  it("refuses trainOn 'all' (only the responses are compared)", () => {
    const path = writeJsonl('p2.jsonl', [{ prompt: 'a', chosen: 'x', rejected: 'y' }]);
    assert.throws(
      () => loadPreferenceDataset(path, tokenizer, { trainOn: 'all' }),
      /train_on: 'all' cannot be used/,
    );
  });
});

describe('DataLoader groupSize', () => {
  const examples = Array.from({ length: 12 }, (_, i) => ({
    inputIds: Int32Array.from([1, 10 + i, 20 + i]),
    labels: Int32Array.from([IGNORE_INDEX, 10 + i, 20 + i]),
    file: 'f',
    line: i + 1,
    truncatedTokens: 0,
  }));

  it('keeps each group together in one batch while shuffling groups', () => {
    const loader = new DataLoader(examples, { batchSize: 4, padTokenId: 0, seed: 3, groupSize: 2 });
    const seen: number[] = [];
    let shuffled = false;
    for (let b = 0; b < 6; b++) {
      const batch = loader.next();
      const firsts = [0, 1, 2, 3].map((r) => batch.exampleOf[r * 3]!).filter((e) => e >= 0);
      for (let r = 0; r < firsts.length; r += 2) {
        assert.equal(firsts[r]! % 2, 0, 'a group starts at an even example');
        assert.equal(firsts[r + 1], firsts[r]! + 1, 'its partner follows in the same batch');
      }
      seen.push(...firsts);
      if (firsts.some((e, i) => e !== b * 4 + i)) shuffled = true;
    }
    assert.ok(shuffled, 'the groups are shuffled');
    assert.deepEqual(
      [...seen.slice(0, 12)].sort((a, b) => a - b),
      [...Array(12).keys()],
    );
  });

  it('resumes exactly and refuses bad group settings', () => {
    const a = new DataLoader(examples, { batchSize: 2, padTokenId: 0, seed: 9, groupSize: 2 });
    for (let i = 0; i < 4; i++) a.next();
    const b = new DataLoader(examples, { batchSize: 2, padTokenId: 0, seed: 9, groupSize: 2 });
    b.restore(a.state());
    for (let i = 0; i < 5; i++) assert.deepEqual(b.next().exampleOf, a.next().exampleOf);
    const ungrouped = new DataLoader(examples, { batchSize: 2, padTokenId: 0, seed: 9 });
    assert.throws(() => ungrouped.restore(a.state()), /groupSize 2 in the state/);
    assert.throws(
      () => new DataLoader(examples, { batchSize: 3, padTokenId: 0, groupSize: 2 }),
      /batchSize 3 must be a multiple of groupSize 2/,
    );
    assert.throws(
      () => new DataLoader(examples.slice(0, 3), { batchSize: 2, padTokenId: 0, groupSize: 2 }),
      /3 examples do not form groups of 2/,
    );
    assert.throws(
      () =>
        new DataLoader(examples, { batchSize: 2, padTokenId: 0, groupSize: 2, packing: true, maxLength: 8 }),
      /packing cannot be used with groupSize 2/,
    );
  });
});
