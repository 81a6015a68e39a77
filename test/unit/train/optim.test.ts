import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { ConfigError, TensorMismatchError } from '../../../src/errors.ts';
import { Parameter } from '../../../src/nn/index.ts';
import { fromArray, type Tensor } from '../../../src/tensor/index.ts';
import { AdamW, SGD } from '../../../src/train/optim/index.ts';

function param(values: number[], dtype: 'f32' | 'f64' = 'f64'): Parameter {
  return new Parameter(dtype === 'f64' ? Float64Array.from(values) : Float32Array.from(values), [
    values.length,
  ]);
}

function setGrad(p: Tensor, values: number[]): void {
  p.grad?.release();
  p.grad = fromArray(values, [values.length], { dtype: p.dtype, track: false });
}

function assertClose(actual: ArrayLike<number>, expected: number[], tol: number, what: string): void {
  assert.equal(actual.length, expected.length, `${what}: length`);
  for (let i = 0; i < expected.length; i++) {
    assert.ok(
      Math.abs(actual[i]! - expected[i]!) <= tol,
      `${what}[${i}]: expected ${expected[i]}, found ${actual[i]} (tol ${tol})`,
    );
  }
}

// Hand-computed (see the formulas in adamw.ts) for lr 0.1, betas (0.9, 0.999), eps 1e-8, wd 0.01,
// p0 = [1, -2], g1 = [0.5, -0.1], g2 = [-0.3, 0.2].
const ADAMW_STEP1 = [0.899000002, -1.89800001];
const ADAMW_STEP2 = [0.8789511989397751, -1.9327123603784888];

describe('AdamW', () => {
  it('matches hand-computed single and double steps (f64)', () => {
    const p = param([1, -2]);
    const opt = new AdamW([p], { lr: 0.1, weightDecay: 0.01 });
    setGrad(p, [0.5, -0.1]);
    opt.step();
    // step 1: mhat = g, vhat = g^2, so the Adam direction is g / (|g| + eps)
    assertClose(p.data as Float64Array, ADAMW_STEP1, 1e-12, 'step 1');
    setGrad(p, [-0.3, 0.2]);
    opt.step();
    assertClose(p.data as Float64Array, ADAMW_STEP2, 1e-12, 'step 2');
    assert.equal(opt.stepCount, 2);
    const state = opt.stateDict();
    assertClose(state.params[0]!.buffers.m!, [0.015, 0.011], 1e-15, 'm');
    assertClose(state.params[0]!.buffers.v!, [0.00033975, 4.999e-5], 1e-15, 'v');
    assert.equal(state.params[0]!.step, 2);
  });

  it('matches the same numbers in f32 (Float32Array moments)', () => {
    const p = param([1, -2], 'f32');
    const opt = new AdamW([p], { lr: 0.1, weightDecay: 0.01 });
    setGrad(p, [0.5, -0.1]);
    opt.step();
    setGrad(p, [-0.3, 0.2]);
    opt.step();
    assertClose(p.data as Float32Array, ADAMW_STEP2, 2e-6, 'step 2');
    assert.ok(opt.stateDict().params[0]!.buffers.m instanceof Float32Array);
  });

  it('uses decoupled weight decay: zero gradient still shrinks the weights by lr * wd', () => {
    const p = param([2, -4]);
    const opt = new AdamW([p], { lr: 0.5, weightDecay: 0.1 });
    setGrad(p, [0, 0]);
    opt.step();
    assertClose(p.data as Float64Array, [2 * (1 - 0.05), -4 * (1 - 0.05)], 1e-12, 'decayed');
  });

  it('applies group weight decay overrides and skips parameters without gradient', () => {
    const decayed = param([1]);
    const plain = param([1]);
    const idle = param([5]);
    const opt = new AdamW([{ params: [decayed] }, { params: [plain, idle], weightDecay: 0 }], {
      lr: 0.1,
      weightDecay: 0.5,
    });
    setGrad(decayed, [0]);
    setGrad(plain, [0]);
    opt.step();
    assertClose(decayed.data as Float64Array, [0.95], 1e-12, 'decayed');
    assertClose(plain.data as Float64Array, [1], 0, 'plain');
    assertClose(idle.data as Float64Array, [5], 0, 'idle');
    assert.equal(opt.stateDict().params[2]!.step, 0);
    assert.equal(opt.stateDict().params[2]!.buffers.m, null);
  });

  it('resumes exactly from stateDict', () => {
    const grads = [
      [0.5, -0.1, 0.3],
      [-0.3, 0.2, 0.1],
      [0.05, 0.4, -0.7],
      [1, -1, 0.5],
    ];
    const straight = param([1, -2, 0.5], 'f32');
    const optA = new AdamW([straight], { lr: 0.01, betas: [0.8, 0.99] });
    for (const g of grads) {
      setGrad(straight, g);
      optA.step();
    }
    const resumed = param([1, -2, 0.5], 'f32');
    const optB = new AdamW([resumed], { lr: 0.01, betas: [0.8, 0.99] });
    for (const g of grads.slice(0, 2)) {
      setGrad(resumed, g);
      optB.step();
    }
    const saved = optB.stateDict();
    const weights = (resumed.data as Float32Array).slice();
    // a fresh optimizer over a fresh parameter holding the saved weights
    const restored = new Parameter(weights, [3]);
    const optC = new AdamW([restored], { lr: 0.5 });
    optC.loadStateDict(saved);
    assert.equal(optC.getLr(), 0.01);
    assert.deepEqual(optC.betas, [0.8, 0.99]);
    for (const g of grads.slice(2)) {
      setGrad(restored, g);
      optC.step();
    }
    assert.deepEqual(Array.from(restored.data as Float32Array), Array.from(straight.data as Float32Array));
    assert.equal(optC.stepCount, 4);
  });

  it('refuses a state that does not fit, changing nothing', () => {
    const a = param([1, 2]);
    const opt = new AdamW([a], { lr: 0.1 });
    setGrad(a, [1, 1]);
    opt.step();
    const saved = opt.stateDict();
    const other = new AdamW([param([1, 2, 3])], { lr: 0.3 });
    assert.throws(
      () => other.loadStateDict(saved),
      (e: Error) => {
        assert.ok(e instanceof TensorMismatchError);
        assert.match(e.message, /expected shape \[3\], found \[2\]/);
        assert.match(e.message, /nothing was loaded/);
        return true;
      },
    );
    assert.equal(other.getLr(), 0.3);
    assert.equal(other.stepCount, 0);
    assert.throws(
      () => new SGD([param([1, 2])], { lr: 1 }).loadStateDict(saved),
      /state is for AdamW, not SGD/,
    );
  });

  it('validates its configuration', () => {
    assert.throws(() => new AdamW([param([1])], { lr: -1 }), ConfigError);
    assert.throws(
      () => new AdamW([param([1])], { lr: 1, betas: [0.9, 1] }),
      /betas must be two numbers in \[0, 1\)/,
    );
    const p = param([1]);
    assert.throws(() => new AdamW([p, p], { lr: 1 }), /listed twice/);
    const bf16 = new Parameter(new Uint16Array(2), [2]);
    assert.throws(() => new AdamW([bf16], { lr: 1 }), /only f32\/f64 parameters/);
  });

  it('zeroGrad releases the gradients and setLr changes the rate', () => {
    const p = param([1]);
    const opt = new AdamW([p], { lr: 0.1 });
    setGrad(p, [1]);
    const g = p.grad!;
    opt.zeroGrad();
    assert.equal(p.grad, null);
    assert.ok(g.isReleased);
    opt.setLr(0.25);
    assert.equal(opt.getLr(), 0.25);
    assert.throws(() => opt.setLr(Number.NaN), ConfigError);
  });
});

