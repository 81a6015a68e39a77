/**
 * Fuzzed JSONL training data: lines truncated, fields replaced by wrong types / huge / deep values,
 * NaN and Infinity literals, duplicate keys, invalid UTF-8, nesting deeper than any walker, hostile
 * chat messages. Reading and tokenising either works or throws a one-line AttuneError naming the
 * file (and the line, for an error about one record).
 */
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { after, describe, it } from 'node:test';
import { loadDataset } from '../../../src/data/dataset.ts';
import { DataError } from '../../../src/errors.ts';
import { byteTokenizerFiles } from '../../../src/io/byte-tokenizer.ts';
import { Tokenizer } from '../../../src/io/tokenizer.ts';
import {
  deepJsonText,
  FuzzReport,
  fuzzDir,
  hostileLiteral,
  hostileValue,
  jsonPaths,
  mutateBytes,
  Rng,
  withValueAt,
} from './harness.ts';

const { dir, remove } = fuzzDir();
after(remove);

const CHATML =
  "{% for m in messages %}{{ '<|im_start|>' + m['role'] + '\\n' + m['content'] + '<|im_end|>\\n' }}{% endfor %}" +
  "{% if add_generation_prompt %}{{ '<|im_start|>assistant\\n' }}{% endif %}";

const RECORDS: Record<string, unknown>[] = [
  { text: 'Once upon a time there was a dog.' },
  { prompt: 'Q: Who is Tom?\n', completion: 'A: Tom is a cat.' },
  { instruction: 'Name a colour.', input: '', output: 'Red.' },
  { instruction: 'Add.', input: '1 + 1', output: '2' },
  {
    messages: [
      { role: 'system', content: 'Be kind.' },
      { role: 'user', content: 'Hi' },
      { role: 'assistant', content: 'Hello!' },
    ],
  },
  { prompt: 'ü 🙂 ', completion: 'done', id: 7, meta: { a: [1, 2] } },
];

describe('fuzzed JSONL', () => {
  it('300 mutated files, error and skip modes: typed errors naming file and line', () => {
    const files = byteTokenizerFiles({ chatTemplate: CHATML });
    const tokenizer = Tokenizer.fromObjects(files.tokenizer, files.config);
    const rng = new Rng(31);
    const report = new FuzzReport();
    for (let i = 0; i < 300; i++) {
      const path = join(dir, `case-${i}.jsonl`);
      const lines = RECORDS.map((r) => JSON.stringify(r));
      const at = rng.int(lines.length);
      let what: string;
      let bytes: Uint8Array | null = null;
      switch (i % 6) {
        case 0:
        case 1: {
          const target = rng.pick(jsonPaths(RECORDS[at]));
          const value = rng.int(6) === 0 ? undefined : hostileValue(rng);
          lines[at] = JSON.stringify(withValueAt(RECORDS[at], target, value));
          what = `line ${at + 1} ${JSON.stringify(target)} := ${(JSON.stringify(value) ?? 'deleted').slice(0, 40)}`;
          break;
        }
        case 2: {
          const line = lines[at]!;
          const m = rng.pick([...line.matchAll(/"[^"]*"|\d+|\[|\{/g)]);
          const replacement = rng.pick([
            hostileLiteral(rng),
            deepJsonText(rng),
            '"\\ud800"',
            '"\\u0000"',
            '',
          ]);
          lines[at] = line.slice(0, m.index) + replacement + line.slice(m.index! + m[0].length);
          what = `line ${at + 1} token ${m[0].slice(0, 20)} := ${replacement.slice(0, 20)}`;
          break;
        }
        case 3: {
          const line = lines[at]!;
          const key = rng.pick(Object.keys(RECORDS[at]!));
          lines[at] = line.replace(
            /\}$/,
            `,${JSON.stringify(key)}:${JSON.stringify(hostileValue(rng)) ?? 'null'}}`,
          );
          what = `line ${at + 1} duplicate ${key}`;
          break;
        }
        case 4: {
          const cut = rng.int(lines[at]!.length);
          lines[at] = lines[at]!.slice(0, cut);
          what = `line ${at + 1} cut at ${cut}`;
          break;
        }
        default: {
          const mutated = mutateBytes(Buffer.from(lines.join('\n')), rng);
          bytes = mutated.bytes;
          what = mutated.what;
        }
      }
      writeFileSync(path, bytes ?? lines.join('\n'));
      const onBadRecord = rng.int(2) === 0 ? 'error' : 'skip';
      report.run(`case ${i} ${onBadRecord} (${what})`, [path], () => {
        try {
          loadDataset(path, tokenizer, { onBadRecord, maxLength: 48, report: () => {} });
        } catch (error) {
          // A record's error names its line too.
          if (error instanceof DataError && !/:\d+: /.test(error.message))
            throw new Error(`no line: ${error.message}`);
          throw error;
        }
      });
    }
    report.check(100);
  });
});
