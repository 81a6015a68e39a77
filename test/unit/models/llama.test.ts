import assert from 'node:assert/strict';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, describe, it } from 'node:test';
import { openCheckpoint } from '../../../src/io/index.ts';
import {
  type CausalLM,
  createModel,
  generate,
  KvCache,
  type LlamaForCausalLM,
  llamaConfigJson,
  loadModel,
  saveModel,
} from '../../../src/models/index.ts';
import { fromArray, noGrad, scope, slice } from '../../../src/tensor/index.ts';
import { RANDOM_REFERENCE_CASES, randomizeBiasesAndNorms } from '../../fixtures/random-llama-cases.ts';

const reference = JSON.parse(
  readFileSync(join(import.meta.dirname, '..', '..', 'fixtures', 'random-llama-reference.json'), 'utf8'),
) as Record<string, { ids: number[]; logits: number[][] }>;

const tmp = mkdtempSync(join(tmpdir(), 'attune-llama-test-'));
after(() => rmSync(tmp, { recursive: true, force: true }));

function fullLogits(model: CausalLM, ids: readonly number[]): Float32Array {
  return noGrad(() =>
    scope(() => {
      const hidden = model.forwardHidden(fromArray(Int32Array.from(ids), [1, ids.length], { dtype: 'i32' }));
      return Float32Array.from(model.logits(hidden).data as Float32Array);
    }),
  );
}

function relMaxDiff(a: ArrayLike<number>, b: ArrayLike<number>): number {
  let d = 0;
  let m = 0;
  for (let i = 0; i < a.length; i++) {
    d = Math.max(d, Math.abs(a[i]! - b[i]!));
    m = Math.max(m, Math.abs(b[i]!));
  }
  return d / m;
}

const tinyConfig = llamaConfigJson({
  vocabSize: 50,
  hiddenSize: 32,
  intermediateSize: 48,
  numLayers: 2,
  numHeads: 4,
  numKvHeads: 2,
});

describe('llama family vs an independent PyTorch implementation of the Hub forward', () => {
  for (const c of RANDOM_REFERENCE_CASES) {
    it(`${c.name}: logits within 1e-4 (max|d| / max|ref|)`, () => {
      const model = randomizeBiasesAndNorms(createModel(c.config, { seed: c.seed }), c.seed + 1000);
      const ref = reference[c.name]!;
      assert.deepEqual(ref.ids, c.ids);
      const ours = fullLogits(model, c.ids);
      const err = relMaxDiff(ours, ref.logits.flat());
      assert.ok(err <= 1e-4, `${c.name}: relative max error ${err}`);
    });
  }
});

describe('save / load', () => {
  it('round-trips a random model bit-exactly with the Hub names, shapes, dtypes and config keys', () => {
    const model = createModel({ ...tinyConfig, tie_word_embeddings: false }, { seed: 3 });
    const dir = join(tmp, 'roundtrip');
    saveModel(model, dir);
    const reader = openCheckpoint(dir);
    const names = reader.names();
    assert.ok(names.includes('model.layers.1.self_attn.q_proj.weight'));
    assert.ok(names.includes('lm_head.weight'));
    assert.ok(!names.some((n) => n.includes('dropout')));
    assert.deepEqual(reader.info('model.layers.0.self_attn.k_proj.weight').shape, [16, 32]);
    assert.equal(reader.info('model.norm.weight').dtype, 'F32');
    assert.equal(reader.metadata().format, 'pt');
    reader.close();
    const config = JSON.parse(readFileSync(join(dir, 'config.json'), 'utf8'));
    for (const key of [
      'model_type',
      'hidden_size',
      'num_key_value_heads',
      'rms_norm_eps',
      'rope_theta',
      'torch_dtype',
      'tie_word_embeddings',
      'architectures',
    ]) {
      assert.ok(key in config, `config.json has ${key}`);
    }
    const loaded = loadModel(dir).model;
    const a = model.stateDict();
    const b = loaded.stateDict();
    assert.deepEqual([...a.keys()].sort(), [...b.keys()].sort());
    for (const [name, t] of a) assert.deepEqual(b.get(name)!.data, t.data, name);
  });
  it('writes tied embeddings once, as model.embed_tokens.weight', () => {
    const dir = join(tmp, 'tied');
    saveModel(createModel(tinyConfig, { seed: 4 }), dir);
    const reader = openCheckpoint(dir);
    assert.ok(reader.has('model.embed_tokens.weight'));
    assert.ok(!reader.has('lm_head.weight'));
    reader.close();
  });
  it('loads a bf16 copy whose logits stay close to f32', () => {
    const dir = join(tmp, 'bf16src');
    const model = createModel(tinyConfig, { seed: 5 });
    saveModel(model, dir);
    const bf = loadModel(dir, { dtype: 'bf16' }).model as LlamaForCausalLM;
    assert.equal(bf.model.layers.at(0).self_attn.q_proj.weight.dtype, 'bf16');
    const ids = [1, 2, 3, 4, 5];
    assert.ok(relMaxDiff(fullLogits(bf, ids), fullLogits(model, ids)) < 2e-2);
  });
  it('names the config field, its value and the tensor when config and weights disagree, and loads nothing', () => {
    const dir = join(tmp, 'broken');
    saveModel(createModel(tinyConfig, { seed: 6 }), dir);
    const config = JSON.parse(readFileSync(join(dir, 'config.json'), 'utf8'));
    writeFileSync(join(dir, 'config.json'), JSON.stringify({ ...config, intermediate_size: 40 }));
    assert.throws(
      () => loadModel(dir),
      /broken\/config\.json: intermediate_size is 40 but model\.layers\.0\.mlp\.gate_proj\.weight is \[48,32\]$/,
    );
    writeFileSync(join(dir, 'config.json'), JSON.stringify({ ...config, num_hidden_layers: 3 }));
    assert.throws(
      () => loadModel(dir),
      /config\.json: num_hidden_layers is 3 but the checkpoint holds 2 layer\(s\) \(model\.layers\.0 to model\.layers\.1\)/,
    );
    writeFileSync(
      join(dir, 'config.json'),
      JSON.stringify({ ...config, rope_scaling: { rope_type: 'yarn', factor: 2 } }),
    );
    assert.throws(() => loadModel(dir), /'rope_scaling.rope_type' = "yarn" is not supported/);
    writeFileSync(join(dir, 'config.json'), JSON.stringify({ ...config, hidden_act: 'gelu' }));
    assert.throws(() => loadModel(dir), /'hidden_act' = "gelu" is not supported/);
  });
});

