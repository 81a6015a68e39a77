import assert from 'node:assert/strict';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, describe, it } from 'node:test';
import { ConfigError, DataError, UsageError } from '../../../src/errors.ts';
import {
  labelIsCorrect,
  type Prediction,
  predictionLine,
  readEvalRecords,
  readPredictions,
  selectScores,
  writePredictionsFile,
} from '../../../src/uq/index.ts';

const tmp = mkdtempSync(join(tmpdir(), 'attune-predictions-'));
after(() => rmSync(tmp, { recursive: true, force: true }));

function prediction(over: Partial<Prediction> = {}): Prediction {
  return {
    prompt: 'Q',
    reference: 'a',
    answer: 'a',
    correct: true,
    scores: { msp: 0.1, log_perplexity: 0.2 },
    confidence: 0.9,
    logprobs: [-0.1],
    extra: { split: 'known' },
    ...over,
  };
}

describe('prediction files', () => {
  it('writes one line per prediction with the eval keys, refusing to replace one without overwrite', () => {
    const path = join(tmp, 'predictions.jsonl');
    writePredictionsFile(path, [prediction(), prediction({ answer: 'b', correct: false })]);
    const lines = readFileSync(path, 'utf8')
      .trimEnd()
      .split('\n')
      .map((l) => JSON.parse(l));
    assert.deepEqual(Object.keys(lines[0]), [
      'prompt',
      'reference',
      'answer',
      'correct',
      'confidence',
      'msp',
      'log_perplexity',
      'split',
    ]);
    assert.equal(lines[1].correct, false);
    assert.throws(
      () => writePredictionsFile(path, [prediction()]),
      (e: unknown) =>
        e instanceof ConfigError && /predictions\.jsonl already exists \(pass --overwrite/.test(e.message),
    );
    assert.equal(readFileSync(path, 'utf8').trimEnd().split('\n').length, 2, 'the old file is untouched');
    writePredictionsFile(path, [prediction()], { overwrite: true });
    assert.equal(readFileSync(path, 'utf8').trimEnd().split('\n').length, 1);
    assert.deepEqual(predictionLine(prediction()).msp, 0.1);
  });

  it('reads a label and a score per line; bad lines name file:line', () => {
    const path = join(tmp, 'mine.jsonl');
    writeFileSync(path, '{"ok": true, "p": 0.8}\n\n{"ok": "false", "p": 0.3}\n');
    assert.deepEqual(readPredictions(path, 'ok', 'p', 'confidence'), {
      correct: [true, false],
      scores: [0.8, 0.3],
    });
    writeFileSync(path, '{"ok": true, "p": 1.5}\n');
    assert.throws(
      () => readPredictions(path, 'ok', 'p', 'confidence'),
      (e: unknown) =>
        e instanceof DataError &&
        /:1: field "p": expected a confidence in \[0, 1\], found 1.5/.test(e.message),
    );
    assert.deepEqual(readPredictions(path, 'ok', 'p', 'uncertainty').scores, [1.5]);
    assert.equal(labelIsCorrect('0'), false);
    assert.equal(labelIsCorrect(1), true);
  });

  it('selectScores keeps the named scores and names the available ones otherwise', () => {
    const ps = [prediction(), prediction()];
    selectScores(ps, ['msp']);
    assert.deepEqual(Object.keys(ps[1]!.scores), ['msp']);
    assert.throws(
      () => selectScores([prediction()], ['msp', 'nope']),
      (e: unknown) =>
        e instanceof UsageError &&
        e.message === '--scores: unknown score(s) nope (available: msp, log_perplexity)',
    );
  });
});

describe('readEvalRecords', () => {
  it("a training record ({prompt, completion}) is told the eval format: missing field 'answer'", () => {
    const path = join(tmp, 'train-shaped.jsonl');
    writeFileSync(path, '{"prompt": "Q1", "answer": "a"}\n{"prompt": "Q2", "completion": " b"}\n');
    assert.throws(
      () => readEvalRecords(path),
      (e: unknown) =>
        e instanceof DataError &&
        e.message ===
          `${path}:2: missing field 'answer' (eval records are {prompt, answer}); found 'completion', which is for training data`,
    );
    writeFileSync(path, '{"prompt": "Q"}\n');
    assert.throws(
      () => readEvalRecords(path),
      /:1: missing field 'answer' \(eval records are \{prompt, answer\}\)$/,
    );
    writeFileSync(path, '{"prompt": "Q", "answer": 3}\n');
    assert.throws(() => readEvalRecords(path), /:1: field 'answer' must be a string, found number/);
  });
});
