// The corrupted-data world: exact fractions, wrong values drawn from the world, malformed lines a
// reader rejects, the truth file round trip, curation scoring, and the labelling oracle's count.
import assert from 'node:assert/strict';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, describe, it } from 'node:test';
import { parseJsonl } from '../../../src/data/index.ts';
import { ConfigError, DataError } from '../../../src/errors.ts';
import {
  corruptQaRecords,
  relationCandidates,
  renderCorruptedFinetuneSet,
  renderTaughtQa,
} from '../../../src/world/corrupt.ts';
import { scoreCuration } from '../../../src/world/corrupt-score.ts';
import {
  readCorruptionTruth,
  readWorldDir,
  truthPathFor,
  writeCorruptedSet,
} from '../../../src/world/corrupt-write.ts';
import { generateWorld, relationValue } from '../../../src/world/generate.ts';
import { LabelsOracle, renderQuestionPool, WorldOracle } from '../../../src/world/oracle.ts';
import { writeWorld } from '../../../src/world/write.ts';

const work = mkdtempSync(join(tmpdir(), 'attune-corrupt-'));
after(() => rmSync(work, { recursive: true, force: true }));
const world = generateWorld({ seed: 4 });

describe('corrupted fine-tuning set', () => {
  it('corrupts exactly the fraction asked, with wrong values of the same relation from the world', () => {
    const set = renderCorruptedFinetuneSet(world, { seed: 1, corruptFraction: 0.3, malformedFraction: 0.1 });
    const clean = renderTaughtQa(world);
    assert.equal(set.lines.length, clean.length);
    assert.equal(clean.length, 30 * 7);
    const by = (s: string) => set.truth.filter((t) => t.status === s);
    assert.equal(by('corrupted').length, Math.round(0.3 * 210));
    assert.equal(by('malformed').length, Math.round(0.1 * 210));
    for (const t of by('corrupted')) {
      const record = JSON.parse(set.lines[t.line - 1]!);
      assert.equal(record.completion, ` ${t.given}`);
      assert.notEqual(t.given, t.answer);
      assert.ok(relationCandidates(world, t.relation).includes(t.given!));
      const person = world.people.find((p) => p.name === t.entity)!;
      assert.equal(t.answer, relationValue(person, t.relation));
    }
    for (const t of by('clean')) {
      const { prompt, completion } = clean[t.line - 1]!;
      assert.equal(set.lines[t.line - 1], JSON.stringify({ prompt, completion }));
    }
    // every malformed line is rejected by the data reader or has an empty prompt
    const parsed = parseJsonl(set.lines.join('\n'), 'noisy.jsonl', { onBadRecord: 'skip' });
    const emptyPrompts = parsed.records.filter(
      (r) => r.shape === 'prompt_completion' && r.prompt === '',
    ).length;
    assert.equal(parsed.skipped.length + emptyPrompts, by('malformed').length);
    assert.ok(emptyPrompts > 0 && parsed.skipped.length > 0);
  });

  it('is a pure function of the seed', () => {
    const a = renderCorruptedFinetuneSet(world, { seed: 9, corruptFraction: 0.3 });
    const b = renderCorruptedFinetuneSet(world, { seed: 9, corruptFraction: 0.3 });
    const c = renderCorruptedFinetuneSet(world, { seed: 10, corruptFraction: 0.3 });
    assert.deepEqual(a, b);
    assert.notDeepEqual(a.truth, c.truth);
    assert.equal(
      renderCorruptedFinetuneSet(world, { seed: 9, corruptFraction: 0 }).truth.every(
        (t) => t.status === 'clean',
      ),
      true,
    );
    assert.equal(renderTaughtQa(world, 'training').length, 210 * 3);
  });

  it('rejects bad options with the field named', () => {
    assert.throws(
      () => renderCorruptedFinetuneSet(world, { seed: 1, corruptFraction: 1.2 }),
      /corruptFraction must be a number in 0\.\.1, found 1\.2/,
    );
    assert.throws(
      () => renderCorruptedFinetuneSet(world, { seed: 1, corruptFraction: 0.7, malformedFraction: 0.5 }),
      ConfigError,
    );
    assert.throws(
      () =>
        corruptQaRecords(
          world,
          [{ prompt: 'Q', completion: ' x', entity: 'Nobody Here', relation: 'hobby' }],
          { seed: 0, corruptFraction: 0 },
        ),
      /not in the world/,
    );
  });

  it('writes the data and its truth beside it, and reads the truth back', () => {
    const set = renderCorruptedFinetuneSet(world, { seed: 2, corruptFraction: 0.2, malformedFraction: 0.05 });
    const path = join(work, 'noisy.jsonl');
    const written = writeCorruptedSet(set, path);
    assert.equal(written.truth, join(work, 'noisy.truth.jsonl'));
    assert.equal(truthPathFor('x.txt'), 'x.txt.truth.jsonl');
    assert.equal(readFileSync(path, 'utf8'), `${set.lines.join('\n')}\n`);
    assert.deepEqual(readCorruptionTruth(written.truth), set.truth);
    const bad = join(work, 'bad.truth.jsonl');
    writeCorruptedSet(
      { lines: [], truth: [{ ...set.truth[0]!, status: 'corrupted', given: undefined }] },
      join(work, 'bad.jsonl'),
    );
    assert.throws(
      () => readCorruptionTruth(bad),
      (e: unknown) =>
        e instanceof DataError &&
        /bad\.truth\.jsonl:1: a corrupted line needs field 'given'/.test((e as Error).message),
    );
  });

  it('reads a world folder back as the same world', () => {
    writeWorld(world, join(work, 'w'));
    assert.deepEqual(readWorldDir(join(work, 'w')), world);
    assert.throws(() => readWorldDir(work), /world\.json: file not found/);
  });
});