describe('SGD', () => {
  it('plain SGD: p -= lr * g', () => {
    const p = param([1, -2]);
    const opt = new SGD([p], { lr: 0.1 });
    setGrad(p, [0.5, -0.1]);
    opt.step();
    assertClose(p.data as Float64Array, [0.95, -1.99], 1e-15, 'step');
  });

  it('momentum + weight decay: hand-computed two steps', () => {
    // d1 = g1 + 0.1 p0 = [0.6, -0.3]; buf = d1; p1 = p0 - 0.1 d1 = [0.94, -1.97]
    // d2 = g2 + 0.1 p1 = [-0.206, 0.003]; buf = 0.9 buf + d2 = [0.334, -0.267]; p2 = [0.9066, -1.9433]
    const p = param([1, -2]);
    const opt = new SGD([p], { lr: 0.1, momentum: 0.9, weightDecay: 0.1 });
    setGrad(p, [0.5, -0.1]);
    opt.step();
    assertClose(p.data as Float64Array, [0.94, -1.97], 1e-15, 'step 1');
    setGrad(p, [-0.3, 0.2]);
    opt.step();
    assertClose(p.data as Float64Array, [0.9066, -1.9433], 1e-14, 'step 2');
    assertClose(opt.stateDict().params[0]!.buffers.momentum!, [0.334, -0.267], 1e-15, 'buffer');
  });

  it('Nesterov momentum: hand-computed two steps', () => {
    // step 1: buf = d1 = [0.6, -0.3]; update d1 + 0.9 buf = [1.14, -0.57]; p1 = [0.886, -1.943]
    // step 2: d2 = [-0.2114, 0.0057]; buf = [0.3286, -0.2643]; update [0.08434, -0.23217]
    const p = param([1, -2]);
    const opt = new SGD([p], { lr: 0.1, momentum: 0.9, weightDecay: 0.1, nesterov: true });
    setGrad(p, [0.5, -0.1]);
    opt.step();
    assertClose(p.data as Float64Array, [0.886, -1.943], 1e-15, 'step 1');
    setGrad(p, [-0.3, 0.2]);
    opt.step();
    assertClose(p.data as Float64Array, [0.877566, -1.919783], 1e-14, 'step 2');
  });

  it('dampening scales the gradient term after the first step', () => {
    const p = param([0]);
    const opt = new SGD([p], { lr: 1, momentum: 0.5, dampening: 0.5 });
    setGrad(p, [1]);
    opt.step(); // buf = 1 (no dampening on the first step), p = -1
    setGrad(p, [1]);
    opt.step(); // buf = 0.5 + 0.5 = 1, p = -2
    assertClose(p.data as Float64Array, [-2], 1e-15, 'p');
  });

  it('resumes exactly from stateDict', () => {
    const run = (resumeAt: number | null): number[] => {
      let p = param([1, -2, 3], 'f32');
      let opt = new SGD([p], { lr: 0.05, momentum: 0.9, weightDecay: 0.01 });
      for (let s = 0; s < 5; s++) {
        if (s === resumeAt) {
          const saved = opt.stateDict();
          p = new Parameter((p.data as Float32Array).slice(), [3]);
          opt = new SGD([p], { lr: 1 });
          opt.loadStateDict(saved);
        }
        setGrad(p, [s * 0.1, -0.2, 0.3 - s * 0.05]);
        opt.step();
      }
      return Array.from(p.data as Float32Array);
    };
    assert.deepEqual(run(3), run(null));
  });

  it('validates Nesterov settings', () => {
    assert.throws(
      () => new SGD([param([1])], { lr: 1, nesterov: true }),
      /Nesterov momentum needs momentum > 0/,
    );
  });
});
