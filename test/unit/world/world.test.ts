import assert from 'node:assert/strict';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, describe, it } from 'node:test';
import { ConfigError, DataError } from '../../../src/errors.ts';
import { writeTextAtomic } from '../../../src/io/atomic.ts';
import {
  BIRTH_YEARS,
  type EvalRecord,
  extractAnswer,
  generateWorld,
  gradeAnswer,
  mixEvalSplits,
  type Person,
  QUESTION_TEMPLATES,
  RELATIONS,
  readEvalRecords,
  relationValue,
  renderWorld,
  validateWorldOptions,
  WORLD_FILES,
  type World,
  writeWorld,
} from '../../../src/world/index.ts';

const tmp = mkdtempSync(join(tmpdir(), 'attune-world-'));
after(() => rmSync(tmp, { recursive: true, force: true }));

function readFiles(dir: string): Record<string, string> {
  return Object.fromEntries(WORLD_FILES.map((f) => [f, readFileSync(join(dir, f), 'utf8')]));
}

function jsonl<T>(text: string): T[] {
  return text
    .split('\n')
    .filter((l) => l !== '')
    .map((l) => JSON.parse(l) as T);
}

/** Whether the full name occurs as whole words in `text`. */
function mentions(text: string, name: string): boolean {
  return new RegExp(`(^|[^A-Za-z])${name}($|[^A-Za-z])`).test(text);
}

// One world written once, shared by the read-only checks below.
const dirA = join(tmp, 'a');
const written = writeWorld(generateWorld({ seed: 1 }), dirA);
const files = readFiles(dirA);
const world = JSON.parse(files['world.json']!) as World;
const bySplit = (split: Person['split']) => world.people.filter((p) => p.split === split);

describe('world: determinism', () => {
  it('the same seed gives byte-identical files; another seed gives different ones', () => {
    writeWorld(generateWorld({ seed: 1 }), join(tmp, 'a2'));
    const again = readFiles(join(tmp, 'a2'));
    for (const f of WORLD_FILES) assert.equal(again[f], files[f], `${f} differs between two runs`);
    writeWorld(generateWorld({ seed: 2 }), join(tmp, 'b'));
    const other = readFiles(join(tmp, 'b'));
    for (const f of WORLD_FILES) assert.notEqual(other[f], files[f], `${f} is the same for seeds 1 and 2`);
  });

  it('world.json round-trips to the generated world', () => {
    assert.deepEqual(world, generateWorld({ seed: 1 }));
    assert.equal(world.options.seed, 1);
  });
});

describe('world: people and places', () => {
  it('has unique names and consistent facts', () => {
    const names = world.people.map((p) => p.name);
    assert.equal(new Set(names).size, names.length, 'full names are unique');
    const cities = new Set(world.cities.map((c) => c.name));
    const places = new Set([...cities, ...world.countries, ...world.employers]);
    for (const p of world.people) {
      assert.equal(p.name, `${p.firstName} ${p.lastName}`);
      assert.match(p.name, /^[A-Z][a-z]{3,5} [A-Z][a-z]{3,5}$/);
      assert.ok(!places.has(p.firstName) && !places.has(p.lastName), `${p.name} reuses a place name`);
      assert.ok(p.birthYear >= BIRTH_YEARS.first && p.birthYear <= BIRTH_YEARS.last);
      assert.ok(cities.has(p.birthCity) && cities.has(p.livesIn));
      assert.notEqual(p.birthCity, p.livesIn);
      assert.ok(world.professions.includes(p.profession));
      assert.ok(world.employers.includes(p.employer));
      assert.ok(world.hobbies.includes(p.hobby));
      const sibling = world.people.find((q) => q.name === p.sibling);
      assert.ok(sibling, `${p.name}'s sibling ${p.sibling} exists`);
      assert.equal(sibling.sibling, p.name, 'siblings are symmetric');
      assert.equal(sibling.split, p.split, 'siblings share a split');
      assert.equal(sibling.lastName, p.lastName);
    }
    const lastNames = world.people.map((p) => p.lastName);
    assert.equal(new Set(lastNames).size, lastNames.length / 2, 'one family name per sibling pair');
    for (const city of world.cities) assert.ok(world.countries.includes(city.country));
    for (const country of world.countries) assert.ok(world.cities.some((c) => c.country === country));
    assert.deepEqual(
      [bySplit('known').length, bySplit('taught').length, bySplit('unknown').length],
      [40, 30, 30],
    );
  });

  it('rejects bad options with a ConfigError', () => {
    assert.throws(() => generateWorld({ seed: 1, knownPeople: 3 }), ConfigError);
    assert.throws(() => generateWorld({ seed: -1 }), ConfigError);
    assert.throws(() => generateWorld({ seed: 1, cities: 1 }), ConfigError);
    assert.throws(
      () => validateWorldOptions({ ...generateWorld({ seed: 1 }).options, oodQuestions: 0 }),
      ConfigError,
    );
  });

  it('honours custom sizes', () => {
    const small = generateWorld({
      seed: 9,
      knownPeople: 4,
      taughtPeople: 2,
      unknownPeople: 2,
      oodQuestions: 5,
    });
    const r = renderWorld(small);
    assert.deepEqual(
      [r.eval.known.length, r.eval.taught.length, r.eval.unknown.length, r.eval.ood.length],
      [4 * RELATIONS.length, 2 * RELATIONS.length, 2 * RELATIONS.length, 5],
    );
  });
});

