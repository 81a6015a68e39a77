/**
 * Weak-to-strong logit fusion and contrastive decoding: the dynamic weights' objective by hand on a
 * constructed 3-token case, the grid search's argmin, fused and contrast logits of tiny random models
 * decoded through their KV caches against a hand computation from full forwards, and the error for
 * members of different vocabularies.
 */
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import {
  type CausalLM,
  ContrastModel,
  contrastLogits,
  createModel,
  distributionStats,
  dynamicFusionWeights,
  FusedModel,
  fusionObjective,
  generate,
  generateBatch,
  llamaConfigJson,
  MASKED_LOGIT,
  VocabularyMismatchError,
} from '../../../src/models/index.ts';
import { fromArray, noGrad } from '../../../src/tensor/index.ts';

const tiny = (seed: number, vocabSize = 32) =>
  createModel(
    {
      ...llamaConfigJson({
        vocabSize,
        hiddenSize: 16,
        intermediateSize: 24,
        numLayers: 2,
        numHeads: 4,
        numKvHeads: 2,
      }),
      initializer_range: 0.5,
    },
    { seed },
  );

/** Plain-arithmetic softmax and KL for the hand checks. */
const probs = (z: number[]) => {
  const m = Math.max(...z);
  const e = z.map((x) => Math.exp(x - m));
  const s = e.reduce((a, b) => a + b, 0);
  return e.map((x) => x / s);
};
const kl = (x: number[], y: number[]) => x.reduce((s, xi, i) => s + xi * Math.log(xi / y[i]!), 0);

/** Last-position logits of `ids` by a full forward (no cache). */
function lastLogits(model: CausalLM, ids: readonly number[]): number[] {
  return noGrad(() => {
    const hidden = model.forwardHidden(fromArray(Int32Array.from(ids), [1, ids.length], { dtype: 'i32' }));
    const z = model.logits(hidden).data;
    const V = model.config.vocabSize;
    return Array.from(z.subarray((ids.length - 1) * V, ids.length * V));
  });
}

describe('dynamic fusion weights', () => {
  const strong = [2, 0.5, -1];
  const base = [1, 1, 0];
  const tuned = [0, 2, 0.5];

  it('the objective equals the two squared KL constraints computed by hand', () => {
    for (const w of [0, 0.4, 1, 1.7]) {
      const z = strong.map((s, v) => s + w * (tuned[v]! - base[v]!));
      const q = probs(z);
      const p = probs(strong);
      const f = probs(tuned);
      const b = probs(base);
      const hand = (kl(q, p) - kl(f, b)) ** 2 + (kl(q, f) - kl(p, b)) ** 2;
      const got = fusionObjective(strong, [{ tuned, base }], [w]);
      assert.ok(Math.abs(got - hand) < 1e-12, `w=${w}: ${got} vs ${hand}`);
    }
  });

  it('picks the grid point of least objective (one expert: exhaustive)', () => {
    const w = dynamicFusionWeights(strong, [{ tuned, base }]);
    const grid = Array.from({ length: 21 }, (_, k) => k * 0.1);
    const values = grid.map((g) => fusionObjective(strong, [{ tuned, base }], [g]));
    const best = grid[values.indexOf(Math.min(...values))]!;
    assert.ok(Math.abs(w[0]! - best) < 1e-9, `${w[0]} vs ${best}`);
    // not the proxy-tuning default: the rule moves the weight on this case
    assert.notEqual(Math.round(best * 10), 10);
  });

  it('when the strong base equals the small base, w = 1 meets both constraints exactly', () => {
    // q(1) = f: KL(q||p) = KL(f||b) and KL(q||f) = 0 = KL(p||b)
    const w = dynamicFusionWeights(base, [{ tuned, base }]);
    assert.ok(Math.abs(w[0]! - 1) < 1e-9, `w = ${w[0]}`);
    assert.ok(fusionObjective(base, [{ tuned, base }], [1]) < 1e-20);
  });

  it('several experts: coordinate descent never ends worse than proxy tuning at w = 1', () => {
    const second = { tuned: [1, -1, 2], base: [0.5, 0, 1] };
    const experts = [{ tuned, base }, second];
    const w = dynamicFusionWeights(strong, experts);
    assert.equal(w.length, 2);
    assert.ok(fusionObjective(strong, experts, w) <= fusionObjective(strong, experts, [1, 1]) + 1e-12);
  });
});

