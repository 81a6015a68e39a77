// CLEAR: the keep / remove / correct rule on constructed confidences, and `curateFile` end to end
// on the small world base: a corrupted known fact is removed (or corrected), a clean one kept, the
// input untouched, bad input a file:line error before any output exists.
import assert from 'node:assert/strict';
import { existsSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, describe, it } from 'node:test';
import { DataError, UsageError } from '../../../src/errors.ts';
import { loadModel } from '../../../src/models/index.ts';
import { decideCuration, median } from '../../../src/uq/clear.ts';
import { curateFile } from '../../../src/uq/curate-file.ts';
import { openWorldBase, shippedWorldBaseDir } from '../../../src/world/base.ts';
import { renderEvalSplit } from '../../../src/world/render.ts';

const work = mkdtempSync(join(tmpdir(), 'attune-clear-'));
after(() => rmSync(work, { recursive: true, force: true }));

describe('CLEAR decisions', () => {
  it('removes below the median, keeps at or above it, corrects a confident different answer', () => {
    const judged = [
      { response: ' Lunde', confidence: 0.9, modelAnswer: 'Lunde', modelConfidence: 0.9 }, // clean, confident
      { response: ' Brenn', confidence: 0.1, modelAnswer: 'Lunde', modelConfidence: 0.6 }, // corrupted, model unsure
      { response: ' 1970', confidence: 0.05, modelAnswer: '1972', modelConfidence: 0.95 }, // corrupted, model sure
      { response: ' chess', confidence: 0.5, modelAnswer: 'chess', modelConfidence: 0.5 },
    ];
    const { decisions, cut } = decideCuration(judged);
    assert.equal(cut, median([0.9, 0.1, 0.05, 0.5]));
    assert.equal(cut, 0.3);
    assert.deepEqual(
      decisions.map((d) => d.action),
      ['keep', 'remove', 'correct', 'keep'],
    );
    assert.equal(decisions[2]!.corrected, '1972');
    assert.match(decisions[1]!.why, /confidence 0\.100 < cut 0\.300/);
    // a threshold instead of the median; a correction never fires at threshold 1
    const fixed = decideCuration(judged, { filter: 0.6, correctThreshold: 1 });
    assert.deepEqual(
      fixed.decisions.map((d) => d.action),
      ['keep', 'remove', 'remove', 'remove'],
    );
    assert.throws(() => decideCuration(judged, { filter: 2 }), UsageError);
  });

  it('median of odd and even counts', () => {
    assert.equal(median([3, 1, 2]), 2);
    assert.equal(median([4, 1, 3, 2]), 2.5);
    assert.ok(Number.isNaN(median([])));
  });
});

describe('curateFile on the small world base', () => {
  const dir = shippedWorldBaseDir('small');
  const { world } = openWorldBase(dir);
  const loaded = loadModel(dir);
  const known = renderEvalSplit(world, 'known');
  // two clean known facts, one corrupted (a wrong year), one biography-like text record
  const year = known.find((r) => r.relation === 'birthYear')!;
  const wrongYear = String(Number(year.answer) === 1999 ? 1950 : Number(year.answer) + 1);
  const lines = [
    JSON.stringify({ prompt: known[1]!.prompt, completion: ` ${known[1]!.answer}`, id: 'a' }),
    JSON.stringify({ prompt: year.prompt, completion: ` ${wrongYear}` }),
    JSON.stringify({ text: 'Some text.' }),
    JSON.stringify({ prompt: known[2]!.prompt, completion: ` ${known[2]!.answer}` }),
  ];
  const data = join(work, 'in.jsonl');
  writeFileSync(data, `${lines.join('\n')}\n`);
  const base = { k: 3, reflection: 'none' as const, eosTokenIds: loaded.eosTokenIds, data };

  it('removes the corrupted record and keeps the clean ones when correction cannot fire', () => {
    const out = join(work, 'out.jsonl');
    const reportPath = join(work, 'report.json');
    const before = readFileSync(data, 'utf8');
    let progressCalls = 0;
    const report = curateFile(loaded.model, loaded.tokenizer!, {
      ...base,
      out,
      report: reportPath,
      correctThreshold: 1,
      onProgress: () => progressCalls++,
    });
    assert.equal(progressCalls, 3);
    assert.equal(readFileSync(data, 'utf8'), before, 'the input is never modified');
    assert.deepEqual(
      report.records.map((r) => [r.line, r.action]),
      [
        [1, 'keep'],
        [2, 'remove'],
        [3, 'keep'],
        [4, 'keep'],
      ],
    );
    assert.equal(report.records[1]!.confidence, 0);
    assert.equal(report.records[1]!.modelAnswer, year.answer);
    const written = readFileSync(out, 'utf8').trimEnd().split('\n');
    assert.deepEqual(
      written,
      [lines[0], lines[2], lines[3]],
      'kept records are written as given (extra fields too)',
    );
    const onDisk = JSON.parse(readFileSync(reportPath, 'utf8'));
    assert.equal(onDisk.format, 'attune-curation-report');
    assert.deepEqual(onDisk.summary, {
      records: 4,
      kept: 3,
      removed: 1,
      corrected: 0,
      malformed: 0,
      unjudged: 1,
    });
  });

  it('corrects the corrupted record to the model answer above the threshold', () => {
    const out = join(work, 'corrected.jsonl');
    const report = curateFile(loaded.model, loaded.tokenizer!, { ...base, out });
    assert.equal(report.records[1]!.action, 'correct');
    assert.equal(report.records[1]!.corrected, ` ${year.answer}`);
    const second = JSON.parse(readFileSync(out, 'utf8').split('\n')[1]!);
    assert.deepEqual(second, { prompt: year.prompt, completion: ` ${year.answer}` });
  });

  it('bad input is a file:line error and creates no output; skip removes it', () => {
    const bad = join(work, 'bad.jsonl');
    const out = join(work, 'never.jsonl');
    writeFileSync(bad, `${lines[0]}\n{"prompt": "  ", "completion": " x"}\n`);
    assert.throws(
      () => curateFile(loaded.model, loaded.tokenizer!, { ...base, data: bad, out }),
      (e: unknown) =>
        e instanceof DataError && /bad\.jsonl:2: the prompt is empty/.test((e as Error).message),
    );
    writeFileSync(bad, `${lines[0]}\n\n{"prompt": "Q: x\\nA:", "completion`);
    assert.throws(
      () => curateFile(loaded.model, loaded.tokenizer!, { ...base, data: bad, out }),
      (e: unknown) => e instanceof DataError && /bad\.jsonl:3: invalid JSON/.test((e as Error).message),
    );
    assert.equal(existsSync(out), false);
    const report = curateFile(loaded.model, loaded.tokenizer!, {
      ...base,
      data: bad,
      out,
      onBadRecord: 'skip',
    });
    assert.deepEqual(
      report.records.map((r) => r.action),
      ['keep', 'remove'],
    );
    assert.match(report.records[1]!.why, /^malformed: invalid JSON/);
    assert.equal(report.summary.malformed, 1);
  });

  it('refuses to write over its input', () => {
    assert.throws(
      () => curateFile(loaded.model, loaded.tokenizer!, { ...base, out: data }),
      /is the input file; curate never modifies its input/,
    );
    assert.throws(
      () =>
        curateFile(loaded.model, loaded.tokenizer!, { ...base, out: join(work, 'no', 'such', 'x.jsonl') }),
      /does not exist/,
    );
  });
});
