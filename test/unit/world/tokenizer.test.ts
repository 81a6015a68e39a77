// The world tokenizer: a WordPiece tokenizer.json over the world's closed vocabulary that the
// library loads, with no unknown token anywhere in the world's files, whole-word tokens for the
// world's words and invented names spelled letter by letter.
import assert from 'node:assert/strict';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, describe, it } from 'node:test';
import { Tokenizer } from '../../../src/io/tokenizer.ts';
import { WORLD_BASE_WORLD } from '../../../src/world/base.ts';
import { generateWorld } from '../../../src/world/generate.ts';
import { worldVocabulary, writeWorldTokenizer } from '../../../src/world/tokenizer.ts';
import { WORLD_FILES, writeWorld } from '../../../src/world/write.ts';

const work = mkdtempSync(join(tmpdir(), 'attune-world-tok-'));
after(() => rmSync(work, { recursive: true, force: true }));
const world = generateWorld({ seed: 5, knownPeople: 6, taughtPeople: 6, unknownPeople: 6, oodQuestions: 20 });
writeWorld(world, work);
const texts = WORLD_FILES.filter((f) => f !== 'world.json').map((f) => readFileSync(join(work, f), 'utf8'));
const size = writeWorldTokenizer(world, texts, join(work, 'tok'));
const tok = Tokenizer.fromDir(join(work, 'tok'));
const lines = (file: string) =>
  readFileSync(join(work, file), 'utf8')
    .split('\n')
    .filter((l) => l.trim() !== '')
    .map((l) => JSON.parse(l) as Record<string, string>);
const tokens = (text: string) => tok.encode(text, { addSpecialTokens: false }).map((id) => tok.decode([id]));

describe('world tokenizer', () => {
  it('loads as a standard tokenizer.json with the special tokens at ids 0..3', () => {
    assert.equal(tok.vocabSize, size);
    assert.equal(tok.unkTokenId, 0);
    assert.equal(tok.bosTokenId, 1);
    assert.deepEqual(tok.eosTokenIds, [2]);
    assert.equal(tok.padTokenId, 3);
  });

  it('never produces the unknown token on any line of the world files', () => {
    for (const text of texts)
      for (const line of text.split('\n'))
        assert.ok(!tok.encode(line, { addSpecialTokens: false }).includes(0), `unknown token in: ${line}`);
  });

  it('makes each word of the world one token and spells names letter by letter', () => {
    const person = world.people.find((p) => p.split === 'taught')!;
    const r = lines('eval_taught.jsonl').find((x) => x.entity === person.name && x.relation === 'birthYear')!;
    const ids = tok.encode(r.prompt, { addSpecialTokens: false });
    // Q : In what year was <first letters> <last letters> born ? A :
    assert.equal(ids.length, 10 + person.name.replace(' ', '').length, r.prompt);
    assert.equal(tok.encode(` ${r.answer}`, { addSpecialTokens: false }).length, 1, 'a year is one token');
    const vocab = worldVocabulary(world, texts);
    assert.ok(!(person.firstName in vocab), 'a first name is not a whole token');
    assert.deepEqual(tokens(person.firstName), [
      person.firstName[0],
      ...[...person.firstName.slice(1)].map((c) => `##${c}`),
    ]);
  });

  it('decodes every answer of every split back to itself', () => {
    for (const file of ['eval_known.jsonl', 'eval_taught.jsonl', 'eval_unknown.jsonl', 'eval_ood.jsonl'])
      for (const r of lines(file)) {
        const ids = tok.encode(` ${r.answer}`, { addSpecialTokens: false });
        assert.equal(tok.decode(ids), r.answer, `${file}: ${r.answer}`);
      }
  });

  it("gives taught and unknown names of the bases' world only tokens its pretraining corpus uses", () => {
    const big = generateWorld(WORLD_BASE_WORLD);
    const dir = join(work, 'big');
    writeWorld(big, dir);
    const bigTexts = WORLD_FILES.filter((f) => f !== 'world.json').map((f) =>
      readFileSync(join(dir, f), 'utf8'),
    );
    writeWorldTokenizer(big, bigTexts, join(dir, 'tok'));
    const bigTok = Tokenizer.fromDir(join(dir, 'tok'));
    const corpus = new Set(bigTok.encode(bigTexts[0]!, { addSpecialTokens: false }));
    for (const p of big.people.filter((x) => x.split !== 'known'))
      for (const id of bigTok.encode(p.name, { addSpecialTokens: false }))
        assert.ok(corpus.has(id), `${p.name}: token ${bigTok.decode([id])} is not in the corpus`);
  });

  it('is a pure function of the world and its texts', () => {
    assert.deepEqual(worldVocabulary(world, texts), worldVocabulary(world, texts));
    const vocab = worldVocabulary(world, texts);
    const ids = Object.values(vocab).sort((a, b) => a - b);
    assert.deepEqual(
      ids,
      ids.map((_, i) => i),
      'ids are dense 0..n-1',
    );
  });
});