describe('FusedModel', () => {
  const strong = tiny(1);
  const base = tiny(2);
  const tunedA = tiny(3);
  const tunedB = tiny(4);
  const prompt = [3, 7, 1, 9];

  it('decodes z_strong + w (z_tuned - z_base) through per-member KV caches (fixed weight)', () => {
    const fused = new FusedModel(
      { name: 'strong', model: strong },
      [{ tuned: { name: 'tuned', model: tunedA }, base: { name: 'base', model: base } }],
      { weights: [0.7] },
    );
    const out = generate(fused, prompt, { maxNewTokens: 6, returnStats: true });
    const ids = [...prompt];
    out.generatedIds.forEach((id, t) => {
      const s = lastLogits(strong, ids);
      const f = lastLogits(tunedA, ids);
      const b = lastLogits(base, ids);
      const z = s.map((x, v) => x + 0.7 * (f[v]! - b[v]!));
      assert.equal(id, z.indexOf(Math.max(...z)), `token ${t}`);
      const hand = distributionStats(z, id);
      assert.ok(Math.abs(out.tokenStats![t]!.logprob - hand.logprob) < 1e-4, `token ${t} logprob`);
      ids.push(id);
    });
  });

  it('dynamic weights per step equal dynamicFusionWeights of the hand logits; a shared base runs once', () => {
    const seen: number[][] = [];
    const fused = new FusedModel(
      { name: 'strong', model: strong },
      [
        { tuned: { name: 'a', model: tunedA }, base: { name: 'base', model: base } },
        { tuned: { name: 'b', model: tunedB }, base: { name: 'base', model: base } },
      ],
      { onWeights: (w) => seen.push([...w]) },
    );
    assert.equal(fused.members.length, 4);
    const out = generate(fused, prompt, { maxNewTokens: 4 });
    const ids = [...prompt];
    out.generatedIds.forEach((id, t) => {
      const s = lastLogits(strong, ids);
      const experts = [
        { tuned: lastLogits(tunedA, ids), base: lastLogits(base, ids) },
        { tuned: lastLogits(tunedB, ids), base: lastLogits(base, ids) },
      ];
      const w = dynamicFusionWeights(s, experts);
      assert.deepEqual(
        seen[t]!.map((x) => x.toFixed(6)),
        w.map((x) => x.toFixed(6)),
        `weights at step ${t}`,
      );
      ids.push(id);
    });
  });

  it('batched decoding of a fused model equals decoding each sequence alone', () => {
    const fused = new FusedModel({ name: 'strong', model: strong }, [
      { tuned: { name: 'tuned', model: tunedA }, base: { name: 'base', model: base } },
    ]);
    const seqs = [
      { promptIds: prompt, seed: 1 },
      { promptIds: [5, 2], seed: 2 },
      { promptIds: prompt, seed: 3 },
    ];
    const batch = generateBatch(fused, seqs, { maxNewTokens: 5, temperature: 0.8 });
    seqs.forEach((s, i) => {
      const alone = generate(fused, s.promptIds, { maxNewTokens: 5, temperature: 0.8, seed: s.seed });
      assert.deepEqual(batch[i]!.generatedIds, alone.generatedIds, `sequence ${i}`);
    });
  });

  it('members of different vocabularies are a clear error naming both', () => {
    assert.throws(
      () =>
        new FusedModel({ name: 'big/model', model: strong }, [
          { tuned: { name: 'small/tuned', model: tiny(5, 40) }, base: { name: 'small/base', model: base } },
        ]),
      (e: unknown) =>
        e instanceof VocabularyMismatchError &&
        /big\/model and small\/tuned/.test(e.message) &&
        /32 vs 40/.test(e.message),
    );
  });

  it('a wrong number of fixed weights is refused', () => {
    assert.throws(
      () =>
        new FusedModel(
          { name: 's', model: strong },
          [{ tuned: { name: 't', model: tunedA }, base: { name: 'b', model: base } }],
          { weights: [1, 2] },
        ),
      /2 fixed weights for 1 experts/,
    );
  });
});

describe('ContrastModel', () => {
  const tuned = tiny(6);
  const base = tiny(7);

  it('contrast logits: log p_t - log p_b inside the plausible head, masked outside', () => {
    const t = [2, 1, -3];
    const b = [0, 2, 0];
    const s = contrastLogits(t, b, 0.1);
    const pt = probs(t);
    const pb = probs(b);
    for (let v = 0; v < 3; v++) {
      if (pt[v]! >= 0.1 * Math.max(...pt)) assert.ok(Math.abs(s[v]! - Math.log(pt[v]! / pb[v]!)) < 1e-12);
      else assert.equal(s[v], MASKED_LOGIT);
    }
    assert.equal(s[2], MASKED_LOGIT);
  });

  it('greedy decoding picks the argmax of the contrast of full forwards', () => {
    const model = new ContrastModel({ name: 'tuned', model: tuned }, { name: 'base', model: base });
    const prompt = [4, 4, 8];
    const out = generate(model, prompt, { maxNewTokens: 5 });
    const ids = [...prompt];
    for (const id of out.generatedIds) {
      const s = contrastLogits(lastLogits(tuned, ids), lastLogits(base, ids));
      assert.equal(id, Array.from(s).indexOf(Math.max(...s)));
      ids.push(id);
    }
  });
});
