import assert from 'node:assert/strict';
import { readFileSync, rmSync } from 'node:fs';
import { after, describe, it } from 'node:test';
import {
  ABSTENTION_ANSWER,
  abstentionPeople,
  generateWorld,
  KNOW_UNKNOWN_INSTRUCTION,
  peopleIn,
  RELATIONS,
  relationValue,
  renderKnowUnknown,
  writeKnowUnknown,
} from '../../../src/world/index.ts';
import { tempDir } from '../../helpers/tiny-run.ts';

const root = tempDir('attune-world-ku-');
after(() => rmSync(root, { recursive: true, force: true }));
const world = generateWorld({
  seed: 3,
  knownPeople: 4,
  taughtPeople: 4,
  unknownPeople: 8,
  biographiesPerPerson: 1,
});

describe('world Know-the-Unknown data', () => {
  const data = renderKnowUnknown(world);
  const { train, heldOut } = abstentionPeople(world);
  const heldOutNames = new Set(heldOut.map((p) => p.name));

  it("stage 1: known people answered with their facts, training-half unknown people with I don't know", () => {
    const known = peopleIn(world, 'known');
    assert.equal(data.stage1.length, (known.length + train.length) * RELATIONS.length);
    for (const p of known)
      for (const r of RELATIONS) {
        const recs = data.stage1.filter(
          (x) => x.entity === p.name && x.completion === ` ${relationValue(p, r)}`,
        );
        assert.ok(recs.length >= 1, `${p.name} ${r}`);
      }
    for (const rec of data.stage1.filter((x) => x.split === 'unknown'))
      assert.equal(rec.completion, ` ${ABSTENTION_ANSWER}`);
    for (const rec of data.stage1.filter((x) => x.split !== 'unknown'))
      assert.notEqual(rec.completion, ` ${ABSTENTION_ANSWER}`);
    assert.ok(data.stage1.every((x) => x.prompt.startsWith('Q: ') && x.prompt.endsWith('\nA:')));
    assert.ok(!data.stage1.some((x) => x.split === 'taught'));
  });

  it('stage 2: taught facts plain and under the instruction, stage 1 replayed under the instruction', () => {
    const taught = data.stage2.filter((x) => x.split === 'taught');
    const plainTaught = taught.filter((x) => x.prompt.startsWith('Q: '));
    assert.equal(plainTaught.length * 2, taught.length);
    const byName = new Map(peopleIn(world, 'taught').map((p) => [p.name, p]));
    for (const rec of taught) {
      const p = byName.get(rec.entity)!;
      assert.ok(
        RELATIONS.some((r) => rec.completion === ` ${relationValue(p, r)}`),
        rec.prompt,
      );
    }
    const rest = data.stage2.filter((x) => x.split !== 'taught');
    assert.equal(rest.length, data.stage1.length);
    for (const rec of rest) assert.ok(rec.prompt.startsWith(`${KNOW_UNKNOWN_INSTRUCTION}\nQ: `), rec.prompt);
    assert.equal(data.mixed.length, data.stage1.length + plainTaught.length);
    assert.ok(!data.mixed.some((x) => x.prompt.includes(KNOW_UNKNOWN_INSTRUCTION)));
  });

  it('no held-out unknown person appears in any file', () => {
    assert.ok(heldOut.length > 0);
    const files = writeKnowUnknown(world, root);
    for (const path of [files.stage1, files.stage2, files.mixed]) {
      const text = readFileSync(path, 'utf8');
      for (const name of heldOutNames) assert.ok(!text.includes(name), `${name} in ${path}`);
      for (const line of text.trim().split('\n'))
        assert.deepEqual(Object.keys(JSON.parse(line)).sort(), ['completion', 'prompt']);
    }
    assert.equal(files.counts.stage1, data.stage1.length);
    assert.equal(readFileSync(files.stage2, 'utf8').trim().split('\n').length, data.stage2.length);
  });
});
