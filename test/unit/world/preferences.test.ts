import assert from 'node:assert/strict';
import { readFileSync, rmSync } from 'node:fs';
import { join } from 'node:path';
import { after, describe, it } from 'node:test';
import { loadPreferenceDataset } from '../../../src/data/index.ts';
import { Tokenizer, writeByteTokenizer } from '../../../src/io/index.ts';
import {
  ABSTENTION_ANSWER,
  abstentionPeople,
  generateWorld,
  isAbstention,
  peopleIn,
  RELATIONS,
  relationValue,
  renderPreferencePairs,
  writePreferencePairs,
} from '../../../src/world/index.ts';
import { tempDir } from '../../helpers/tiny-run.ts';

const root = tempDir('attune-world-pref-');
after(() => rmSync(root, { recursive: true, force: true }));
const world = generateWorld({
  seed: 3,
  knownPeople: 4,
  taughtPeople: 4,
  unknownPeople: 8,
  biographiesPerPerson: 1,
});

describe('world preference pairs', () => {
  it('abstention is "I don\'t know", however the decoder spaces it', () => {
    assert.equal(ABSTENTION_ANSWER, "I don't know");
    for (const s of [" I don't know", "I don ' t know.\nQ: more", 'i dont know'])
      assert.ok(isAbstention(s), s);
    for (const s of ['1972', "I don't know him", '', 'know']) assert.ok(!isAbstention(s), s);
  });

  it('unknown people split by family; pairs are fact vs wrong fact and abstention vs hallucination', () => {
    const { train, heldOut } = abstentionPeople(world);
    assert.equal(train.length, 4);
    assert.equal(heldOut.length, 4);
    // siblings stay on the same side, so a held-out person's family is never trained on
    for (const p of train)
      assert.ok(
        train.some((q) => q.name === p.sibling),
        p.name,
      );
    const pairs = renderPreferencePairs(world);
    assert.equal(pairs.length, (4 + 4) * RELATIONS.length);
    const taught = new Map(peopleIn(world, 'taught').map((p) => [p.name, p]));
    for (const pair of pairs) {
      assert.match(pair.prompt, /^Q: .*\nA:$/);
      assert.notEqual(pair.chosen, pair.rejected);
      if (pair.split === 'taught') {
        assert.equal(pair.chosen, ` ${relationValue(taught.get(pair.entity)!, pair.relation)}`);
      } else {
        assert.equal(pair.chosen, ` ${ABSTENTION_ANSWER}`);
        assert.ok(!heldOut.some((p) => p.name === pair.entity), 'no held-out person is in a pair');
        // the hallucination is a real value of the relation (someone else's)
        assert.ok(world.people.some((p) => ` ${relationValue(p, pair.relation)}` === pair.rejected));
      }
    }
    assert.equal(renderPreferencePairs(world, { paraphrases: true }).length, pairs.length * 3);
    assert.deepEqual(renderPreferencePairs(world), pairs, 'deterministic');
  });

  it('writes pairs that load as preference data, their SFT counterpart and the held-out questions', () => {
    const out = writePreferencePairs(world, join(root, 'pref'));
    assert.deepEqual(out.counts, { taught: 28, unknown: 28, heldOut: 28 });
    const tokDir = join(root, 'tok');
    writeByteTokenizer(tokDir);
    const set = loadPreferenceDataset(out.pairs, Tokenizer.fromDir(tokDir), { report: () => {} });
    assert.equal(set.examples.length, 2 * 56);
    const sft = readFileSync(out.sft, 'utf8')
      .trim()
      .split('\n')
      .map((l) => JSON.parse(l));
    const pairs = readFileSync(out.pairs, 'utf8')
      .trim()
      .split('\n')
      .map((l) => JSON.parse(l));
    assert.deepEqual(sft[0], { prompt: pairs[0].prompt, completion: pairs[0].chosen });
    const heldOut = readFileSync(out.heldOut, 'utf8')
      .trim()
      .split('\n')
      .map((l) => JSON.parse(l));
    assert.ok(heldOut.every((r) => r.split === 'unknown' && r.answerable === false));
  });
});
