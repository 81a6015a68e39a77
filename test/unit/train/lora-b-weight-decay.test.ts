import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { ConfigError } from '../../../src/errors.ts';
import { applyLora, loraTuner } from '../../../src/peft/index.ts';
import { fromArray, Rng } from '../../../src/tensor/index.ts';
import { AdamW } from '../../../src/train/optim/index.ts';
import { optimizerGroups } from '../../../src/train/trainer.ts';
import { randomizeLora, tinyLlama } from '../peft/helpers.ts';

/** One AdamW step with zero gradients: only the decoupled decay moves a parameter, p <- p (1 - lr wd). */
function stepWithZeroGrads(decayB: number | null, targets?: string[]) {
  const model = tinyLlama();
  const options = { r: 2, lora_b_weight_decay: decayB, ...(targets ? { target_modules: targets } : {}) };
  const adapter = applyLora(model, loraTuner.fromOptions(options, { seed: 0 }));
  randomizeLora(model, 7);
  // lora_embedding_A starts at zeros (PEFT): give it values so its decay shows
  const rng = new Rng(11);
  for (const [n, p] of model.namedParameters())
    if (n.endsWith('.lora_embedding_A')) p.fillWith(() => rng.normal());
  const params = adapter.namedTrainableParameters();
  const before = new Map(params.map(([n, p]) => [n, Float64Array.from(p.data as Float32Array)]));
  const groups = optimizerGroups(params, new Set(), adapter.weightDecayOverrides());
  const opt = new AdamW(groups, { lr: 0.1, weightDecay: 0.01 });
  for (const [, p] of params) p.grad = fromArray(new Float32Array(p.size), p.shape, { track: false });
  opt.step();
  return params.map(([n, p]) => ({ name: n, before: before.get(n)!, after: p.data as Float32Array }));
}

function ratio(before: Float64Array, after: Float32Array): number {
  let i = 0;
  while (before[i] === 0) i++;
  return after[i]! / before[i]!;
}

describe('lora_b_weight_decay (STAR calibration constraint)', () => {
  it('decays lora_B by lr * 0.5 and leaves lora_A at the optimizer decay', () => {
    const rows = stepWithZeroGrads(0.5);
    const bs = rows.filter((r) => r.name.endsWith('lora_B.weight'));
    const as = rows.filter((r) => r.name.endsWith('lora_A.weight'));
    assert.ok(bs.length > 0 && as.length === bs.length);
    for (const r of bs) assert.ok(Math.abs(ratio(r.before, r.after) - (1 - 0.1 * 0.5)) < 1e-6, r.name);
    for (const r of as) assert.ok(Math.abs(ratio(r.before, r.after) - (1 - 0.1 * 0.01)) < 1e-6, r.name);
  });

  it('covers lora_embedding_B of an adapted Embedding too, not lora_embedding_A', () => {
    const rows = stepWithZeroGrads(0.5, ['q_proj', 'embed_tokens']);
    const eb = rows.filter((r) => r.name.endsWith('.lora_embedding_B'));
    const ea = rows.filter((r) => r.name.endsWith('.lora_embedding_A'));
    assert.deepEqual(
      eb.map((r) => r.name),
      ['model.embed_tokens.lora_embedding_B'],
    );
    assert.equal(ea.length, 1);
    for (const r of [...eb, ...rows.filter((r) => r.name.endsWith('lora_B.weight'))])
      assert.ok(Math.abs(ratio(r.before, r.after) - (1 - 0.1 * 0.5)) < 1e-6, r.name);
    for (const r of [...ea, ...rows.filter((r) => r.name.endsWith('lora_A.weight'))])
      assert.ok(Math.abs(ratio(r.before, r.after) - (1 - 0.1 * 0.01)) < 1e-6, r.name);
  });

  it('null keeps one decay for every matrix', () => {
    for (const r of stepWithZeroGrads(null))
      assert.ok(Math.abs(ratio(r.before, r.after) - (1 - 0.1 * 0.01)) < 1e-6, r.name);
  });

  it('groups: biases and norms without decay, overrides by value, every parameter once', () => {
    const model = tinyLlama();
    const adapter = applyLora(model, loraTuner.fromOptions({ r: 2, lora_b_weight_decay: 0.5 }, { seed: 0 }));
    const params = adapter.namedTrainableParameters();
    const groups = optimizerGroups(params, new Set([params[0]![0]]), adapter.weightDecayOverrides());
    const all = groups.flatMap((g) => g.params);
    assert.equal(all.length, params.length);
    assert.equal(new Set(all).size, params.length);
    const bGroup = groups.find((g) => g.weightDecay === 0.5)!;
    assert.ok(bGroup.params.every((p) => params.find(([, q]) => q === p)![0].endsWith('lora_B.weight')));
    // params[0] is a lora_A (listed first per layer) named as a no-decay parameter here
    assert.deepEqual(groups.find((g) => g.weightDecay === 0)!.params, [params[0]![1]]);
  });

  it('rejects a negative decay', () => {
    assert.throws(() => applyLora(tinyLlama(), { loraBWeightDecay: -1 }), ConfigError);
  });
});
