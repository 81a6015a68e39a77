/** Sampling scores on hand-computed cases: clusters and their entropy, ROUGE-L, the graph scores on 3x3 matrices. */
import assert from 'node:assert/strict';
import { rmSync } from 'node:fs';
import { join } from 'node:path';
import { after, describe, it } from 'node:test';
import { loadModel } from '../../../src/models/index.ts';
import { rougeL } from '../../../src/uq/grade.ts';
import { predict, scoresOfSamples } from '../../../src/uq/predict.ts';
import {
  type AnswerSamples,
  extraPassScores,
  samplingScores,
  singlePassScores,
  uqScores,
} from '../../../src/uq/scores/index.ts';
import {
  degMat,
  eccentricity,
  eigValLaplacian,
  normalizedLaplacian,
  rougeSimilarityMatrix,
  semanticClusters,
  semanticEntropy,
} from '../../../src/uq/scores/sampling.ts';
import { tempDir, writeTinyModel } from '../../helpers/tiny-run.ts';

const close = (a: number, b: number, tol = 1e-12) => assert.ok(Math.abs(a - b) < tol, `${a} != ${b}`);

describe('ROUGE-L (LCS F-measure over lower-cased words)', () => {
  it('by hand', () => {
    // lcs("red car fast", "red car") = 2: P = 2/3, R = 1, F = 2PR/(P+R) = 0.8
    close(rougeL('red car fast', 'Red car'), 0.8);
    // lcs(a b c d, b d) = 2 ("b d"): P = 2/4, R = 1 -> 2/3
    close(rougeL('a1 b c d', 'b d'), 2 / 3);
    // order matters: lcs(x y z, z y x) = 1: P = R = 1/3
    close(rougeL('x y z', 'z y x'), 1 / 3);
    assert.equal(rougeL('blue bike', 'red car'), 0);
    assert.equal(rougeL('', 'red car'), 0);
  });
});

describe('semantic clusters and semantic entropy', () => {
  const texts = ['Paris', 'paris.', 'London', 'The Paris'];
  it('normalised exact match groups the three Parises', () => {
    assert.deepEqual(semanticClusters({ texts, cluster: 'exact', rougeThreshold: 0.5 }), [0, 0, 1, 0]);
  });
  it('ROUGE-L threshold clustering joins the first cluster whose first member is close enough', () => {
    const t = ['red car fast', 'red car', 'blue bike', 'blue bike now'];
    assert.deepEqual(semanticClusters({ texts: t, cluster: 'exact', rougeThreshold: 0.5 }), [0, 1, 2, 3]);
    // ROUGE-L 0.8 between the first two and between the last two
    assert.deepEqual(semanticClusters({ texts: t, cluster: 'rougeL', rougeThreshold: 0.5 }), [0, 0, 1, 1]);
    assert.deepEqual(semanticClusters({ texts: t, cluster: 'rougeL', rougeThreshold: 0.9 }), [0, 1, 2, 3]);
  });
  it('entropy -mean_j log sum_{k in C(j)} p_k', () => {
    // clusters {0, 1, 3} with log p -1, -2, -1 and {2} with -3:
    // log(2 e^-1 + e^-2) = log(0.8710941) = -0.1380038; SE = -(3 * -0.1380038 + -3) / 4 = 0.8535029
    close(semanticEntropy([0, 0, 1, 0], [-1, -2, -3, -1]), 0.8535029, 1e-6);
    // one cluster of N equally likely samples of total probability q: SE = -log q
    close(semanticEntropy([0, 0], [Math.log(0.25), Math.log(0.25)]), -Math.log(0.5));
    // every sample its own cluster: SE = -mean log p_j
    close(semanticEntropy([0, 1, 2], [-1, -2, -3]), 2);
  });
});

describe('graph scores on 3x3 similarity matrices', () => {
  // two similar answers and an unrelated one: degrees 1.5, 1.5, 1; L = [[1/3, -1/3, 0], [-1/3, 1/3, 0],
  // [0, 0, 0]] with eigenvalues 0, 0, 2/3
  const w = Float64Array.from([1, 0.5, 0, 0.5, 1, 0, 0, 0, 1]);
  it('the normalised Laplacian', () => {
    const l = normalizedLaplacian(w, 3);
    for (const [i, x] of [1 / 3, -1 / 3, 0, -1 / 3, 1 / 3, 0, 0, 0, 0].entries()) close(l[i]!, x);
  });
  it('eig_val_laplacian = sum max(0, 1 - lambda)', () => {
    close(eigValLaplacian(w, 3), 1 + 1 + 1 / 3, 1e-10);
    close(eigValLaplacian(Float64Array.from([1, 0, 0, 0, 1, 0, 0, 0, 1]), 3), 3, 1e-10); // 3 meanings
    close(eigValLaplacian(new Float64Array(9).fill(1), 3), 1, 1e-10); // one meaning: lambda 0, 1, 1
  });
  it('deg_mat = trace(m I - D) / m^2', () => {
    close(degMat(w, 3), 1 - 4 / 9);
    close(degMat(new Float64Array(9).fill(1), 3), 0);
  });
  it('eccentricity = || V_k - mean ||_F over eigenvectors with eigenvalue below the threshold', () => {
    // all three eigenvectors kept: the centred orthonormal basis has squared norm trace(I - J/3) = 2
    close(eccentricity(w, 3), Math.SQRT2, 1e-10);
    // threshold 0.5 keeps the null space {(1,1,0)/sqrt2, (0,0,1)}: centred squared norms 1/3 + 2/3
    close(eccentricity(w, 3, 0.5), 1, 1e-10);
    // identical answers: only the constant eigenvector (lambda 0) is kept, and centring zeroes it
    close(eccentricity(new Float64Array(9).fill(1), 3), 0, 1e-10);
  });
  it('the ROUGE-L matrix has 1 on the diagonal and is symmetric', () => {
    const m = rougeSimilarityMatrix(['red car fast', 'red car', '']);
    assert.deepEqual(Array.from(m), [1, 0.8, 0, 0.8, 1, 0, 0, 0, 1]);
  });
});

