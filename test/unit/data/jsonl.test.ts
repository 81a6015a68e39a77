/** data/jsonl: shape detection, validation with file:line reasons, skip mode. No model needed. */
import assert from 'node:assert/strict';
import { after, describe, it } from 'node:test';
import { parseJsonl, readJsonl, toRecord } from '../../../src/data/jsonl.ts';
import { ConfigError, DataError, FormatError } from '../../../src/errors.ts';
import { assertDataError, cleanup, writeJsonl } from './helpers.ts';

after(cleanup);

describe('readJsonl shapes', () => {
  it('detects the four shapes in one file, skips blank lines and counts every line', () => {
    const path = writeJsonl('mixed.jsonl', [
      { text: 'Once upon a time.' },
      '',
      { prompt: 'Q: ', completion: 'A.', id: 7 },
      '   ',
      {
        messages: [
          { role: 'user', content: 'Hi' },
          { role: 'assistant', content: 'Hello', name: 'bot' },
        ],
      },
      { instruction: 'Add.', input: '1 2', output: '3' },
      { instruction: 'Greet.', output: 'Hi!' },
    ]);
    const { records, skipped } = readJsonl(path);
    assert.deepEqual(skipped, []);
    assert.deepEqual(
      records.map((r) => [r.shape, r.line, r.file]),
      [
        ['text', 1, path],
        ['prompt_completion', 3, path],
        ['messages', 5, path],
        ['alpaca', 6, path],
        ['alpaca', 7, path],
      ],
    );
    assert.deepEqual(records[1], {
      shape: 'prompt_completion',
      file: path,
      line: 3,
      prompt: 'Q: ',
      completion: 'A.',
    });
    assert.deepEqual(records[2], {
      shape: 'messages',
      file: path,
      line: 5,
      messages: [
        { role: 'user', content: 'Hi' },
        { role: 'assistant', content: 'Hello', name: 'bot' },
      ],
    });
    assert.deepEqual(records[4], {
      shape: 'alpaca',
      file: path,
      line: 7,
      instruction: 'Greet.',
      input: '',
      output: 'Hi!',
    });
  });

  it('handles CRLF line ends, a byte-order mark and a trailing newline', () => {
    const { records } = parseJsonl('\ufeff{"text":"a"}\r\n\r\n{"text":"b"}\r\n', 'crlf.jsonl');
    assert.deepEqual(
      records.map((r) => [r.line, r.shape === 'text' ? r.text : null]),
      [
        [1, 'a'],
        [3, 'b'],
      ],
    );
  });

  it('allows an empty prompt and an empty alpaca input', () => {
    const { records } = parseJsonl(
      '{"prompt":"","completion":"x"}\n{"instruction":"i","input":"","output":"o"}',
      'f',
    );
    assert.equal(records.length, 2);
  });
});

describe('readJsonl bad records', () => {
  const cases: [string, string, string][] = [
    ['wrong type', '{"prompt": "Q", "completion": 3}', "field 'completion' must be a string, found number"],
    ['missing field', '{"prompt": "Q"}', "{prompt, completion} record is missing field 'completion'"],
    [
      'missing alpaca output',
      '{"instruction": "Do."}',
      "{instruction, input, output} record is missing field 'output'",
    ],
    [
      'alpaca input type',
      '{"instruction": "Do.", "input": 5, "output": "x"}',
      "field 'input' must be a string, found number",
    ],
    ['empty text', '{"text": ""}', "field 'text' must not be empty"],
    ['null text', '{"text": null}', "field 'text' must be a string, found null"],
    ['not an object', '[1, 2]', 'expected a JSON object, found array'],
    [
      'unknown shape',
      '{"question": "q", "answer": "a"}',
      "unknown record shape: expected {text}, {prompt, completion}, {messages}, {instruction, input, output}; found fields 'question', 'answer'",
    ],
    [
      'ambiguous',
      '{"text": "t", "messages": []}',
      "ambiguous record: it has fields of {text} ('text') and {messages} ('messages'); use one shape per record",
    ],
    [
      'messages not a list',
      '{"messages": "hi"}',
      "field 'messages' must be a list of {role, content}, found string",
    ],
    ['messages empty', '{"messages": []}', "field 'messages' must not be empty"],
    [
      'unknown role',
      '{"messages": [{"role": "user", "content": "a"}, {"role": "bot", "content": "b"}]}',
      "messages[1].role 'bot' is not one of system, user, assistant, tool",
    ],
    ['missing role', '{"messages": [{"content": "a"}]}', "messages[0] is missing field 'role'"],
    [
      'content type',
      '{"messages": [{"role": "user", "content": null}]}',
      'messages[0].content must be a string, found null',
    ],
    [
      'message not object',
      '{"messages": ["hi"]}',
      'messages[0] must be an object {role, content}, found string',
    ],
  ];
  for (const [name, line, reason] of cases) {
    it(`${name}: names file:line and the reason`, () => {
      const path = writeJsonl('train.jsonl', ['{"text": "ok"}', '', line]);
      const error = assertDataError(() => readJsonl(path), `${path}:3: ${reason}`);
      assert.equal(error.file, path);
      assert.equal(error.line, 3);
    });
  }

  it('invalid JSON carries the parse error', () => {
    const path = writeJsonl('train.jsonl', ['{"text": "ok"}', '{"text": }']);
    assertDataError(
      () => readJsonl(path),
      new RegExp(`^${path.replace(/[.*+?^${}()|[\]\\]/g, '\\$&')}:2: invalid JSON: .+`),
    );
  });

  it('skip mode lists every bad record with its line and reason, keeps the rest', () => {
    const path = writeJsonl('train.jsonl', [
      { text: 'a' },
      '{oops',
      { prompt: 'p', completion: 1 },
      { text: 'b' },
      { messages: [{ role: 'robot', content: 'x' }] },
    ]);
    const { records, skipped } = readJsonl(path, { onBadRecord: 'skip' });
    assert.deepEqual(
      records.map((r) => r.line),
      [1, 4],
    );
    assert.deepEqual(
      skipped.map((s) => [s.file, s.line]),
      [
        [path, 2],
        [path, 3],
        [path, 5],
      ],
    );
    assert.match(skipped[0]!.reason, /^invalid JSON: /);
    assert.equal(skipped[1]!.reason, "field 'completion' must be a string, found number");
    assert.equal(skipped[2]!.reason, "messages[0].role 'robot' is not one of system, user, assistant, tool");
  });

  it('rejects an unknown onBadRecord value and a missing file', () => {
    assert.throws(() => parseJsonl('', 'f', { onBadRecord: 'ignore' as never }), ConfigError);
    assert.throws(
      () => readJsonl('/nonexistent/train.jsonl'),
      (e: unknown) => {
        return e instanceof FormatError && e.message === '/nonexistent/train.jsonl: file not found';
      },
    );
  });

  it('toRecord validates a parsed value', () => {
    assert.deepEqual(toRecord({ text: 'x' }, 'gen', 4), { shape: 'text', file: 'gen', line: 4, text: 'x' });
    assert.throws(
      () => toRecord({ text: 1 }, 'gen', 4),
      (e: unknown) =>
        e instanceof DataError && e.message === "gen:4: field 'text' must be a string, found number",
    );
  });
});
