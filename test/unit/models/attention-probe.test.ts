/** The opt-in previous-token attention output: a hand case, the attention kernel as oracle, no effect when off. */
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import {
  createAttentionProbe,
  createModel,
  gpt2ConfigJson,
  llamaConfigJson,
  recordPrevTokenAttention,
} from '../../../src/models/index.ts';
import { attention, fromArray, noGrad, Rng } from '../../../src/tensor/index.ts';

const close = (a: number, b: number, tol = 1e-6) => assert.ok(Math.abs(a - b) <= tol, `${a} != ${b}`);

describe('recordPrevTokenAttention', () => {
  it('by hand: one head, D = 1', () => {
    // q = [1, 1, 2], k = [0, 1, 0], scale 1: row t = 2 has logits q2*k = [0, 2, 0]
    // -> p(2, 1) = e^2 / (e^2 + 2); row t = 1: logits [0, 1] -> p(1, 0) = 1 / (1 + e)
    const q = fromArray([1, 1, 2], [1, 3, 1, 1]);
    const k = fromArray([0, 1, 0], [1, 3, 1, 1]);
    const probe = createAttentionProbe(1);
    recordPrevTokenAttention(probe, 0, q, k, 1);
    close(probe.prevToken[0]![0]!, 1 / (1 + Math.E), 1e-12);
    close(probe.prevToken[0]![1]!, Math.exp(2) / (Math.exp(2) + 2), 1e-12);
  });
  it('equals the attention kernel probabilities (values = one-hot positions), grouped KV heads', () => {
    const T = 6;
    const Hq = 4;
    const Hkv = 2;
    const D = T; // v_j = e_j makes the output row the probability row
    const rng = new Rng(3);
    const q = fromArray(
      Array.from({ length: T * Hq * D }, () => rng.normal()),
      [1, T, Hq, D],
    );
    const k = fromArray(
      Array.from({ length: T * Hkv * D }, () => rng.normal()),
      [1, T, Hkv, D],
    );
    const v = new Float32Array(T * Hkv * D);
    for (let j = 0; j < T; j++) for (let h = 0; h < Hkv; h++) v[(j * Hkv + h) * D + j] = 1;
    const out = noGrad(() => attention(q, k, fromArray(v, [1, T, Hkv, D]), { causal: true })).data;
    const probe = createAttentionProbe(2);
    recordPrevTokenAttention(probe, 0, q, k, 1 / Math.sqrt(D));
    const n = T - 2;
    for (let h = 0; h < Hq; h++)
      for (let i = 0; i < n; i++) {
        const t = 2 + i;
        close(probe.prevToken[0]![h * n + i]!, out[(t * Hq + h) * D + (t - 1)]!, 1e-5);
      }
  });
  it("rejects 'from' < 1", () => {
    assert.throws(() => createAttentionProbe(0), /'from' must be an integer >= 1/);
  });
});

describe('the models record it only when asked', () => {
  const ids = fromArray(Int32Array.from([1, 5, 9, 2, 7]), [1, 5], { dtype: 'i32' });
  for (const [name, json] of [
    [
      'llama',
      llamaConfigJson({
        vocabSize: 20,
        hiddenSize: 16,
        intermediateSize: 24,
        numLayers: 3,
        numHeads: 4,
        numKvHeads: 2,
      }),
    ],
    ['gpt2', gpt2ConfigJson({ vocabSize: 20, hiddenSize: 16, numLayers: 3, numHeads: 4 })],
  ] as const) {
    it(`${name}: every layer, weights in (0, 1], hidden states unchanged; refused with a KV cache`, () => {
      const model = createModel({ ...json, initializer_range: 0.3 }, { seed: 1 });
      model.eval();
      const plain = noGrad(() => Array.from(model.forwardHidden(ids).data));
      const probe = createAttentionProbe(2);
      const probed = noGrad(() => Array.from(model.forwardHidden(ids, { attentionProbe: probe }).data));
      assert.deepEqual(probed, plain);
      assert.equal(probe.prevToken.length, 3);
      for (const layer of probe.prevToken) {
        assert.equal(layer.length, 4 * 3);
        assert.ok(layer.every((a) => a > 0 && a <= 1));
      }
      assert.throws(
        () =>
          model.forwardHidden(ids, { attentionProbe: createAttentionProbe(1), cache: model.createKvCache() }),
        /pass no KV cache/,
      );
    });
  }
});