describe('the sampling scores in the registry', () => {
  it('are listed after the single-pass ones and declare that they need samples', () => {
    const names = samplingScores().map((s) => s.name);
    assert.deepEqual(names, [
      'semantic_entropy',
      'num_semantic_sets',
      'lexical_similarity',
      'eig_val_laplacian',
      'deg_mat',
      'eccentricity',
    ]);
    assert.ok(singlePassScores().every((s) => !names.includes(s.name)));
    assert.equal(uqScores.list().length, singlePassScores().length + names.length + extraPassScores().length);
  });
  it('compute from sampled answers', () => {
    const s: AnswerSamples = {
      texts: ['red car fast', 'red car', 'blue bike'],
      logprobs: [-1, -2, -3],
      cluster: 'rougeL',
      rougeThreshold: 0.5,
    };
    const get = (name: string) =>
      samplingScores()
        .find((x) => x.name === name)!
        .computeSamples(s);
    assert.equal(get('num_semantic_sets'), 2);
    close(get('lexical_similarity'), -0.8 / 3);
    close(get('deg_mat'), 1 - (3 + 1.6) / 9);
    // clusters [0, 0, 1]: -(2 log(e^-1 + e^-2) - 3) / 3
    close(get('semantic_entropy'), -(2 * Math.log(Math.exp(-1) + Math.exp(-2)) - 3) / 3);
  });
  it('the clustered ones (and only they) change with the clustering; scoresOfSamples computes them all', () => {
    assert.deepEqual(
      samplingScores()
        .filter((x) => x.clustered)
        .map((x) => x.name),
      ['semantic_entropy', 'num_semantic_sets'],
    );
    const texts = ['red car fast', 'red car', 'blue bike'];
    const exact = scoresOfSamples({ texts, logprobs: [-1, -2, -3], cluster: 'exact', rougeThreshold: 0.5 });
    const rouge = scoresOfSamples({ texts, logprobs: [-1, -2, -3], cluster: 'rougeL', rougeThreshold: 0.5 });
    assert.deepEqual(
      Object.keys(exact),
      samplingScores().map((x) => x.name),
    );
    // exact: three clusters, each its own sample: -mean_j log p_j = 2
    assert.equal(exact.num_semantic_sets, 3);
    close(exact.semantic_entropy!, 2);
    assert.equal(rouge.num_semantic_sets, 2);
    for (const x of samplingScores().filter((y) => !y.clustered))
      assert.equal(exact[x.name], rouge[x.name], x.name);
    const only = scoresOfSamples(
      { texts, logprobs: [-1, -2, -3], cluster: 'rougeL', rougeThreshold: 0.5 },
      (x) => Boolean(x.clustered),
    );
    assert.deepEqual(only, { semantic_entropy: rouge.semantic_entropy, num_semantic_sets: 2 });
  });
});

describe('predict --samples', () => {
  const root = tempDir('attune-sampling-');
  after(() => rmSync(root, { recursive: true, force: true }));
  it("hands each record its sampled answers (onSamples): their scores are the prediction's sampling scores", () => {
    const { model, tokenizer } = loadModel(
      writeTinyModel(join(root, 'model'), { seed: 3, hidden: 16, layers: 1 }),
    );
    const records = [
      { prompt: 'Q: a?', answer: 'x' },
      { prompt: 'Q: bb?', answer: 'y' },
    ];
    const seen: AnswerSamples[] = [];
    const preds = predict(model, tokenizer!, records, {
      maxNewTokens: 6,
      batch: 2,
      samples: { n: 3, temperature: 1, seed: 7, cluster: 'exact' },
      onSamples: (i, samples) => {
        seen[i] = samples;
      },
    });
    assert.equal(seen.length, 2);
    preds.forEach((p, i) => {
      assert.equal(seen[i]!.texts.length, 3);
      assert.equal(seen[i]!.cluster, 'exact');
      for (const [name, v] of Object.entries(scoresOfSamples(seen[i]!)))
        assert.equal(p.scores[name], v, name);
    });
  });
});