describe('generation', () => {
  const model = createModel({ ...tinyConfig, initializer_range: 0.5 }, { seed: 7 });
  it('with the KV cache equals recomputing the full sequence at every step', () => {
    const prompt = [1, 7, 3];
    const g = generate(model, prompt, { maxNewTokens: 12 });
    const seq = [...prompt];
    const cache = new KvCache(model.config, 4);
    let cachedLogits: Float32Array | null = null;
    noGrad(() =>
      scope(() => {
        const h = model.forwardHidden(
          fromArray(Int32Array.from(prompt), [1, prompt.length], { dtype: 'i32' }),
          { cache },
        );
        cachedLogits = Float32Array.from(model.logits(slice(h, 1, prompt.length - 1)).data as Float32Array);
      }),
    );
    for (const next of g.generatedIds) {
      const full = fullLogits(model, seq);
      const lastRow = full.subarray(full.length - 50);
      assert.ok(relMaxDiff(cachedLogits!, lastRow) <= 1e-5, `step ${seq.length}`);
      let best = 0;
      for (let i = 1; i < 50; i++) if (lastRow[i]! > lastRow[best]!) best = i;
      assert.equal(next, best);
      seq.push(next);
      noGrad(() =>
        scope(() => {
          const h = model.forwardHidden(fromArray(Int32Array.from([next]), [1, 1], { dtype: 'i32' }), {
            cache,
          });
          cachedLogits = Float32Array.from(model.logits(h).data as Float32Array);
        }),
      );
    }
  });
  it('is reproducible for a seed and varies across seeds when sampling', () => {
    const opts = { maxNewTokens: 16, temperature: 1.5, topK: 20, topP: 0.95 };
    const a = generate(model, [1, 2], { ...opts, seed: 1 }).generatedIds;
    assert.deepEqual(generate(model, [1, 2], { ...opts, seed: 1 }).generatedIds, a);
    const others = [2, 3, 4].map((seed) => generate(model, [1, 2], { ...opts, seed }).generatedIds.join(','));
    assert.ok(others.some((o) => o !== a.join(',')));
  });
  it('stops at an EOS id and respects maxNewTokens', () => {
    const g = generate(model, [1, 2], { maxNewTokens: 5 });
    assert.equal(g.generatedIds.length, 5);
    assert.equal(g.stopReason, 'length');
    const eos = g.generatedIds[2]!;
    const stopped = generate(model, [1, 2], { maxNewTokens: 5, eosTokenIds: [eos] });
    assert.equal(stopped.stopReason, 'eos');
    assert.equal(stopped.generatedIds.at(-1), eos);
    assert.ok(stopped.generatedIds.length <= 3);
  });
});
