import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { backward, fromArray, noGrad, Rng, scope } from '../../../src/tensor/index.ts';
import { AdamW } from '../../../src/train/optim/index.ts';
import { TinyTransformer } from './tiny-transformer.ts';

describe('tiny attention model', () => {
  it('has Hub-style names', () => {
    const m = new TinyTransformer({ vocab: 7, dim: 8, heads: 2, layers: 1, hidden: 16, maxPos: 8, seed: 1 });
    const names = m.namedParameters().map(([n]) => n);
    assert.deepEqual(names.slice(0, 3), [
      'model.embed_tokens.weight',
      'model.layers.0.input_layernorm.weight',
      'model.layers.0.self_attn.q_proj.weight',
    ]);
    assert.ok(names.includes('model.layers.0.mlp.down_proj.weight'));
    assert.deepEqual(names.slice(-2), ['model.norm.weight', 'lm_head.weight']);
    assert.ok(!m.stateDict().has('rope_cos'), 'RoPE tables are not persistent');
  });

  it('overfits a short sequence that needs attention (seeded; loss from ~ln(V) to < 0.05)', () => {
    const vocab = 10;
    const T = 20;
    // A random sequence in which the current token alone does not determine the next one (so the
    // model must attend to the previous token) but the last two tokens always do.
    const rng = new Rng(5);
    let seq: number[] = [];
    for (;;) {
      seq = Array.from({ length: T + 1 }, () => rng.int(vocab));
      const bigram = new Map<number, Set<number>>();
      const trigram = new Map<string, Set<number>>();
      for (let t = 0; t < T; t++) {
        if (!bigram.has(seq[t]!)) bigram.set(seq[t]!, new Set());
        bigram.get(seq[t]!)!.add(seq[t + 1]!);
        const key = t === 0 ? `start,${seq[0]}` : `${seq[t - 1]},${seq[t]}`;
        if (!trigram.has(key)) trigram.set(key, new Set());
        trigram.get(key)!.add(seq[t + 1]!);
      }
      const ambiguous = [...bigram.values()].filter((s) => s.size > 1).length;
      if (ambiguous >= 3 && [...trigram.values()].every((s) => s.size === 1)) break;
    }
    const ids = fromArray([seq.slice(0, T)], undefined, { dtype: 'i32', track: false });
    const labels = fromArray([seq.slice(1)], undefined, { dtype: 'i32', track: false });
    const model = new TinyTransformer({
      vocab,
      dim: 32,
      heads: 4,
      layers: 1,
      hidden: 64,
      maxPos: T,
      seed: 3,
    });
    const opt = new AdamW(model.trainableParameters(), { lr: 1e-2, weightDecay: 0 });
    let first = 0;
    for (let step = 0; step < 150; step++) {
      const loss = scope(() => {
        const l = model.loss(ids, labels);
        backward(l);
        return l.item();
      });
      if (step === 0) first = loss;
      opt.step();
      opt.zeroGrad();
    }
    const final = noGrad(() => scope(() => model.loss(ids, labels).item()));
    assert.ok(Math.abs(first - Math.log(vocab)) < 1, `initial loss ${first}`);
    assert.ok(final < 0.05, `final loss ${final}`);
  });
});
