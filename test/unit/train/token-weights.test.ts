import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { createModel, llamaConfigJson } from '../../../src/models/index.ts';
import { fromArray } from '../../../src/tensor/index.ts';
import { createLoss } from '../../../src/train/losses/index.ts';
import { forwardBackwardStep } from '../../../src/train/step.ts';

describe('ce with per-token weights', () => {
  it('matches a hand-computed value and coefficients', () => {
    const out = createLoss('ce').compute(
      {
        logp: Float64Array.from([-0.5, -2, -1]),
        entropy: new Float64Array(3),
        top1: new Float64Array(3),
        correct: new Float64Array(3),
        count: 3,
        weights: Float32Array.from([2, 0, 0.5]),
      },
      { stepTokens: 4, stepCorrect: 0 },
    );
    // -(2*-0.5 + 0*-2 + 0.5*-1) / 4 = 1.5 / 4
    assert.ok(Math.abs(out.value - 0.375) < 1e-12);
    assert.deepEqual([...out.cLogp], [-0.5, -0, -0.125]);
  });

  it('weights reach the gradient at the right (shifted) token: weight 0 = label dropped, weight 2 = doubled', () => {
    const config = llamaConfigJson({
      vocabSize: 12,
      hiddenSize: 8,
      intermediateSize: 16,
      numLayers: 1,
      numHeads: 2,
      numKvHeads: 1,
    });
    const ids = [3, 4, 5, 6, 7, 8];
    const grads = (labels: number[], weights?: number[]) => {
      const model = createModel(config, { seed: 2 });
      const loss = forwardBackwardStep(model, createLoss('ce'), [
        {
          inputIds: fromArray(ids, [1, 6], { dtype: 'i32', track: false }),
          labels: fromArray(labels, [1, 6], { dtype: 'i32', track: false }),
          ...(weights ? { weights: Float32Array.from(weights) } : {}),
        },
      ]).loss;
      return { loss, g: model.parameters().flatMap((p) => [...(p.grad!.data as Float32Array)]) };
    };
    const all = [-100, 4, 5, 6, 7, 8];
    // weight 0 on the label at position 3: the gradient is the one without that label, times 4/5
    const zeroed = grads(all, [1, 1, 1, 0, 1, 1]);
    const dropped = grads([-100, 4, 5, -100, 7, 8]);
    assert.ok(Math.abs(zeroed.loss - (dropped.loss * 4) / 5) < 1e-5, `${zeroed.loss} vs ${dropped.loss}`);
    const scale = Math.max(...dropped.g.map(Math.abs));
    zeroed.g.forEach((v, i) => {
      assert.ok(Math.abs(v - (dropped.g[i]! * 4) / 5) <= 1e-5 * scale, `grad ${i}`);
    });
    // weight 2 everywhere doubles loss and gradient
    const plain = grads(all);
    const doubled = grads(all, [2, 2, 2, 2, 2, 2]);
    assert.ok(Math.abs(doubled.loss - 2 * plain.loss) < 1e-5);
    doubled.g.forEach((v, i) => {
      assert.ok(Math.abs(v - 2 * plain.g[i]!) <= 1e-5 * scale, `grad ${i}`);
    });
  });
});