describe('scoring a curation', () => {
  it('counts caught, lost and rightly corrected records by hand', () => {
    const base = { entity: 'A B', relation: 'hobby' as const, answer: 'chess' };
    const truth = [
      { ...base, line: 1, status: 'clean' as const },
      { ...base, line: 2, status: 'corrupted' as const, given: 'golf' },
      { ...base, line: 3, status: 'corrupted' as const, given: 'golf' },
      { ...base, line: 4, status: 'corrupted' as const, given: 'golf' },
      { ...base, line: 5, status: 'clean' as const },
      { ...base, line: 6, status: 'malformed' as const, defect: 'truncated_json' as const },
    ];
    const s = scoreCuration(truth, [
      { line: 1, action: 'keep' },
      { line: 2, action: 'remove' },
      { line: 3, action: 'correct', corrected: ' chess' },
      // line 4 has no decision: kept, still wrong
      { line: 5, action: 'remove' },
      { line: 6, action: 'remove' },
    ]);
    assert.equal(s.caught, 2);
    assert.equal(s.cleanTouched, 1);
    assert.equal(s.precision, 2 / 3);
    assert.equal(s.recall, 2 / 3);
    assert.equal(s.correctionsRight, 1);
    assert.equal(s.malformedRemoved, 1);
    // left: lines 1 (right), 3 (corrected right), 4 (wrong) -> 1 / 3
    assert.equal(s.residualNoise, 1 / 3);
    assert.equal(s.detectionAuroc, null, 'no confidences given');
    // confidences: clean 0.9, 0.5; corrupted 0.1, 0.5, 0.95 -> doubt ranks: of the 2 x 3 pairs
    // (corrupted more doubtful than clean) 0.1 beats both, 0.5 ties 0.5 (1/2) and beats 0.9, 0.95 none
    const conf = [0.9, 0.1, 0.5, 0.95, 0.5, null];
    const withConf = scoreCuration(
      truth,
      truth.map((t, i) => ({ line: t.line, action: 'keep' as const, confidence: conf[i] })),
    );
    assert.ok(Math.abs(withConf.detectionAuroc! - 3.5 / 6) < 1e-12);
  });
});

describe('question pool and labelling oracle', () => {
  it('lists every taught question unlabeled and answers each for one counted call', () => {
    const pool = renderQuestionPool(world, { seed: 3 });
    assert.equal(pool.length, 30 * 7 * 3);
    assert.equal(new Set(pool.map((q) => q.id)).size, pool.length);
    assert.ok(!('answer' in pool[0]!));
    assert.notDeepEqual(pool, renderQuestionPool(world, { seed: 4 }));
    const oracle = new WorldOracle(world);
    for (const q of pool.slice(0, 5)) {
      const person = world.people.find((p) => p.name === q.entity)!;
      assert.equal(oracle.label(q), relationValue(person, q.relation));
    }
    assert.equal(oracle.calls, 5);
    assert.throws(() => oracle.label({ id: 'Nobody|hobby|0' }), /names no person and relation/);
    assert.equal(oracle.calls, 5, 'a refused question costs nothing');
    const labels = new LabelsOracle(new Map([[pool[0]!.id, 'x']]));
    assert.equal(labels.label(pool[0]!), 'x');
    assert.throws(() => labels.label(pool[1]!), /no label for question/);
    assert.equal(labels.calls, 1);
  });
});
