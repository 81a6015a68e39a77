/**
 * The extra-pass scores on hand-computed cases: P(True) from constructed logits, verbalised
 * confidence parsing, RAUQ on a constructed attention, Mahalanobis / relative MD on 2-D data
 * (a singular covariance included); then wired through predict on a tiny model.
 */
import assert from 'node:assert/strict';
import { rmSync } from 'node:fs';
import { join } from 'node:path';
import { after, describe, it } from 'node:test';
import { resolveExtraScores } from '../../../src/cli/commands/eval.ts';
import { FormatError } from '../../../src/errors.ts';
import { loadModel } from '../../../src/models/index.ts';
import {
  answerInternals,
  answerTokens,
  type DensityFile,
  extraScoresOf,
  fitGaussian,
  loadDensityFile,
  mahalanobisDistance,
  type Prediction,
  predict,
  relativeMahalanobisDistance,
  saveDensityFile,
  summarizePredictions,
} from '../../../src/uq/index.ts';
import { extraPassScores, uqScores } from '../../../src/uq/scores/index.ts';
import {
  continuationNll,
  pTrueFromLogits,
  pTruePrompt,
  trueTokenIds,
} from '../../../src/uq/scores/p-true.ts';
import { rauq, rauqLayers } from '../../../src/uq/scores/rauq.ts';
import { parseVerbalizedConfidence } from '../../../src/uq/scores/verbalized.ts';
import { tempDir, writeTinyModel } from '../../helpers/tiny-run.ts';
import { assertClose } from './helpers.ts';

describe('P(True)', () => {
  it('is -log softmax(logits)[True] (constructed logits)', () => {
    // logits [0, ln 3, 0]: p(1) = 3 / 5
    assertClose(pTrueFromLogits([0, Math.log(3), 0], 1), -Math.log(0.6));
    // shift invariance, and a sure "True" costs ~0
    assertClose(pTrueFromLogits([1000, 1000 + Math.log(3), 1000], 1), -Math.log(0.6), 1e-9);
    assertClose(pTrueFromLogits([0, 50, 0], 1), 0, 1e-12);
  });
  it("uses LM-Polygraph's prompt", () => {
    assert.equal(
      pTruePrompt('Who?', ' Ada'),
      'Question: Who?\n Possible answer: Ada\n Is the possible answer:\n (A) True\n (B) False\n The possible answer is:',
    );
  });
});

describe('verbalised confidence parsing', () => {
  const cases: [string, number | null][] = [
    ['80', 0.8],
    [' Confidence: 95%', 0.95],
    ['0.7', 0.7],
    ['100', 1],
    ['0', 0],
    ['I would say 150', null],
    ['probably not', 0.25],
    ['Probably', 0.7],
    ['It is highly likely.', 0.9],
    ['banana', null],
    ['', null],
  ];
  for (const [reply, expected] of cases)
    it(JSON.stringify(reply), () => assert.equal(parseVerbalizedConfidence(reply), expected));
});

