/**
 * Fuzzed model folders: config.json, generation_config.json, tokenizer.json and
 * tokenizer_config.json mutated (fields replaced by wrong types, huge / negative / fractional sizes,
 * NaN and Infinity literals, deep nesting, duplicate keys, truncation, invalid UTF-8). Loading the
 * model (and encoding / decoding with its tokenizer) either works or throws a one-line AttuneError
 * naming the file.
 */
import { copyFileSync, cpSync, mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { after, describe, it } from 'node:test';
import { Tokenizer } from '../../../src/io/tokenizer.ts';
import { loadModel } from '../../../src/models/load.ts';
import { testModelDir } from '../../helpers/models-env.ts';
import { writeTinyModel } from '../../helpers/tiny-run.ts';
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

/** The JSON text of `value` mutated one of several ways (`what` says how). */
function mutateJson(
  value: unknown,
  rng: Rng,
  paths: (string | number)[][],
): { text: Uint8Array; what: string } {
  const text = JSON.stringify(value, null, 2);
  switch (rng.int(6)) {
    case 5: {
      // A value replaced by nesting deeper than any recursive walker survives.
      const values = [...text.matchAll(/(?<=: )("[^"]*"|-?\d[\d.e-]*|true|false|null)/g)];
      const m = rng.pick(values);
      const deep = deepJsonText(rng);
      return {
        text: Buffer.from(text.slice(0, m.index) + deep + text.slice(m.index! + m[0].length)),
        what: `value at ${m.index} := nesting ${deep.length / 2}`,
      };
    }
    case 0:
    case 1: {
      const target = rng.pick(paths);
      const replacement = rng.int(8) === 0 ? undefined : hostileValue(rng);
      const what = `${JSON.stringify(target)} := ${(JSON.stringify(replacement) ?? 'deleted').slice(0, 40)}`;
      return { text: Buffer.from(JSON.stringify(withValueAt(value, target, replacement))), what };
    }
    case 2: {
      const numbers = [...text.matchAll(/(?<=: )-?\d+(\.\d+)?(e-?\d+)?/g)];
      if (numbers.length === 0) return { text: Buffer.from(text), what: 'unchanged' };
      const m = rng.pick(numbers);
      const literal = hostileLiteral(rng);
      return {
        text: Buffer.from(text.slice(0, m.index) + literal + text.slice(m.index! + m[0].length)),
        what: `number ${m[0]} := ${literal}`,
      };
    }
    case 3: {
      // A key repeated with a hostile value (JSON.parse keeps the last, as Python's json does).
      const target = rng.pick(paths.filter((p) => p.length === 1));
      const dup = `${JSON.stringify(String(target[0]))}: ${JSON.stringify(hostileValue(rng)) ?? 'null'}`;
      return { text: Buffer.from(text.replace(/\}\s*$/, `, ${dup}}`)), what: `duplicate ${target[0]}` };
    }
    default: {
      const { bytes, what } = mutateBytes(Buffer.from(text), rng);
      return { text: bytes, what };
    }
  }
}

describe('fuzzed model files', () => {
  it('config.json and generation_config.json: 120 mutations, typed errors naming the file', () => {
    const base = join(dir, 'tiny');
    writeTinyModel(base, { hidden: 16, layers: 1 });
    const config = JSON.parse(readFileSync(join(base, 'config.json'), 'utf8'));
    const generation = { bos_token_id: 256, eos_token_id: [257, 258], max_new_tokens: 10 };
    const rng = new Rng(11);
    const report = new FuzzReport();
    for (let i = 0; i < 120; i++) {
      const folder = join(dir, `model-${i}`);
      cpSync(base, folder, { recursive: true });
      const generationCase = i % 4 === 3;
      const file = join(folder, generationCase ? 'generation_config.json' : 'config.json');
      const value = generationCase ? generation : config;
      const { text, what } = mutateJson(value, rng, jsonPaths(value));
      writeFileSync(file, text);
      report.run(`case ${i} ${file} (${what})`, [folder], () => loadModel(folder));
    }
    report.check(50);
  });

  it('tokenizer.json and tokenizer_config.json: 120 mutations, typed errors naming the file', (t) => {
    const model = testModelDir('tinystories-656k');
    if (model.skip !== false) return t.skip(model.skip);
    const tokenizerJson = JSON.parse(readFileSync(join(model.dir, 'tokenizer.json'), 'utf8'));
    const tokenizerConfig = JSON.parse(readFileSync(join(model.dir, 'tokenizer_config.json'), 'utf8'));
    tokenizerConfig.chat_template =
      "{% for m in messages %}{{ m['role'] + ': ' + m['content'] }}{% endfor %}";
    // Paths worth mutating: the structure, not 2048 vocabulary entries one by one.
    const tokenizerPaths = jsonPaths(tokenizerJson).filter((p) => p[0] !== 'model' || p.length <= 3);
    const rng = new Rng(12);
    const report = new FuzzReport();
    for (let i = 0; i < 120; i++) {
      const folder = join(dir, `tokenizer-${i}`);
      mkdirSync(folder);
      const configCase = i % 3 === 2;
      const { text, what } = configCase
        ? mutateJson(tokenizerConfig, rng, jsonPaths(tokenizerConfig))
        : mutateJson(tokenizerJson, rng, tokenizerPaths);
      if (configCase) {
        copyFileSync(join(model.dir, 'tokenizer.json'), join(folder, 'tokenizer.json'));
        writeFileSync(join(folder, 'tokenizer_config.json'), text);
      } else {
        writeFileSync(join(folder, 'tokenizer.json'), text);
        writeFileSync(join(folder, 'tokenizer_config.json'), JSON.stringify(tokenizerConfig));
      }
      report.run(
        `case ${i} ${configCase ? 'tokenizer_config' : 'tokenizer'}.json (${what})`,
        [folder],
        () => {
          const tokenizer = Tokenizer.fromDir(folder);
          const ids = tokenizer.encode('Once upon a time, Lily found a <|end_story|> ball. ü 🙂');
          tokenizer.decode(ids);
          tokenizer.decode(ids, { skipSpecialTokens: true });
          tokenizer.encodeContinuation(' a small');
          if (tokenizer.chatTemplate !== null) tokenizer.encodeChat([{ role: 'user', content: 'Hi' }]);
        },
      );
    }
    report.check(30);
  });
});
