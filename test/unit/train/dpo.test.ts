import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { DataLoader } from '../../../src/data/batching.ts';
import { IGNORE_INDEX, type TokenizedExample } from '../../../src/data/tokenize.ts';
import { type CausalLM, createModel, llamaConfigJson, scoreNextTokens } from '../../../src/models/index.ts';
import { noGrad, scope } from '../../../src/tensor/index.ts';
import {
  createLoss,
  type DpoLoss,
  referenceLogProbs,
  relativeWeights,
  type TokenTerms,
} from '../../../src/train/losses/index.ts';
import { forwardBackwardStep, type MicroBatch } from '../../../src/train/step.ts';

/** Terms of two examples: 0 (chosen) with logp `chosen`, 1 (rejected) with `rejected`. */
function pairTerms(chosen: number[], rejected: number[]): TokenTerms {
  const logp = Float64Array.from([...chosen, ...rejected]);
  const n = logp.length;
  return {
    logp,
    entropy: new Float64Array(n),
    top1: new Float64Array(n),
    correct: new Float64Array(n),
    count: n,
    exampleOf: Int32Array.from([...chosen.map(() => 0), ...rejected.map(() => 1)]),
    positionOf: Int32Array.from([...chosen.map((_, i) => i + 1), ...rejected.map((_, i) => i + 1)]),
  };
}

function dpo(options: Record<string, unknown>, refLogp: number[], refTokens: number[]): DpoLoss {
  const loss = createLoss('dpo', options) as DpoLoss;
  loss.reference = { logp: Float64Array.from(refLogp), tokens: Int32Array.from(refTokens) };
  return loss;
}

const step = { stepTokens: 5, stepCorrect: 0, stepExamples: 2 };