describe('RAUQ', () => {
  it('middle layers as LM-Polygraph: floor(L/3) .. ceil(2L/3), clipped', () => {
    assert.deepEqual(
      rauqLayers(30),
      Array.from({ length: 11 }, (_, i) => 10 + i),
    );
    assert.deepEqual(rauqLayers(4), [1, 2, 3]);
    assert.deepEqual(rauqLayers(2), [0, 1]);
    assert.deepEqual(rauqLayers(1), [0]);
  });
  it('on a constructed attention (2 layers, 2 heads, 3 tokens) by hand', () => {
    const logprobs = [Math.log(0.5), Math.log(0.8), Math.log(0.4)];
    // [h * (n - 1) + i]: layer 0 head 0 = [0.9, 0.1] (mean 0.5) beats head 1 = [0.3, 0.3];
    // layer 1 head 1 = [0.6, 0.8] beats head 0 = [0.2, 0.2]
    const attention = [Float64Array.from([0.9, 0.1, 0.3, 0.3]), Float64Array.from([0.2, 0.2, 0.6, 0.8])];
    // layer 0: c = 0.5, 0.2*0.8 + 0.8*0.9*0.5 = 0.52, 0.2*0.4 + 0.8*0.1*0.52 = 0.1216
    const u0 = 1 - (Math.log(0.5) + Math.log(0.52) + Math.log(0.1216)) / 3;
    // layer 1: c = 0.5, 0.16 + 0.8*0.6*0.5 = 0.4, 0.08 + 0.8*0.8*0.4 = 0.336
    const u1 = 1 - (Math.log(0.5) + Math.log(0.4) + Math.log(0.336)) / 3;
    assert.ok(u0 > u1);
    assertClose(rauq(logprobs, attention), u0);
    // a lower alpha leans more on attention: still the hand formula
    const c1 = 0.5 * 0.8 + 0.5 * 0.9 * 0.5;
    const c2 = 0.5 * 0.4 + 0.5 * 0.1 * c1;
    const v0 = 1 - (Math.log(0.5) + Math.log(c1) + Math.log(c2)) / 3;
    const d1 = 0.5 * 0.8 + 0.5 * 0.6 * 0.5;
    const d2 = 0.5 * 0.4 + 0.5 * 0.8 * d1;
    const v1 = 1 - (Math.log(0.5) + Math.log(d1) + Math.log(d2)) / 3;
    assertClose(rauq(logprobs, attention, 0.5), Math.max(v0, v1));
  });
  it('a one-token answer is 1 - log p; an empty one 0', () => {
    assertClose(rauq([Math.log(0.25)], [new Float64Array(0), new Float64Array(0)]), 1 - Math.log(0.25));
    assert.equal(rauq([], [new Float64Array(0)]), 0);
  });
});

describe('Mahalanobis distance', () => {
  const rows = (xs: number[][]) => xs.map((x) => Float64Array.from(x));
  it('2-D correlated data vs a hand computation (unbiased covariance, explicit 2x2 inverse)', () => {
    const data = [
      [1, 2],
      [3, 3],
      [2, 1],
      [2, 2],
    ];
    // mean (2, 2); deviations (-1,0) (1,1) (0,-1) (0,0): Sxx = 2, Syy = 2, Sxy = 1; / (n - 1) = 3
    const ridge = 1e-6;
    const lambda = ridge * ((2 / 3 + 2 / 3) / 2);
    const a = 2 / 3 + lambda;
    const b = 1 / 3;
    const det = a * a - b * b;
    const g = fitGaussian(rows(data), ridge);
    assert.deepEqual(Array.from(g.mean), [2, 2]);
    assertClose(g.lambda, lambda);
    // x = (4, 1): diff (2, -1); MD^2 = [a*4 - 2b*(2*-1)... ] = (a*dx^2 - 2b dx dy + a dy^2) / det
    const dx = 2;
    const dy = -1;
    const md = Math.sqrt((a * dx * dx - 2 * b * dx * dy + a * dy * dy) / det);
    assertClose(mahalanobisDistance(g, [4, 1]), md, 1e-9);
    assertClose(mahalanobisDistance(g, [2, 2]), 0, 1e-12);
  });
  it('a singular covariance (collinear points) stays finite through the ridge', () => {
    // (0,0) (1,1) (2,2): Sigma = [[1,1],[1,1]], trace 2, d 2 -> lambda = ridge;
    // eigen: 2 + lambda along (1,1)/sqrt2, lambda along (1,-1)/sqrt2
    const ridge = 1e-2;
    const g = fitGaussian(
      rows([
        [0, 0],
        [1, 1],
        [2, 2],
      ]),
      ridge,
    );
    // x = (1, 0): diff (0, -1) has 1/2 of its square along each eigenvector
    const expected = Math.sqrt(0.5 / (2 + ridge) + 0.5 / ridge);
    assertClose(mahalanobisDistance(g, [1, 0]), expected, 1e-9);
    // along the data's line the distance is small
    assert.ok(mahalanobisDistance(g, [2, 2]) < 1);
  });
  it('relative MD = MD(in-domain) - MD(background)', () => {
    const inDomain = fitGaussian(
      rows([
        [0, 0],
        [2, 0],
        [0, 2],
        [2, 2],
      ]),
      1e-3,
    );
    // mean (1,1), Sigma = 4/3 I; background: mean (11, 11), the same spread
    const background = fitGaussian(
      rows([
        [10, 10],
        [12, 10],
        [10, 12],
        [12, 12],
      ]),
      1e-3,
    );
    const s = (4 / 3) * (1 + 1e-3);
    const x = [3, 1];
    const md = Math.sqrt(4 / s);
    const md0 = Math.sqrt((64 + 100) / s);
    assertClose(mahalanobisDistance(inDomain, x), md, 1e-9);
    assertClose(relativeMahalanobisDistance(inDomain, background, x), md - md0, 1e-9);
  });
  it('refuses fewer than 2 rows and a non-positive ridge', () => {
    assert.throws(() => fitGaussian(rows([[1, 2]])), /at least 2 sequences/);
    assert.throws(() => fitGaussian(rows([[1], [2]]), 0), /ridge must be > 0/);
  });
});

