import assert from 'node:assert/strict';
import { rmSync } from 'node:fs';
import { join } from 'node:path';
import { after, describe, it } from 'node:test';
import { TensorMismatchError } from '../../../src/errors.ts';
import { Parameter } from '../../../src/nn/index.ts';
import { fromArray, type Tensor } from '../../../src/tensor/index.ts';
import { validateTrainConfig } from '../../../src/train/config.ts';
import { createOptimizer, SM3 } from '../../../src/train/optim/index.ts';
import { TrainingHalted, train } from '../../../src/train/trainer.ts';
import { FACTS, tempDir, writeJsonl, writeTinyModel } from '../../helpers/tiny-run.ts';

function matrix(values: number[][]): Parameter {
  return new Parameter(Float64Array.from(values.flat()), [values.length, values[0]!.length]);
}

function setGrad(p: Tensor, values: number[]): void {
  p.grad?.release();
  p.grad = fromArray(values, [...p.shape], { dtype: p.dtype, track: false });
}

function assertClose(actual: ArrayLike<number>, expected: number[], what: string, tol = 1e-12): void {
  assert.equal(actual.length, expected.length, what);
  for (let i = 0; i < expected.length; i++)
    assert.ok(
      Math.abs(actual[i]! - expected[i]!) <= tol,
      `${what}[${i}]: expected ${expected[i]}, found ${actual[i]}`,
    );
}

const G1 = [0.5, -1, 2, 0];
const G2 = [1, 1, 1, 1];
const s2 = Math.SQRT2;
const s5 = Math.sqrt(5);

describe('SM3', () => {
  it('matches hand-computed 2x2 steps: row/column accumulators, min over covers', () => {
    // step 1: nu = g^2, u = sign(g) (0 where g = 0); row' = [1, 4], col' = [4, 1]
    // step 2: nu = min(row, col) + 1 = [[2, 2], [5, 2]] (Adagrad would give 1 at (1, 1))
    const p = matrix([
      [1, 2],
      [3, 4],
    ]);
    const opt = new SM3([p], { lr: 0.1 });
    setGrad(p, G1);
    opt.step();
    assertClose(p.data as Float64Array, [0.9, 2.1, 2.9, 4], 'step 1');
    let st = opt.stateDict().params[0]!.buffers;
    assertClose(st.row!, [1, 4], 'row 1');
    assertClose(st.col!, [4, 1], 'col 1');
    assert.equal(st.momentum, null);
    setGrad(p, G2);
    opt.step();
    assertClose(
      p.data as Float64Array,
      [0.9 - 0.1 / s2, 2.1 - 0.1 / s2, 2.9 - 0.1 / s5, 4 - 0.1 / s2],
      'step 2',
    );
    st = opt.stateDict().params[0]!.buffers;
    assertClose(st.row!, [2, 5], 'row 2');
    assertClose(st.col!, [5, 2], 'col 2');
    assert.equal(opt.momentEstimate(p, 1, 0), 5);
  });

  it('momentum averages the preconditioned updates; a vector is Adagrad; weight decay is L2', () => {
    const p = matrix([
      [1, 2],
      [3, 4],
    ]);
    const opt = new SM3([p], { lr: 0.1, momentum: 0.5 });
    setGrad(p, G1);
    opt.step();
    assertClose(p.data as Float64Array, [0.95, 2.05, 2.95, 4], 'step 1');
    setGrad(p, G2);
    opt.step();
    const m2 = [0.25 + 0.5 / s2, -0.25 + 0.5 / s2, 0.25 + 0.5 / s5, 0.5 / s2];
    assertClose(
      p.data as Float64Array,
      [0.95, 2.05, 2.95, 4].map((x, i) => x - 0.1 * m2[i]!),
      'step 2',
    );
    const v = new Parameter(Float64Array.from([1, 1]), [2]);
    const vopt = new SM3([v], { lr: 0.1, weightDecay: 0.5 });
    setGrad(v, [1.5, -0.5]); // g + 0.5 p = [2, 0]
    vopt.step();
    assertClose(v.data as Float64Array, [0.9, 1], 'vector step 1');
    setGrad(v, [0.55, 0.5]); // g + 0.5 p = [1, 1]: acc [5, 1]
    vopt.step();
    assertClose(v.data as Float64Array, [0.9 - 0.1 / s5, 0.9], 'vector step 2');
  });

  it('state round-trips: a restored optimizer continues exactly; a bad state is refused', () => {
    const grads = [G1, G2, [0.3, -0.2, 0.1, 0.7], [-1, 0.5, 0.25, 2]];
    const run = (stopAt: number | null) => {
      let p = matrix([
        [1, 2],
        [3, 4],
      ]);
      let opt = new SM3([p], { lr: 0.05, momentum: 0.9 });
      grads.forEach((g, k) => {
        if (k === stopAt) {
          const state = opt.stateDict();
          const values = Float64Array.from(p.data as Float64Array);
          p = new Parameter(values, [2, 2]);
          opt = new SM3([p], { lr: 1, momentum: 0 });
          opt.loadStateDict(state);
        }
        setGrad(p, g);
        opt.step();
      });
      return Array.from(p.data as Float64Array);
    };
    assert.deepEqual(run(2), run(null));
    const p = matrix([
      [1, 2],
      [3, 4],
    ]);
    const opt = new SM3([p], { lr: 0.1 });
    setGrad(p, G1);
    opt.step();
    const state = opt.stateDict();
    state.params[0]!.buffers.row = new Float64Array(4);
    assert.throws(
      () => new SM3([p], { lr: 0.1 }).loadStateDict(state),
      (e: Error) =>
        e instanceof TensorMismatchError && /buffer 'row' must be a Float64Array of 2/.test(e.message),
    );
  });

  it('is registered as optimizer sm3; a run resumed mid-way equals the uninterrupted run', () => {
    const opt = createOptimizer({ name: 'sm3', momentum: 0.9 }, [{ params: [matrix([[1]])] }], 0.1);
    assert.ok(opt instanceof SM3 && opt.momentum === 0.9);
    const root = tempDir('attune-sm3-');
    after(() => rmSync(root, { recursive: true, force: true }));
    writeTinyModel(join(root, 'model'));
    writeJsonl(join(root, 'train.jsonl'), FACTS);
    const cfg = (dir: string) =>
      validateTrainConfig(
        {
          model: join(root, 'model'),
          data: { train: join(root, 'train.jsonl'), max_length: 32 },
          method: 'full',
          optimizer: { name: 'sm3', momentum: 0.9 },
          train: { steps: 5, batch_size: 2, lr: 1e-2, seed: 1 },
          output_dir: join(root, dir),
        },
        'test config',
      );
    const full = train(cfg('a'));
    assert.throws(() => train(cfg('b'), { haltAfterStep: 3 }), TrainingHalted);
    const resumed = train(cfg('b'), { resume: true });
    for (const [n, t] of full.adapter.state())
      assert.deepEqual(resumed.adapter.state().get(n)!.data, t.data, n);
  });
});