describe('dpo loss by hand', () => {
  // policy: chosen -2 (2 tokens), rejected -3 (3 tokens); reference: -2.5 and -2.8
  const terms = pairTerms([-1, -1], [-1, -1, -1]);
  const d = -2 - -2.5 - (-3 - -2.8); // 0.7
  it('sigmoid: L = -log sigma(beta d), dL/dlogp = -/+ beta sigma(-beta d)', () => {
    const out = dpo({ beta: 0.1 }, [-2.5, -2.8], [2, 3]).compute(terms, step);
    const h = 0.1 * d;
    assert.ok(Math.abs(out.value - Math.log1p(Math.exp(-h))) < 1e-12, `${out.value}`);
    const sigmaMinus = 1 / (1 + Math.exp(h));
    for (let i = 0; i < 2; i++) assert.ok(Math.abs(out.cLogp[i]! - -0.1 * sigmaMinus) < 1e-7);
    for (let i = 2; i < 5; i++) assert.ok(Math.abs(out.cLogp[i]! - 0.1 * sigmaMinus) < 1e-7);
    assert.ok(Math.abs(out.parts.rewards_margin! - 0.1 * d) < 1e-12);
    assert.ok(Math.abs(out.parts.rewards_chosen! - 0.1 * 0.5) < 1e-12);
    assert.equal(out.parts.rewards_accuracy, 1);
  });
  it('ipo: L = (d - 1/(2 beta))^2', () => {
    const out = dpo({ beta: 0.1, variant: 'ipo' }, [-2.5, -2.8], [2, 3]).compute(terms, step);
    assert.ok(Math.abs(out.value - (d - 5) ** 2) < 1e-12, `${out.value}`);
    assert.ok(Math.abs(out.cLogp[0]! - 2 * (d - 5)) < 1e-5);
    assert.ok(Math.abs(out.cLogp[4]! + 2 * (d - 5)) < 1e-5);
  });
  it('length_normalize compares mean token log-probs', () => {
    const out = dpo({ beta: 0.1, variant: 'ipo', length_normalize: true }, [-2.5, -2.8], [2, 3]).compute(
      terms,
      step,
    );
    const dn = -1 - -2.5 / 2 - (-1 - -2.8 / 3);
    assert.ok(Math.abs(out.value - (dn - 5) ** 2) < 1e-12, `${out.value}`);
    assert.ok(Math.abs(out.cLogp[0]! - (2 * (dn - 5)) / 2) < 1e-5);
    assert.ok(Math.abs(out.cLogp[2]! + (2 * (dn - 5)) / 3) < 1e-5);
  });
  it('nll_weight adds the mean token NLL of the chosen response', () => {
    const plain = dpo({ beta: 0.1 }, [-2.5, -2.8], [2, 3]).compute(terms, step);
    const rpo = dpo({ beta: 0.1, nll_weight: 0.5 }, [-2.5, -2.8], [2, 3]).compute(terms, step);
    assert.ok(Math.abs(rpo.value - (plain.value + 0.5 * 1)) < 1e-12, `${rpo.value}`);
    assert.equal(rpo.parts.nll, 1);
    assert.ok(Math.abs(rpo.cLogp[0]! - (plain.cLogp[0]! - 0.5 / 2)) < 1e-7);
    assert.equal(rpo.cLogp[3], plain.cLogp[3]);
  });
  it('averages over the pairs of the whole step', () => {
    const half = dpo({ beta: 0.1 }, [-2.5, -2.8], [2, 3]).compute(terms, { ...step, stepExamples: 4 });
    const full = dpo({ beta: 0.1 }, [-2.5, -2.8], [2, 3]).compute(terms, step);
    assert.ok(Math.abs(half.value - full.value / 2) < 1e-12);
    assert.ok(Math.abs(half.cLogp[0]! - full.cLogp[0]! / 2) < 1e-9);
  });
  it('coefficients are the derivatives of the value (central differences)', () => {
    for (const options of [
      { beta: 0.1 },
      { beta: 2 },
      { beta: 0.5, label_smoothing: 0.2 },
      { beta: 0.1, variant: 'ipo' },
      { beta: 0.3, length_normalize: true },
      { beta: 0.1, nll_weight: 0.7 },
    ]) {
      const loss = dpo(options, [-2.5, -2.8], [2, 3]);
      const base = pairTerms([-1.2, -0.4], [-0.9, -1.6, -0.2]);
      const out = loss.compute(base, step);
      for (let i = 0; i < base.count; i++) {
        const plus = pairTerms([...base.logp.slice(0, 2)], [...base.logp.slice(2)]);
        const minus = pairTerms([...base.logp.slice(0, 2)], [...base.logp.slice(2)]);
        plus.logp[i]! += 1e-6;
        minus.logp[i]! -= 1e-6;
        const numeric = (loss.compute(plus, step).value - loss.compute(minus, step).value) / 2e-6;
        assert.ok(
          Math.abs(out.cLogp[i]! - numeric) < 1e-6 * Math.max(1, Math.abs(numeric)),
          `${JSON.stringify(options)} token ${i}: ${out.cLogp[i]} vs ${numeric}`,
        );
      }
    }
  });
  it('refuses a pair split across micro-batches, missing references and ipo with label smoothing', () => {
    const loss = dpo({}, [-2.5, -2.8], [2, 3]);
    const lonely = pairTerms([-1, -1], []);
    assert.throws(() => loss.compute(lonely, step), /example 0's partner 1 is not in the same micro-batch/);
    assert.throws(
      () => (createLoss('dpo') as DpoLoss).compute(pairTerms([-1], [-1]), step),
      /no reference log-probs/,
    );
    assert.throws(
      () => createLoss('dpo', { variant: 'ipo', label_smoothing: 0.1 }),
      /label_smoothing applies to variant 'sigmoid'/,
    );
    assert.throws(() => createLoss('dpo', { beta: 0 }), /beta/);
  });
});

/** Terms of two pairs, one token per response: logp of examples 0..3. */
function twoPairTerms(logp: number[]): TokenTerms {
  return {
    logp: Float64Array.from(logp),
    entropy: new Float64Array(4),
    top1: new Float64Array(4),
    correct: new Float64Array(4),
    count: 4,
    exampleOf: Int32Array.from([0, 1, 2, 3]),
    positionOf: Int32Array.from([1, 1, 1, 1]),
  };
}

describe('dpo per-pair weights', () => {
  const example = (weight?: number): TokenizedExample => ({
    inputIds: Int32Array.of(1),
    labels: Int32Array.of(1),
    file: 'f',
    line: 1,
    truncatedTokens: 0,
    ...(weight === undefined ? {} : { weight }),
  });
  it('relativeWeights: weight over the mean pair weight; null when all 1; errors', () => {
    assert.equal(relativeWeights([example(), example(), example(1), example(1)]), null);
    assert.deepEqual(
      [...relativeWeights([example(3), example(3), example(), example()])!],
      [1.5, 1.5, 0.5, 0.5],
    );
    assert.throws(() => relativeWeights([example(2), example(1)]), /chosen has weight 2, rejected 1/);
    assert.throws(() => relativeWeights([example(0), example(0)]), /every one of the 1 pairs has weight 0/);
  });
  it('weighted loss and gradient by hand, and against finite differences', () => {
    // reference logp of examples 0..3; policy logp; weights 3 and 1 -> relative 1.5 and 0.5
    const ref = [-1, -2, -1.5, -1];
    const logp = [-0.8, -2.3, -1.6, -0.7];
    const beta = 0.5;
    const d1 = -0.8 - -1 - (-2.3 - -2); // 0.5
    const d2 = -1.6 - -1.5 - (-0.7 - -1); // -0.4
    const loss = dpo({ beta }, ref, [1, 1, 1, 1]);
    loss.weights = relativeWeights([example(3), example(3), example(1), example(1)]);
    const twoStep = { stepTokens: 4, stepCorrect: 0, stepExamples: 4 };
    const out = loss.compute(twoPairTerms(logp), twoStep);
    const l = (d: number) => Math.log1p(Math.exp(-beta * d));
    // (1.5 L1 + 0.5 L2) / 2 = (3 L1 + 1 L2) / (3 + 1): the weighted mean
    const expected = (3 * l(d1) + 1 * l(d2)) / 4;
    assert.ok(Math.abs(out.value - expected) < 1e-12, `${out.value} vs ${expected}`);
    assert.ok(Math.abs(out.parts.dpo! - expected) < 1e-12);
    // dL/ds(chosen of pair k) = w_k / 2 * -beta sigma(-beta d_k)
    const g = (d: number) => -beta / (1 + Math.exp(beta * d));
    const hand = [0.75 * g(d1), -0.75 * g(d1), 0.25 * g(d2), -0.25 * g(d2)];
    for (let i = 0; i < 4; i++) assert.ok(Math.abs(out.cLogp[i]! - hand[i]!) < 1e-7, `${i}: ${out.cLogp[i]}`);
    const h = 1e-6;
    for (let i = 0; i < 4; i++) {
      const plus = [...logp];
      const minus = [...logp];
      plus[i]! += h;
      minus[i]! -= h;
      const fd =
        (loss.compute(twoPairTerms(plus), twoStep).value - loss.compute(twoPairTerms(minus), twoStep).value) /
        (2 * h);
      assert.ok(Math.abs(out.cLogp[i]! - fd) < 1e-6, `${i}: ${out.cLogp[i]} vs fd ${fd}`);
    }
    // the rewards metrics stay unweighted; scaling every weight changes nothing
    assert.ok(Math.abs(out.parts.rewards_margin! - (beta * d1 + beta * d2) / 2) < 1e-12);
    loss.weights = relativeWeights([example(30), example(30), example(10), example(10)]);
    assert.ok(Math.abs(loss.compute(twoPairTerms(logp), twoStep).value - expected) < 1e-12);
  });
});

describe('dpo on a tiny model', () => {
  const config = {
    ...llamaConfigJson({
      vocabSize: 24,
      hiddenSize: 16,
      intermediateSize: 32,
      numLayers: 1,
      numHeads: 2,
      numKvHeads: 1,
    }),
    initializer_range: 0.5,
  };
  // two pairs: a shared prompt, then the chosen and rejected responses
  const example = (ids: number[], promptLength: number): TokenizedExample => ({
    inputIds: Int32Array.from(ids),
    labels: Int32Array.from(ids, (v, t) => (t < promptLength ? IGNORE_INDEX : v)),
    file: 'pairs',
    line: 1,
    truncatedTokens: 0,
  });
  const examples = [
    example([1, 5, 6, 7, 8], 3),
    example([1, 5, 6, 9], 3),
    example([1, 3, 11, 12, 13, 2], 2),
    example([1, 3, 14, 2], 2),
  ];
  const batches = (): MicroBatch[] => {
    const loader = new DataLoader(examples, { batchSize: 4, padTokenId: 0, shuffle: false, groupSize: 2 });
    const b = loader.next();
    return [{ inputIds: b.inputIds, labels: b.labels, exampleOf: b.exampleOf, positionOf: b.positionOf }];
  };
  const lossValue = (model: CausalLM, loss: DpoLoss): number =>
    noGrad(() =>
      scope(() => {
        const [b] = batches();
        const { result, rows, count } = scoreNextTokens(model, b!.inputIds, b!.labels);
        const exampleOf = Int32Array.from(rows, (r) => b!.exampleOf![r + 1]!);
        return loss.compute(
          {
            logp: result.logp.floatData(),
            entropy: result.entropy.floatData(),
            top1: result.top1.floatData(),
            correct: result.correct.floatData(),
            count,
            exampleOf,
          },
          { stepTokens: count, stepCorrect: 0, stepExamples: 4 },
        ).value;
      }),
    );

  it('the reference log-probs are the model sums of the trained tokens', () => {
    const model = createModel(config, { seed: 2 });
    const ref = referenceLogProbs(model, examples, { batchSize: 3, padTokenId: 0 });
    assert.deepEqual([...ref.tokens], [2, 1, 4, 2]);
    const one = noGrad(() =>
      scope(() => {
        const loader = new DataLoader([examples[2]!], { batchSize: 1, padTokenId: 0, shuffle: false });
        const b = loader.next();
        const { result } = scoreNextTokens(model, b.inputIds, b.labels);
        return [...result.logp.floatData()].reduce((a, x) => a + x, 0);
      }),
    );
    assert.ok(Math.abs(ref.logp[2]! - one) < 1e-5, `${ref.logp[2]} vs ${one}`);
  });

  for (const variant of ['sigmoid', 'ipo']) {
    it(`${variant}: parameter gradients match finite differences of the loss`, () => {
      const reference = createModel(config, { seed: 7 });
      const model = createModel(config, { seed: 3 });
      const loss = createLoss('dpo', { beta: 0.5, variant }) as DpoLoss;
      loss.reference = referenceLogProbs(reference, examples, { batchSize: 4, padTokenId: 0 });
      model.eval();
      forwardBackwardStep(model, loss, batches());
      let checked = 0;
      for (const p of model.parameters()) {
        const grad = p.grad!.data as Float32Array;
        const data = p.data as Float32Array;
        // the largest-gradient entry of each parameter
        let k = 0;
        for (let i = 0; i < grad.length; i++) if (Math.abs(grad[i]!) > Math.abs(grad[k]!)) k = i;
        if (Math.abs(grad[k]!) < 1e-3) continue;
        const h = 1e-2;
        const saved = data[k]!;
        data[k] = saved + h;
        const plus = lossValue(model, loss);
        data[k] = saved - h;
        const minus = lossValue(model, loss);
        data[k] = saved;
        const numeric = (plus - minus) / (2 * h);
        assert.ok(
          Math.abs(numeric - grad[k]!) <= 2e-2 * Math.abs(grad[k]!) + 1e-4,
          `entry ${k}: analytic ${grad[k]} vs numeric ${numeric}`,
        );
        checked++;
      }
      assert.ok(checked >= 3, `checked ${checked} parameters`);
    });
  }
});
