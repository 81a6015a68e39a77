import assert from 'node:assert/strict';
import { readFileSync, rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { after, describe, it } from 'node:test';
import { ConfigError, FormatError } from '../../../../src/errors.ts';
import { loadModel } from '../../../../src/models/index.ts';
import {
  adapterIdentity,
  answerLogits,
  answerTokens,
  calibratedConfidence,
  checkFittedModel,
  checkFittedScore,
  type FittedOn,
  fileSha256,
  fitScoreCalibrator,
  loadCalibratorFile,
  modelIdentity,
  PlattCalibrator,
  referenceContinuation,
  saveCalibratorFile,
  TemperatureCalibrator,
  temperatureConfidence,
} from '../../../../src/uq/index.ts';
import { tempDir, writeTinyModel } from '../../../helpers/tiny-run.ts';
import { assertClose } from '../helpers.ts';

const root = tempDir('attune-uq-calibrate-workflow-');
after(() => rmSync(root, { recursive: true, force: true }));

const identity = (config: string, weights: string) => ({
  path: `m-${config}`,
  config_sha256: config,
  weights_fingerprint: weights,
});
const fittedOn = (over: Partial<FittedOn> = {}): FittedOn => ({
  method: 'platt',
  score: 'confidence',
  model: identity('c1', 'w1'),
  adapter: null,
  data: { path: 'heldout.jsonl', sha256: 'd1' },
  n: 10,
  ...over,
});

describe('fitted_on: refusing another model, adapter or score', () => {
  it('accepts the same model and adapter, and refuses any other', () => {
    checkFittedModel(fittedOn(), 'cal.json', identity('c1', 'w1'), null);
    assert.throws(
      () => checkFittedModel(fittedOn(), 'cal.json', identity('c2', 'w1'), null),
      (e: Error) =>
        e instanceof ConfigError &&
        /cal.json: this calibrator was fitted on the model at m-c1 \(config.json sha256 c1\), not on m-c2/.test(
          e.message,
        ),
    );
    assert.throws(
      () => checkFittedModel(fittedOn(), 'cal.json', identity('c1', 'w2'), null),
      /weights fingerprint w1/,
    );
    assert.throws(
      () => checkFittedModel(fittedOn(), 'cal.json', identity('c1', 'w1'), { path: 'ad', sha256: 'a1' }),
      /fitted on the base model without an adapter, not with the adapter ad/,
    );
    const withAdapter = fittedOn({ adapter: { path: 'ad', sha256: 'a1' } });
    checkFittedModel(withAdapter, 'cal.json', identity('c1', 'w1'), { path: 'elsewhere', sha256: 'a1' });
    assert.throws(
      () => checkFittedModel(withAdapter, 'cal.json', identity('c1', 'w1'), null),
      /pass --adapter with it/,
    );
    assert.throws(
      () => checkFittedModel(withAdapter, 'cal.json', identity('c1', 'w1'), { path: 'b', sha256: 'a2' }),
      /fitted with the adapter ad \(sha256 a1\), not with b \(sha256 a2\)/,
    );
    // fitted from a predictions file: no model to compare
    checkFittedModel(fittedOn({ model: null }), 'cal.json', identity('c9', 'w9'), { path: 'x', sha256: 'y' });
    checkFittedScore(fittedOn(), 'cal.json', 'confidence');
    assert.throws(
      () => checkFittedScore(fittedOn(), 'cal.json', 'msp'),
      /maps the score "confidence", not "msp"/,
    );
  });

  it('identifies a model by config and weights, and an adapter by its files', () => {
    const a = writeTinyModel(join(root, 'a'));
    const b = writeTinyModel(join(root, 'b'), { seed: 2 });
    const ia = modelIdentity(a);
    assert.equal(ia.config_sha256, fileSha256(join(a, 'config.json')));
    assert.deepEqual(modelIdentity(a), ia);
    const ib = modelIdentity(b);
    assert.equal(ib.config_sha256, ia.config_sha256); // same architecture
    assert.notEqual(ib.weights_fingerprint, ia.weights_fingerprint); // other weights
    assert.throws(() => adapterIdentity(a), /no adapter_config.json \(expected a PEFT adapter folder\)/);
    writeFileSync(join(root, 'adapter_config.json'), '{"r": 8}');
    writeFileSync(join(root, 'adapter_model.safetensors'), 'weights');
    const first = adapterIdentity(root).sha256;
    writeFileSync(join(root, 'adapter_model.safetensors'), 'other weights');
    assert.notEqual(adapterIdentity(root).sha256, first);
  });

  it('saves and loads a calibrator file with fitted_on, and rejects a bad fitted_on', () => {
    const path = join(root, 'cal.json');
    saveCalibratorFile(path, new PlattCalibrator(2, -1), fittedOn());
    const file = loadCalibratorFile(path);
    assert.deepEqual(file.fittedOn, fittedOn());
    assert.equal(file.calibrator.type, 'platt');
    const parsed = JSON.parse(readFileSync(path, 'utf8'));
    writeFileSync(path, JSON.stringify({ ...parsed, fitted_on: { ...parsed.fitted_on, n: 0 } }));
    assert.throws(
      () => loadCalibratorFile(path),
      (e: Error) => e instanceof FormatError && /fitted_on.n: expected an integer >= 1/.test(e.message),
    );
    // a file without fitted_on (written by the library's saveCalibrator) loads with fittedOn null
    writeFileSync(path, JSON.stringify(new PlattCalibrator(1, 0).toJSON()));
    assert.equal(loadCalibratorFile(path).fittedOn, null);
  });
});

describe('applying a calibrator to one answer', () => {
  it('maps the score it was fitted on, or the confidence', () => {
    const platt = {
      path: 'p.json',
      calibrator: new PlattCalibrator(2, -1),
      fittedOn: fittedOn({ score: 'msp' }),
    };
    const answer = {
      confidence: 0.5,
      scores: { msp: 1.5 },
      answerIds: [1],
      logits: () => assert.fail('no logits for platt'),
    };
    assertClose(calibratedConfidence(platt, answer), 1 / (1 + Math.exp(-(2 * 1.5 - 1))));
    assertClose(
      calibratedConfidence({ ...platt, fittedOn: null }, answer),
      1 / (1 + Math.exp(-(2 * 0.5 - 1))),
    );
    assert.throws(
      () => calibratedConfidence({ ...platt, fittedOn: fittedOn({ score: 'mc_entropy' }) }, answer),
      /maps the score "mc_entropy", which is not computed here \(available: confidence, msp\)/,
    );
  });

  it('temperature: exp(mean log softmax(z / T)[a]) by hand', () => {
    // two tokens over a vocabulary of 2: logits [0, ln 3] and [ln 2, 0]; answer ids [1, 0]
    const logits = { data: Float32Array.from([0, Math.log(3), Math.log(2), 0]), vocabSize: 2 };
    // T = 1: p = 3/4 and 2/3 -> sqrt(1/2)
    assertClose(temperatureConfidence(new TemperatureCalibrator(1), logits, [1, 0]), Math.sqrt(0.5), 1e-7);
    // T = 2: p = sqrt3/(1+sqrt3) and sqrt2/(1+sqrt2)
    const expected = Math.sqrt((Math.sqrt(3) / (1 + Math.sqrt(3))) * (Math.SQRT2 / (1 + Math.SQRT2)));
    assertClose(temperatureConfidence(new TemperatureCalibrator(2), logits, [1, 0]), expected, 1e-7);
    assert.equal(
      temperatureConfidence(new TemperatureCalibrator(2), { data: new Float32Array(0), vocabSize: 2 }, []),
      1,
    );
  });

  it('answerLogits agrees with the fused scoring pass', () => {
    const dir = writeTinyModel(join(root, 'logits'));
    const { model } = loadModel(dir);
    const prompt = [256, 97, 98];
    const answer = [99, 100, 101];
    const logits = answerLogits(model, prompt, answer);
    assert.equal(logits.vocabSize, 259);
    const fused = answerTokens(model, prompt, answer).logprobs;
    const viaLogits =
      Math.log(temperatureConfidence(new TemperatureCalibrator(1), logits, answer)) * answer.length;
    assertClose(
      viaLogits,
      fused.reduce((s, v) => s + v, 0),
      1e-4,
      'sum of answer log-probs',
    );
  });
});

describe('fitting helpers', () => {
  it('puts one space between a prompt and its reference unless there is whitespace already', () => {
    assert.equal(referenceContinuation({ prompt: 'Q: x\nA:', answer: 'Paris' }), ' Paris');
    assert.equal(referenceContinuation({ prompt: 'Q: x\nA: ', answer: 'Paris' }), 'Paris');
    assert.equal(referenceContinuation({ prompt: 'A:', answer: ' Paris' }), ' Paris');
    assert.equal(
      referenceContinuation({ messages: [{ role: 'user', content: 'x' }], answer: 'Paris' }),
      'Paris',
    );
  });

  it('fits isotonic increasing for a confidence and decreasing for an uncertainty', () => {
    const correct = [false, false, true, true];
    const up = fitScoreCalibrator('isotonic', [0.1, 0.2, 0.8, 0.9], correct, 'confidence');
    assert.equal(up.type === 'isotonic' && up.increasing, true);
    const down = fitScoreCalibrator('isotonic', [5, 4, 1, 0], correct, 'uncertainty');
    assert.equal(down.type === 'isotonic' && down.increasing, false);
    assert.equal((down as { apply(x: number): number }).apply(0.5), 1);
    const platt = fitScoreCalibrator('platt', [5, 4, 1, 0], correct, 'uncertainty');
    assert.ok(platt.type === 'platt' && platt.a < 0);
  });
});