describe('world: splits are disjoint', () => {
  const pretrainTexts = jsonl<{ text: string }>(files['pretrain.jsonl']!).map((r) => r.text);
  const finetune = jsonl<{ text?: string; prompt?: string; completion?: string }>(files['finetune.jsonl']!);
  const finetuneText = finetune.map((r) => r.text ?? `${r.prompt}${r.completion}`).join('\n\n');
  const corpus = files['corpus.txt']!;

  it('corpus.txt is the pretrain.jsonl documents separated by blank lines', () => {
    assert.equal(corpus, `${pretrainTexts.join('\n\n')}\n`);
    for (const doc of pretrainTexts) {
      assert.ok(doc.length > 0 && !doc.includes('\n\n'), 'documents hold no blank line');
    }
    assert.equal(pretrainTexts.length, written.counts.pretrainDocuments);
  });

  it('known people only in pretraining, taught people only in fine-tuning, unknown people nowhere', () => {
    for (const p of bySplit('known')) {
      assert.ok(mentions(corpus, p.name), `${p.name} (known) is in the corpus`);
      assert.ok(!mentions(finetuneText, p.name), `${p.name} (known) is not in finetune`);
    }
    for (const p of bySplit('taught')) {
      assert.ok(!mentions(corpus, p.name), `${p.name} (taught) is not in the corpus`);
      assert.ok(!mentions(corpus, p.lastName), `${p.lastName} (taught family) is not in the corpus`);
      assert.ok(mentions(finetuneText, p.name), `${p.name} (taught) is in finetune`);
    }
    for (const p of bySplit('unknown')) {
      for (const [what, text] of [
        ['corpus.txt', corpus],
        ['pretrain.jsonl', files['pretrain.jsonl']!],
        ['finetune.jsonl', files['finetune.jsonl']!],
      ] as const) {
        assert.ok(!mentions(text, p.name), `${p.name} (unknown) is not in ${what}`);
        assert.ok(!mentions(text, p.lastName), `${p.lastName} (unknown family) is not in ${what}`);
      }
    }
  });

  it('held-out paraphrases and arithmetic appear in no training text', () => {
    for (const name of ['known', 'taught']) {
      for (const record of jsonl<EvalRecord>(files[`eval_${name}.jsonl`]!)) {
        const question = record.paraphrase.replace(/\nA:$/, '');
        assert.ok(!corpus.includes(question) && !finetuneText.includes(question), question);
      }
    }
    assert.ok(!/ plus | minus /.test(corpus) && !/ plus | minus /.test(finetuneText));
  });

  it('fine-tuning teaches every taught fact in the evaluation prompt format', () => {
    const pairs = new Map(
      finetune.filter((r) => r.prompt !== undefined).map((r) => [r.prompt!, r.completion!]),
    );
    const taught = jsonl<EvalRecord>(files['eval_taught.jsonl']!);
    for (const record of taught) assert.equal(pairs.get(record.prompt), ` ${record.answer}`, record.prompt);
    assert.equal(pairs.size, written.counts.finetuneRecords.qa, 'no duplicate prompts');
    assert.equal(written.counts.finetuneRecords.text, 30 * world.options.finetuneBiographies);
  });

  it('the corpus holds the QA lines of every known fact', () => {
    for (const record of jsonl<EvalRecord>(files['eval_known.jsonl']!)) {
      assert.ok(pretrainTexts.includes(`${record.prompt} ${record.answer}`), record.prompt);
    }
  });
});

