/** layer_freeze, hft and sparse_ft on GPT-2 (Conv1D weights stored [in, out], layers `transformer.h.N`). */
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { createModel, type Gpt2LMHeadModel, gpt2ConfigJson } from '../../../src/models/index.ts';
import { applyTuner, hftSelection, layerGroups, type SparseFtAdapter } from '../../../src/peft/index.ts';
import { backward, crossEntropy, fromArray, reshape, scope } from '../../../src/tensor/index.ts';
import { logitsOf, maxAbsDiff } from './helpers.ts';

const config = gpt2ConfigJson({ vocabSize: 50, hiddenSize: 16, numLayers: 2, numHeads: 2, maxPositions: 32 });

function tinyGpt2(seed = 3): Gpt2LMHeadModel {
  return createModel({ ...config, initializer_range: 0.2 }, { seed }).eval() as Gpt2LMHeadModel;
}

function backwardOnce(model: Gpt2LMHeadModel): void {
  const seq = [1, 5, 9, 22, 3, 17, 40, 8, 2];
  scope(() => {
    const ids = fromArray(Int32Array.from(seq.slice(0, -1)), [1, 8], { dtype: 'i32' });
    const labels = fromArray(Int32Array.from(seq.slice(1)), [8], { dtype: 'i32' });
    backward(crossEntropy(model.logits(reshape(model.forwardHidden(ids), [8, 16])), labels));
  });
}

describe('selective and sparse tuners on GPT-2', () => {
  it('layer groups: h.N layers, attention (c_attn, c_proj) and MLP units with their biases; wte/wpe embeddings', () => {
    const g = layerGroups(tinyGpt2());
    assert.equal(g.layers.length, 2);
    const attn = g.layers[0]!.filter((u) => u.block === 'attention').map((u) => u.names);
    assert.deepEqual(attn, [
      ['transformer.h.0.attn.c_attn.weight', 'transformer.h.0.attn.c_attn.bias'],
      ['transformer.h.0.attn.c_proj.weight', 'transformer.h.0.attn.c_proj.bias'],
    ]);
    assert.deepEqual(g.embeddings.sort(), ['transformer.wpe.weight', 'transformer.wte.weight']);
    assert.deepEqual(g.finalNorms.sort(), ['transformer.ln_f.bias', 'transformer.ln_f.weight']);
  });

  it('hft trains one of c_attn / c_proj per layer; layer_freeze trains the top layer', () => {
    const model = tinyGpt2();
    const names = hftSelection(model, 1, 0, 'freeze');
    for (const l of [0, 1]) {
      const a = names.has(`transformer.h.${l}.attn.c_attn.weight`);
      const p = names.has(`transformer.h.${l}.attn.c_proj.weight`);
      assert.ok(a !== p, `layer ${l}: exactly one attention matrix (3d^2 vs d^2 are equally close to 2d^2)`);
      assert.equal(names.has(`transformer.h.${l}.attn.c_attn.bias`), a, 'a bias follows its matrix');
    }
    const adapter = applyTuner(model, 'layer_freeze', { freezeFirstN: 1, trainFinalNorm: false });
    assert.ok(adapter.namedTrainableParameters().every(([n]) => n.startsWith('transformer.h.1.')));
  });

  it('sparse_ft adapts the Conv1D layers in their [in, out] layout; merge gives the same logits', () => {
    const model = tinyGpt2();
    const ids = [1, 5, 9, 22, 3];
    const adapter = applyTuner(model, 'sparse_ft', { density: 0.05, seed: 4 }) as SparseFtAdapter;
    assert.equal(adapter.sparseLayers.length, 8);
    for (const [, l] of adapter.sparseLayers) {
      const v = l.sft_delta.values.data as Float32Array;
      for (let j = 0; j < v.length; j++) v[j] = 0.3 * Math.sin(j + 1);
    }
    const adapted = logitsOf(model, ids);
    model.train();
    backwardOnce(model);
    for (const [n, p] of model.namedParameters())
      assert.equal(p.grad !== null, n.endsWith('.sft_delta.values'), `${n} gradient`);
    model.eval();
    const merged = adapter.mergeAndUnload() as Gpt2LMHeadModel;
    assert.ok(maxAbsDiff(logitsOf(merged, ids), adapted) < 1e-5);
    assert.ok(maxAbsDiff(adapted, logitsOf(tinyGpt2(), ids)) > 1e-3);
  });
});
