import assert from 'node:assert/strict';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, describe, it } from 'node:test';
import { FormatError } from '../../../src/errors.ts';
import { Rng } from '../../../src/tensor/rng.ts';
import {
  calibratorFromJSON,
  fitIsotonic,
  fitPlatt,
  fitTemperature,
  IsotonicCalibrator,
  loadCalibrator,
  PlattCalibrator,
  saveCalibrator,
  TemperatureCalibrator,
  temperatureNll,
  UqInputError,
} from '../../../src/uq/index.ts';
import { assertClose } from './helpers.ts';

const tmp = mkdtempSync(join(tmpdir(), 'attune-uq-calibrate-'));
after(() => rmSync(tmp, { recursive: true, force: true }));

function argmax(values: ArrayLike<number>): number {
  let best = 0;
  for (let j = 1; j < values.length; j++) if (values[j]! > values[best]!) best = j;
  return best;
}

/**
 * Tokens whose gold ids are drawn from softmax(g) for random "true" logits g, and model logits
 * z = trueTemperature * g: the model is over-confident by exactly that factor, so the fitted T
 * should come out near trueTemperature.
 */
function syntheticTokens(seed: number, tokens: number, vocab: number, trueTemperature: number) {
  const rng = new Rng(seed);
  const rows: Float64Array[] = [];
  const labels: number[] = [];
  for (let t = 0; t < tokens; t++) {
    const g = new Float64Array(vocab);
    for (let j = 0; j < vocab; j++) g[j] = 1.5 * rng.normal();
    let max = Number.NEGATIVE_INFINITY;
    for (const v of g) max = Math.max(max, v);
    const p = g.map((v) => Math.exp(v - max));
    const total = p.reduce((a, b) => a + b, 0);
    let u = rng.uniform() * total;
    let label = vocab - 1;
    for (let j = 0; j < vocab; j++) {
      u -= p[j]!;
      if (u < 0) {
        label = j;
        break;
      }
    }
    rows.push(g.map((v) => v * trueTemperature));
    labels.push(label);
  }
  return { rows, labels };
}

describe('fitTemperature', () => {
  const { rows, labels } = syntheticTokens(7, 20000, 8, 2.5);

  it('recovers a known temperature within 2% and never changes the argmax', () => {
    const calibrator = fitTemperature(rows, labels);
    assert.ok(
      Math.abs(calibrator.temperature / 2.5 - 1) < 0.02,
      `fitted T = ${calibrator.temperature}, expected 2.5 within 2%`,
    );
    for (const row of rows.slice(0, 200)) assert.equal(argmax(calibrator.apply(row)), argmax(row));
    const probabilities = calibrator.apply(rows[0]!);
    assertClose(
      probabilities.reduce((a, b) => a + b, 0),
      1,
      1e-12,
    );
    // It minimises the held-out NLL: lower than at T = 1 and at T +- 5%.
    const fitted = temperatureNll(rows, labels, calibrator.temperature);
    assert.ok(fitted < temperatureNll(rows, labels, 1));
    assert.ok(fitted <= temperatureNll(rows, labels, calibrator.temperature * 1.05));
    assert.ok(fitted <= temperatureNll(rows, labels, calibrator.temperature / 1.05));
  });

  it('takes a flat logits buffer and skips ignored labels (-100)', () => {
    const some = rows.slice(0, 2000);
    const someLabels = labels.slice(0, 2000);
    const fromRows = fitTemperature(some, someLabels).temperature;
    const flat = new Float32Array(some.length * 8);
    some.forEach((row, r) => {
      flat.set(row, r * 8);
    });
    assertClose(fitTemperature({ data: flat, vocabSize: 8 }, someLabels).temperature, fromRows, 1e-4);
    // Extra tokens labelled -100 with absurd logits change nothing.
    const padded = [...some, new Float64Array(8).fill(1000), new Float64Array(8)];
    assertClose(fitTemperature(padded, [...someLabels, -100, -100]).temperature, fromRows, 1e-9);
  });

  it('rejects bad inputs', () => {
    assert.throws(() => fitTemperature([[1, 2]], [2]), /labels\[0\]: expected a token id in \[0, 2\)/);
    assert.throws(() => fitTemperature([[1, 2], [1]], [0, 0]), /logits row 1: expected 2 values/);
    assert.throws(() => fitTemperature([[1, 2]], [0, 1]), UqInputError);
    assert.throws(() => fitTemperature([], []), /no tokens/);
    assert.throws(() => fitTemperature({ data: [1, 2, 3], vocabSize: 2 }, [0]), /whole number of rows/);
    assert.throws(() => new TemperatureCalibrator(0), /expected a finite number > 0/);
  });
});

