import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { Linear, Module, type Parameter } from '../../../src/nn/index.ts';
import {
  backward,
  fromArray,
  mean,
  noGrad,
  Rng,
  scope,
  square,
  sub,
  type Tensor,
  tanh,
} from '../../../src/tensor/index.ts';
import { AdamW } from '../../../src/train/optim/index.ts';

/** Linear(2, hidden) -> tanh -> Linear(hidden, 1). */
class Mlp extends Module {
  fc1: Linear;
  fc2: Linear;
  constructor(hidden: number, seed: number) {
    super();
    const rng = new Rng(seed);
    this.fc1 = this.registerModule('fc1', new Linear(2, hidden, { rng }));
    this.fc2 = this.registerModule('fc2', new Linear(hidden, 1, { rng }));
  }
  /** x [N, 2] -> [N, 1]. */
  forward(x: Tensor): Tensor {
    return this.fc2.forward(tanh(this.fc1.forward(x)));
  }
}

describe('two-layer MLP', () => {
  it('learns XOR with AdamW (seeded; final MSE < 1e-3)', () => {
    const x = fromArray(
      [
        [0, 0],
        [0, 1],
        [1, 0],
        [1, 1],
      ],
      undefined,
      { track: false },
    );
    const y = fromArray([[0], [1], [1], [0]], undefined, { track: false });
    const model = new Mlp(8, 42);
    const params: Parameter[] = model.trainableParameters();
    assert.deepEqual(
      model.namedParameters().map(([n]) => n),
      ['fc1.weight', 'fc1.bias', 'fc2.weight', 'fc2.bias'],
    );
    const opt = new AdamW(params, { lr: 0.05, weightDecay: 0 });
    let first = 0;
    let last = 0;
    for (let step = 0; step < 400; step++) {
      last = scope(() => {
        const loss = mean(square(sub(model.forward(x), y)));
        backward(loss);
        return loss.item();
      });
      if (step === 0) first = last;
      opt.step();
      opt.zeroGrad();
    }
    const final = noGrad(() => scope(() => mean(square(sub(model.forward(x), y))).item()));
    assert.ok(first > 0.1, `initial loss ${first}`);
    assert.ok(final < 1e-3, `final loss ${final} (last training loss ${last})`);
    const preds = noGrad(() => scope(() => model.forward(x).toArray()));
    assert.deepEqual(
      preds.map((p) => (p > 0.5 ? 1 : 0)),
      [0, 1, 1, 0],
    );
  });
});
