import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { createModel, llamaConfigJson } from '../../../src/models/index.ts';
import { fromArray } from '../../../src/tensor/index.ts';
import { createLoss, type TokenTerms } from '../../../src/train/losses/index.ts';
import { forwardBackwardStep } from '../../../src/train/step.ts';

function terms(logp: number[], entropy: number[], top1: number[], correct: number[]): TokenTerms {
  return {
    logp: Float64Array.from(logp),
    entropy: Float64Array.from(entropy),
    top1: Float64Array.from(top1),
    correct: Float64Array.from(correct),
    count: logp.length,
  };
}

describe('ua-clm loss', () => {
  const t = terms([-0.2, -2.0, -0.5], [0.3, 1.2, 0.8], [-0.2, -0.4, -0.5], [1, 0, 1]);
  const step = { stepTokens: 3, stepCorrect: 2 };
  it('matches a hand-computed value', () => {
    const out = createLoss('ua-clm', { lambda: 1, eps: 1e-6 }).compute(t, step);
    const nll = (0.2 + 2.0 + 0.5) / 3;
    // incorrect group (token 1): -P log(tanh H + eps), P = exp(-2)
    const inc = -Math.exp(-2) * Math.log(Math.tanh(1.2) + 1e-6);
    // correct group (tokens 0 and 2): mean of -(1 - P) log(1 - tanh H + eps)
    const cor =
      (-(1 - Math.exp(-0.2)) * Math.log(1 - Math.tanh(0.3) + 1e-6) -
        (1 - Math.exp(-0.5)) * Math.log(1 - Math.tanh(0.8) + 1e-6)) /
      2;
    assert.ok(Math.abs(out.value - (nll + inc + cor)) < 1e-12, `${out.value} vs ${nll + inc + cor}`);
    assert.ok(Math.abs(out.parts.ua! - (inc + cor)) < 1e-12);
  });
  it('coefficients are the derivatives of the value (central differences)', () => {
    for (const options of [{}, { probability: 'max' }, { stop_gradient: true }, { lambda: 0.3 }]) {
      const loss = createLoss('ua-clm', options);
      const out = loss.compute(t, step);
      const eps = 1e-6;
      for (const [field, coef] of [
        ['logp', out.cLogp],
        ['entropy', out.cEntropy],
        ['top1', out.cTop1],
      ] as const) {
        for (let i = 0; i < 3; i++) {
          const plus = terms([...t.logp], [...t.entropy], [...t.top1], [...t.correct]);
          const minus = terms([...t.logp], [...t.entropy], [...t.top1], [...t.correct]);
          plus[field][i]! += eps;
          minus[field][i]! -= eps;
          let numeric = (loss.compute(plus, step).value - loss.compute(minus, step).value) / (2 * eps);
          // stop_gradient treats P as a constant: only the entropy path and the NLL remain
          if ((options as { stop_gradient?: boolean }).stop_gradient && field !== 'entropy') {
            numeric = field === 'logp' ? -1 / 3 : 0;
          }
          const analytic = coef ? coef[i]! : 0;
          assert.ok(
            Math.abs(analytic - numeric) < 1e-6,
            `${JSON.stringify(options)} d/d${field}[${i}]: ${analytic} vs ${numeric}`,
          );
        }
      }
    }
  });
  it('an empty group contributes 0', () => {
    const allCorrect = terms([-0.1, -0.3], [0.2, 0.4], [-0.1, -0.3], [1, 1]);
    const out = createLoss('ua-clm').compute(allCorrect, { stepTokens: 2, stepCorrect: 2 });
    assert.ok(Number.isFinite(out.value));
    const cor =
      (-(1 - Math.exp(-0.1)) * Math.log(1 - Math.tanh(0.2) + 1e-6) -
        (1 - Math.exp(-0.3)) * Math.log(1 - Math.tanh(0.4) + 1e-6)) /
      2;
    assert.ok(Math.abs(out.parts.ua! - cor) < 1e-12);
  });
  it('rejects unknown options', () => {
    assert.throws(() => createLoss('ua-clm', { lamda: 1 }), /unknown option 'lamda'/);
    assert.throws(() => createLoss('nope'), /unknown loss 'nope' \(known: ce, .*ua-clm/);
  });
});

describe('gradient accumulation', () => {
  for (const lossName of ['ce', 'ua-clm']) {
    it(`${lossName}: two micro-batches give the same gradients as one batch of both`, () => {
      const config = {
        ...llamaConfigJson({
          vocabSize: 30,
          hiddenSize: 16,
          intermediateSize: 32,
          numLayers: 1,
          numHeads: 2,
          numKvHeads: 1,
        }),
        initializer_range: 0.5,
      };
      const ids = [
        [1, 5, 7, 9, 2, 3],
        [4, 4, 8, 1, 0, 6],
        [2, 9, 9, 3, 1, 1],
        [7, 1, 3, 3, 8, 2],
      ];
      const labels = ids.map((row, r) => row.map((v, i) => (i < 2 + (r % 2) ? -100 : v)));
      const batch = (rows: number[]) => ({
        inputIds: fromArray(
          rows.flatMap((r) => ids[r]!),
          [rows.length, 6],
          { dtype: 'i32', track: false },
        ),
        labels: fromArray(
          rows.flatMap((r) => labels[r]!),
          [rows.length, 6],
          { dtype: 'i32', track: false },
        ),
      });
      const grads = (batches: ReturnType<typeof batch>[]) => {
        const model = createModel(config, { seed: 4 });
        model.train();
        const loss = forwardBackwardStep(model, createLoss(lossName), batches).loss;
        return { loss, g: model.parameters().map((p) => Float64Array.from(p.grad!.data as Float32Array)) };
      };
      const one = grads([batch([0, 1, 2, 3])]);
      const two = grads([batch([0, 1]), batch([2, 3])]);
      assert.ok(Math.abs(one.loss - two.loss) < 1e-5, `${one.loss} vs ${two.loss}`);
      one.g.forEach((g, k) => {
        let scale = 0;
        let diff = 0;
        for (let i = 0; i < g.length; i++) {
          scale = Math.max(scale, Math.abs(g[i]!));
          diff = Math.max(diff, Math.abs(g[i]! - two.g[k]![i]!));
        }
        assert.ok(diff <= 1e-4 * Math.max(scale, 1e-3), `param ${k}: ${diff} vs scale ${scale}`);
      });
    });
  }
});

describe('forwardBackwardStep: per-example lookup', () => {
  it("hands the loss each gold token's example index and position inside the example", () => {
    const config = llamaConfigJson({
      vocabSize: 12,
      hiddenSize: 8,
      intermediateSize: 16,
      numLayers: 1,
      numHeads: 2,
      numKvHeads: 1,
    });
    const model = createModel(config, { seed: 1 });
    // two examples packed in row 0 (ids 3..4 and 5..7), example 2 alone in row 1 (+ padding)
    const ids = [3, 4, 5, 6, 7, 8, 9, 10, 0, 0];
    const labels = [-100, 4, -100, 6, 7, -100, 9, 10, -100, -100];
    const seen: { example: number[]; position: number[] } = { example: [], position: [] };
    const recording = {
      name: 'recording',
      compute(t: TokenTerms) {
        seen.example.push(...t.exampleOf!);
        seen.position.push(...t.positionOf!);
        return { value: 0, parts: {}, cLogp: new Float32Array(t.count), cEntropy: null, cTop1: null };
      },
    };
    forwardBackwardStep(model, recording, [
      {
        inputIds: fromArray(ids, [2, 5], { dtype: 'i32', track: false }),
        labels: fromArray(labels, [2, 5], { dtype: 'i32', track: false }),
        exampleOf: Int32Array.from([0, 0, 1, 1, 1, 2, 2, 2, -1, -1]),
        positionOf: Int32Array.from([0, 1, 0, 1, 2, 0, 1, 2, -1, -1]),
      },
    ]);
    // gold tokens 4 (ex 0, pos 1), 6 and 7 (ex 1, pos 1, 2), 9 and 10 (ex 2, pos 1, 2)
    assert.deepEqual(seen.example, [0, 1, 1, 2, 2]);
    assert.deepEqual(seen.position, [1, 1, 2, 1, 2]);
  });
});