const root = tempDir('attune-extra-');
after(() => rmSync(root, { recursive: true, force: true }));

describe('density files', () => {
  const density = (): DensityFile => ({
    type: 'gaussian-density',
    version: 1,
    hiddenSize: 2,
    ridge: 1e-3,
    inDomain: fitGaussian([Float64Array.from([0, 0]), Float64Array.from([1, 2]), Float64Array.from([2, 1])]),
    background: null,
    fittedOn: {
      method: 'mahalanobis',
      score: 'hidden_mean',
      model: null,
      adapter: null,
      data: { path: 'train.jsonl', sha256: 'ab' },
      n: 3,
    },
    backgroundData: null,
  });
  it('round-trip; an existing file is kept without overwrite; a bad field is named', () => {
    const path = join(root, 'd.json');
    saveDensityFile(path, density());
    const back = loadDensityFile(path);
    assert.deepEqual(Array.from(back.inDomain.mean), [1, 1]);
    assertClose(mahalanobisDistance(back.inDomain, [3, 3]), mahalanobisDistance(density().inDomain, [3, 3]));
    assert.throws(() => saveDensityFile(path, density()), /already exists/);
    const bad = density();
    bad.hiddenSize = 3;
    saveDensityFile(path, bad, { overwrite: true });
    assert.throws(
      () => loadDensityFile(path),
      (e: Error) => e instanceof FormatError && /in_domain\.mean: expected 3 finite numbers/.test(e.message),
    );
  });
});