describe('world: evaluation splits', () => {
  const splits = {
    known: readEvalRecords(join(dirA, 'eval_known.jsonl')),
    taught: readEvalRecords(join(dirA, 'eval_taught.jsonl')),
    unknown: readEvalRecords(join(dirA, 'eval_unknown.jsonl')),
    ood: readEvalRecords(join(dirA, 'eval_ood.jsonl')),
  };
  const mixed = readEvalRecords(join(dirA, 'eval_mixed.jsonl'));

  it('each split has at least 200 questions, each of its own split', () => {
    for (const [split, records] of Object.entries(splits)) {
      assert.ok(records.length >= 200, `${split}: ${records.length} questions`);
      for (const r of records) assert.equal(r.split, split);
      assert.equal(new Set(records.map((r) => r.prompt)).size, records.length, `${split} prompts are unique`);
    }
  });

  it('every answer agrees with world.json', () => {
    const people = new Map(world.people.map((p) => [p.name, p]));
    for (const split of ['known', 'taught', 'unknown'] as const) {
      for (const r of splits[split]) {
        const person = people.get(r.entity);
        assert.ok(person && person.split === split, `${r.entity} is a ${split} person`);
        const relation = r.relation as (typeof RELATIONS)[number];
        assert.equal(r.answer, relationValue(person, relation));
        assert.equal(
          r.prompt,
          `Q: ${QUESTION_TEMPLATES[relation].canonical.replace('{name}', r.entity)}\nA:`,
        );
        assert.equal(
          r.paraphrase,
          `Q: ${QUESTION_TEMPLATES[relation].heldOut.replace('{name}', r.entity)}\nA:`,
        );
        assert.equal(r.answerable, split !== 'unknown');
      }
    }
    for (const r of splits.ood) {
      const [a, op, b] = r.entity.split(' ');
      assert.equal(Number(r.answer), op === 'plus' ? Number(a) + Number(b) : Number(a) - Number(b));
      assert.ok(Number(r.answer) > 0);
      assert.equal(r.relation, op);
      assert.equal(r.prompt, `Q: What is ${r.entity}?\nA:`);
    }
  });

  it('eval_mixed interleaves known, taught and unknown round-robin', () => {
    assert.deepEqual(mixed, mixEvalSplits([splits.known, splits.taught, splits.unknown]));
    assert.deepEqual(
      mixed.slice(0, 3).map((r) => r.split),
      ['known', 'taught', 'unknown'],
    );
    assert.equal(mixed.length, splits.known.length + splits.taught.length + splits.unknown.length);
  });
});

describe('world: grading', () => {
  it('grades the trimmed first line by exact match; unknown questions are always wrong', () => {
    assert.equal(extractAnswer(' Lunde\nQ: next'), 'Lunde');
    assert.equal(extractAnswer('  1972  '), '1972');
    const record = { answer: 'Lunde', answerable: true };
    assert.ok(gradeAnswer(record, ' Lunde'));
    assert.ok(gradeAnswer(record, ' Lunde\nQ: Where'));
    assert.ok(!gradeAnswer(record, ' Lundee'));
    assert.ok(!gradeAnswer(record, ' lunde'));
    assert.ok(!gradeAnswer({ answer: 'Lunde', answerable: false }, ' Lunde'));
  });

  it('readEvalRecords names the file and line of a bad record', () => {
    const path = join(tmp, 'bad.jsonl');
    writeTextAtomic(path, `${files['eval_ood.jsonl']!.split('\n')[0]}\n{"prompt": 1}\n`);
    assert.throws(
      () => readEvalRecords(path),
      (e: unknown) => e instanceof DataError && e.line === 2,
    );
  });
});