describe('fitPlatt', () => {
  const rng = new Rng(11);
  const scores: number[] = [];
  const correct: boolean[] = [];
  for (let i = 0; i < 20000; i++) {
    const s = 2 * rng.normal();
    scores.push(s);
    correct.push(rng.uniform() < 1 / (1 + Math.exp(-(1.5 * s - 0.5))));
  }

  it('recovers a known logistic relation', () => {
    const calibrator = fitPlatt(scores, correct);
    assert.ok(Math.abs(calibrator.a - 1.5) < 0.1, `a = ${calibrator.a}`);
    assert.ok(Math.abs(calibrator.b + 0.5) < 0.1, `b = ${calibrator.b}`);
    assertClose(calibrator.apply(0), 1 / (1 + Math.exp(-calibrator.b)), 1e-15);
    // On an uncertainty (the negated score) the slope flips sign.
    const flipped = fitPlatt(
      scores.map((s) => -s),
      correct,
    );
    assertClose(flipped.a, -calibrator.a, 1e-6);
    assertClose(flipped.b, calibrator.b, 1e-6);
  });

  it('stays finite on one class, separable data and a constant score', () => {
    const oneClass = fitPlatt([0.1, 0.5, 0.9], [1, 1, 1]);
    assert.ok(Number.isFinite(oneClass.a) && Number.isFinite(oneClass.b));
    assert.ok(oneClass.apply(0.5) > 0.99);
    const separable = fitPlatt([0, 1, 2, 3], [0, 0, 1, 1]);
    assert.ok(Number.isFinite(separable.a) && separable.a > 0);
    assert.ok(separable.apply(0) < 0.05 && separable.apply(3) > 0.95);
    const constant = fitPlatt([2, 2, 2, 2], [1, 1, 1, 0]);
    assert.equal(constant.a, 0);
    assertClose(constant.apply(2), 0.75, 1e-3); // the log-odds of 3/4, barely moved by the ridge
  });
});

describe('fitIsotonic', () => {
  it('equals the pool-adjacent-violators result on a small case', () => {
    // y in score order: 0, 1, 0, 0, 1, 1. PAV: [0] [1] -> 0 < 1 ok; next 0 violates -> pool
    // (1, 0) = 1/2; next 0 < 1/2 -> pool (1, 0, 0) = 1/3; then 1, 1 (equal neighbours pooled).
    // Fit: 0, 1/3, 1/3, 1/3, 1, 1 -> knots (1, 0), (2, 1/3), (4, 1/3), (5, 1), (6, 1).
    const calibrator = fitIsotonic([6, 2, 3, 1, 5, 4], [1, 1, 0, 0, 1, 0]);
    assert.deepEqual(calibrator.x, [1, 2, 4, 5, 6]);
    assert.deepEqual(calibrator.y, [0, 1 / 3, 1 / 3, 1, 1]);
    assert.equal(calibrator.apply(3), 1 / 3);
    assertClose(calibrator.apply(4.5), 2 / 3, 1e-15); // interpolated between (4, 1/3) and (5, 1)
    assertClose(calibrator.apply(1.5), 1 / 6, 1e-15);
    assert.equal(calibrator.apply(-10), 0); // clamped below
    assert.equal(calibrator.apply(10), 1); // and above
  });

  it('pools tied scores first and fits a decreasing map for an uncertainty', () => {
    const tied = fitIsotonic([1, 1, 2], [1, 0, 1]);
    assert.deepEqual(tied.x, [1, 2]);
    assert.deepEqual(tied.y, [0.5, 1]);
    // Decreasing: y = 1, 0, 1 at scores 1, 2, 3 -> 1, then (0, 1) pooled to 1/2.
    const decreasing = fitIsotonic([1, 2, 3], [1, 0, 1], { increasing: false });
    assert.deepEqual(decreasing.x, [1, 2, 3]);
    assert.deepEqual(decreasing.y, [1, 0.5, 0.5]);
    assert.equal(decreasing.increasing, false);
  });

  it('is monotone on noisy data', () => {
    const rng = new Rng(3);
    const scores: number[] = [];
    const correct: number[] = [];
    for (let i = 0; i < 500; i++) {
      const s = rng.uniform();
      scores.push(Math.round(s * 50) / 50); // with ties
      correct.push(rng.uniform() < s ? 1 : 0);
    }
    const calibrator = fitIsotonic(scores, correct);
    let previous = -1;
    for (let s = -0.1; s <= 1.1; s += 0.005) {
      const p = calibrator.apply(s);
      assert.ok(p >= previous && p >= 0 && p <= 1, `not monotone at ${s}`);
      previous = p;
    }
  });
});