describe('extra-pass scores in the registry and in eval', () => {
  it('are registered as extra (not run by default)', () => {
    assert.deepEqual(
      extraPassScores().map((s) => s.name),
      [
        'p_true',
        'verbalized',
        'rauq',
        'mahalanobis',
        'relative_mahalanobis',
        'evidential_vacuity',
        'deup',
        'bayescap',
      ],
    );
    assert.ok(uqScores.list().every((s) => s.description.length > 0));
  });
  it('resolveExtraScores: all, --scores names, and the density checks', () => {
    const names = extraPassScores().map((s) => s.name);
    assert.deepEqual(resolveExtraScores('all', undefined, names, undefined), [
      'p_true',
      'verbalized',
      'rauq',
    ]);
    const noHead = names.filter((n) => !['evidential_vacuity', 'deup', 'bayescap'].includes(n));
    assert.deepEqual(resolveExtraScores('all', undefined, names, { background: {} }), noHead);
    assert.deepEqual(resolveExtraScores('all', undefined, names, { background: {} }, ['deup']), [
      ...noHead,
      'deup',
    ]);
    assert.throws(
      () => resolveExtraScores('bayescap', undefined, names, undefined, ['deup']),
      /bayescap needs a fitted bayescap head/,
    );
    assert.deepEqual(resolveExtraScores(undefined, ['msp', 'rauq'], names, undefined), ['rauq']);
    assert.throws(() => resolveExtraScores('mahalanobis', undefined, names, undefined), /add --density FILE/);
    assert.throws(
      () => resolveExtraScores('relative_mahalanobis', undefined, names, { background: null }),
      /without --background/,
    );
    assert.throws(
      () => resolveExtraScores('rauq,nope', undefined, names, undefined),
      /unknown score\(s\) nope/,
    );
  });
  it('a score without a value (NaN) is left out of its metrics and counted', () => {
    const p = (correct: boolean, u: number): Prediction => ({
      prompt: '',
      reference: '',
      answer: '',
      correct,
      scores: { s: u, t: u },
      confidence: 0.5,
      logprobs: [],
      extra: {},
    });
    const preds = [p(true, 0.1), p(false, 0.9), p(true, Number.NaN), p(false, 0.2)];
    preds[2]!.scores.t = 0.5;
    const summary = summarizePredictions(preds);
    assert.deepEqual(summary.missing, { s: 1 });
    // s over 3: wrong ones 0.9 and 0.2 vs the right 0.1 -> AUROC 1
    assert.equal(summary.scores.s!.auroc, 1);
  });
  it('predict computes them on a tiny model, matching the library functions', () => {
    const dir = writeTinyModel(join(root, 'model'), { seed: 4, hidden: 16, layers: 3 });
    const { model, tokenizer } = loadModel(dir);
    const records = [
      { prompt: 'ab', answer: 'x' },
      { messages: [{ role: 'user', content: 'cd' }], answer: 'y' },
    ];
    const density: DensityFile = {
      type: 'gaussian-density',
      version: 1,
      hiddenSize: 16,
      ridge: 1e-3,
      inDomain: fitGaussian(
        Array.from({ length: 5 }, (_, i) => Float64Array.from({ length: 16 }, (_, j) => Math.sin(i * 7 + j))),
      ),
      background: fitGaussian(
        Array.from({ length: 5 }, (_, i) => Float64Array.from({ length: 16 }, (_, j) => Math.cos(i * 3 + j))),
      ),
      fittedOn: {
        method: 'mahalanobis',
        score: 'hidden_mean',
        model: null,
        adapter: null,
        data: { path: 'x', sha256: 'y' },
        n: 5,
      },
      backgroundData: null,
    };
    const chatTemplate =
      '{% for m in messages %}<{{ m.role }}>{{ m.content }}{% endfor %}{% if add_generation_prompt %}<assistant>{% endif %}';
    const [a, b] = predict(model, tokenizer!, records, {
      maxNewTokens: 4,
      extra: extraPassScores()
        .filter((s) => s.requires !== 'head')
        .map((s) => s.name),
      density,
      chatTemplate,
    });
    for (const pred of [a!, b!]) {
      for (const name of ['p_true', 'rauq', 'mahalanobis', 'relative_mahalanobis'])
        assert.ok(Number.isFinite(pred.scores[name]), `${name} = ${pred.scores[name]}`);
      assert.ok('verbalized' in pred.scores);
    }
    // extraScoresOf on fixed ids equals the library functions
    const promptIds = tokenizer!.encode('ab');
    const answerIds = [100, 101, 102];
    const tokens = answerTokens(model, promptIds, answerIds);
    const got = extraScoresOf(['p_true', 'rauq', 'mahalanobis'], {
      model,
      tokenizer: tokenizer!,
      question: 'ab',
      eosTokenIds: [],
      promptIds,
      answerIds,
      answer: 'def',
      tokens,
      density,
    });
    const internals = answerInternals(model, promptIds, answerIds, { attention: true });
    assert.equal(internals.prevTokenAttention!.length, 3);
    assertClose(got.rauq!, rauq(tokens.logprobs, internals.prevTokenAttention!), 1e-9);
    assertClose(got.mahalanobis!, mahalanobisDistance(density.inDomain, internals.meanHidden), 1e-9);
    const pTrueIds = tokenizer!.encode(pTruePrompt('ab', 'def'));
    assertClose(got.p_true!, continuationNll({ model }, pTrueIds, trueTokenIds(tokenizer!)), 1e-9);
    assert.deepEqual(
      extraScoresOf(['rauq'], {
        ...{
          model,
          tokenizer: tokenizer!,
          question: '',
          eosTokenIds: [],
          promptIds,
          answer: '',
          tokens,
          density,
        },
        answerIds: [],
      }),
      { rauq: 0 },
    );
  });
});
