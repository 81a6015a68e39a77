/**
 * bf16-mixed in nn/: `setComputePrecision` reaches every GEMM layer of a tree (pinned layers keep
 * theirs), a bf16-compute Linear is the f32 product of bf16-rounded inputs, and
 * `storeFrozenInBf16` replaces exactly the frozen f32 matrices by rounded bf16 copies, keeping
 * tied parameters tied.
 */
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { roundToBf16 } from '../../../src/backend/js/gemm-bf16.ts';
import { Conv1D, Linear, Module, Parameter, storeFrozenInBf16 } from '../../../src/nn/index.ts';
import { fromArray, matmul, Rng, toBf16Bits } from '../../../src/tensor/index.ts';

class Tree extends Module {
  readonly frozen: Linear;
  readonly trained: Linear;
  readonly pinned: Linear;
  readonly conv: Conv1D;
  readonly norm: Parameter;
  readonly tied: Module;
  constructor() {
    super();
    this.frozen = this.registerModule('frozen', new Linear(8, 6, { seed: 1 }));
    this.trained = this.registerModule('trained', new Linear(6, 4, { seed: 2 }));
    this.pinned = this.registerModule('pinned', new Linear(4, 2, { seed: 3, pinPrecision: 'f32' }));
    this.conv = this.registerModule('conv', new Conv1D(4, 3, { seed: 4 }));
    this.norm = this.registerParameter('norm', Parameter.full([8], 1));
    // a second module holding frozen.weight under another name (tied weights)
    this.tied = this.registerModule('tied', new Module());
    this.tied.registerParameter('weight', this.frozen.weight);
    this.frozen.freeze();
    this.conv.freeze();
    this.norm.freeze();
  }
}

describe('setComputePrecision', () => {
  it('sets every Linear and Conv1D of the tree, except pinned layers, and checks its argument', () => {
    const t = new Tree();
    assert.equal(t.frozen.computePrecision, 'f32');
    t.setComputePrecision('bf16');
    assert.equal(t.frozen.computePrecision, 'bf16');
    assert.equal(t.trained.computePrecision, 'bf16');
    assert.equal(t.conv.computePrecision, 'bf16');
    assert.equal(t.pinned.computePrecision, 'f32');
    t.setComputePrecision('f32');
    assert.equal(t.trained.computePrecision, 'f32');
    assert.throws(
      () => t.setComputePrecision('fp16' as 'f32'),
      /setComputePrecision: expected 'f32' or 'bf16', found 'fp16'/,
    );
  });

  it('a bf16 Linear computes x W^T on bf16-rounded inputs with f32 accumulation, bias in f32', () => {
    const l = new Linear(40, 5, { seed: 7 });
    const rng = new Rng(9);
    const xs = Array.from({ length: 3 * 40 }, () => rng.normal());
    const x = fromArray(xs, [3, 40]);
    const f32 = l.forward(x).toArray();
    l.setComputePrecision('bf16');
    const got = l.forward(x).toArray();
    const xr = fromArray(xs.map(roundToBf16), [3, 40]);
    const wr = fromArray(l.weight.toArray().map(roundToBf16), [5, 40]);
    const bias = l.bias!.toArray();
    const want = matmul(xr, wr, { transB: true })
      .toArray()
      .map((v, i) => v + bias[i % 5]!);
    let offF32 = 0;
    for (let i = 0; i < got.length; i++) {
      assert.ok(Math.abs(got[i]! - want[i]!) <= 1e-5, `element ${i}: ${got[i]} vs rounded-input ${want[i]}`);
      offF32 = Math.max(offF32, Math.abs(got[i]! - f32[i]!));
    }
    assert.ok(offF32 > 1e-5, `bf16 compute identical to f32 (max diff ${offF32})`);
  });
});

describe('storeFrozenInBf16', () => {
  it('converts exactly the frozen f32 matrices, once, under every name, and drops the f32 copy', () => {
    const t = new Tree();
    const before = t.frozen.weight.toArray();
    const convBefore = t.conv.weight.toArray();
    const trainedWeight = t.trained.weight;
    const frozenBias = t.frozen.bias;
    const result = storeFrozenInBf16(t);
    assert.deepEqual(result.converted, ['frozen.weight', 'conv.weight']);
    assert.equal(result.bytesSaved, 2 * (6 * 8 + 4 * 3));
    assert.equal(t.frozen.weight.dtype, 'bf16');
    assert.equal(t.frozen.weight.requiresGrad, false);
    assert.deepEqual([...(t.frozen.weight.data as Uint16Array)], before.map(toBf16Bits));
    assert.deepEqual([...(t.conv.weight.data as Uint16Array)], convBefore.map(toBf16Bits));
    // tied: one bf16 parameter under both names
    assert.equal(t.tied.getParameter('weight'), t.frozen.weight);
    assert.equal(t.getParameter('frozen.weight'), t.frozen.weight);
    // trainable, vectors (biases, norms) and pinned-but-trainable layers untouched
    assert.equal(t.trained.weight, trainedWeight);
    assert.equal(t.trained.weight.dtype, 'f32');
    assert.equal(t.frozen.bias, frozenBias);
    assert.equal(t.frozen.bias!.dtype, 'f32');
    assert.equal(t.norm.dtype, 'f32');
    assert.equal(t.pinned.weight.dtype, 'f32');
    // the bf16 Linear still runs (bf16 weight, f32 input)
    assert.deepEqual(t.frozen.forward(fromArray(new Array(8).fill(0), [1, 8])).shape, [1, 6]);
    // a second call has nothing left to convert
    assert.deepEqual(storeFrozenInBf16(t).converted, []);
  });

  it('with `only`, converts only the parameters in the set', () => {
    const t = new Tree();
    const result = storeFrozenInBf16(t, new Set([t.conv.weight]));
    assert.deepEqual(result.converted, ['conv.weight']);
    assert.equal(t.frozen.weight.dtype, 'f32');
    assert.equal(t.conv.weight.dtype, 'bf16');
  });
});