describe('calibrator JSON', () => {
  const calibrators = [
    new TemperatureCalibrator(1.75),
    new PlattCalibrator(-2.5, 0.25),
    new IsotonicCalibrator([0.1, 0.4, 0.9], [0.2, 0.5, 0.5]),
  ];

  it('round-trips every calibrator through toJSON, files and back', () => {
    for (const calibrator of calibrators) {
      const json = JSON.parse(JSON.stringify(calibrator));
      assert.deepEqual(json, calibrator.toJSON());
      assert.equal(json.version, 1);
      assert.equal(json.type, calibrator.type);
      const back = calibratorFromJSON(json);
      assert.deepEqual(back.toJSON(), calibrator.toJSON());
      const path = join(tmp, `${calibrator.type}.json`);
      saveCalibrator(path, calibrator);
      assert.ok(readFileSync(path, 'utf8').endsWith('}\n'));
      assert.deepEqual(loadCalibrator(path).toJSON(), calibrator.toJSON());
    }
    const loaded = loadCalibrator(join(tmp, 'platt.json'));
    assert.equal(loaded.type, 'platt');
    if (loaded.type === 'platt') assert.equal(loaded.apply(0.3), new PlattCalibrator(-2.5, 0.25).apply(0.3));
  });

  it('rejects anything else with a one-line FormatError naming the source', () => {
    const cases: [unknown, RegExp][] = [
      [[], /expected a calibrator object/],
      [
        { type: 'histogram', version: 1, params: {} },
        /type: expected one of temperature, platt, isotonic, found 'histogram'/,
      ],
      [{ type: 'platt', version: 2, params: { a: 1, b: 0 } }, /reads calibrator format version 1, found 2/],
      [{ type: 'platt', params: { a: 1, b: 0 } }, /version 1, found nothing/],
      [{ type: 'platt', version: 1 }, /params: expected an object, found nothing/],
      [
        { type: 'platt', version: 1, params: { a: '1', b: 0 } },
        /params\.a: expected a finite number, found a string/,
      ],
      [{ type: 'temperature', version: 1, params: { temperature: -1 } }, /expected a finite number > 0/],
      [{ type: 'isotonic', version: 1, params: { x: [1, 1], y: [0, 1] } }, /strictly increasing/],
      [{ type: 'isotonic', version: 1, params: { x: [1, 2], y: [0, 1.5] } }, /not a probability/],
      [{ type: 'isotonic', version: 1, params: { x: [1, 2], y: [0.6, 0.2] } }, /non-decreasing/],
      [
        { type: 'isotonic', version: 1, params: { x: [1, 2], y: [0, 1], increasing: 'yes' } },
        /increasing: expected true or false/,
      ],
    ];
    for (const [value, message] of cases) {
      assert.throws(
        () => calibratorFromJSON(value, 'cal.json'),
        (err: Error) =>
          err instanceof FormatError && message.test(err.message) && err.message.startsWith('cal.json: '),
        JSON.stringify(value),
      );
    }
    const bad = join(tmp, 'bad.json');
    writeFileSync(bad, '{"type": "platt",');
    assert.throws(
      () => loadCalibrator(bad),
      (err: Error) => err instanceof FormatError && err.message.startsWith(bad),
    );
    assert.throws(() => loadCalibrator(join(tmp, 'missing.json')), /file not found/);
  });
});
