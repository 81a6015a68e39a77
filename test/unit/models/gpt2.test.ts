import assert from 'node:assert/strict';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, describe, it } from 'node:test';
import { openCheckpoint, writeCheckpoint } from '../../../src/io/index.ts';
import {
  type CausalLM,
  createModel,
  type Gpt2LMHeadModel,
  generate,
  gpt2ConfigJson,
  loadModel,
  saveModel,
  scoreIds,
} from '../../../src/models/index.ts';
import { forceDropout } from '../../../src/nn/index.ts';
import { fromArray, noGrad, scope, slice, type Tensor } from '../../../src/tensor/index.ts';
import { gradCheck } from '../../helpers/gradcheck.ts';

const fixtures = join(import.meta.dirname, '..', '..', 'fixtures', 'gpt2-random');
/** Written by scripts/reference/gpt2_reference.py (numpy float64, HF's equations). */
const reference = JSON.parse(readFileSync(join(fixtures, 'reference.json'), 'utf8')) as Record<
  string,
  { ids: number[]; logits: number[][] }
>;

const tmp = mkdtempSync(join(tmpdir(), 'attune-gpt2-test-'));
after(() => rmSync(tmp, { recursive: true, force: true }));

function fullLogits(model: CausalLM, ids: readonly number[]): Float64Array {
  return noGrad(() =>
    scope(() => {
      const hidden = model.forwardHidden(fromArray(Int32Array.from(ids), [1, ids.length], { dtype: 'i32' }));
      return Float64Array.from(model.logits(hidden).data as Float32Array | Float64Array);
    }),
  );
}

/** max |a - b| / max |b|. */
function relMaxDiff(a: ArrayLike<number>, b: ArrayLike<number>): number {
  let d = 0;
  let m = 0;
  for (let i = 0; i < a.length; i++) {
    d = Math.max(d, Math.abs(a[i]! - b[i]!));
    m = Math.max(m, Math.abs(b[i]!));
  }
  return d / m;
}

const tiny = gpt2ConfigJson({ vocabSize: 40, hiddenSize: 16, numLayers: 2, numHeads: 4, maxPositions: 24 });

describe('gpt2 vs an independent float64 numpy implementation of the Hub forward', () => {
  for (const [name, ref] of Object.entries(reference)) {
    it(`${name}: logits within 1e-4 (max|d| / max|ref|), f32 and f64`, () => {
      const f32 = loadModel(join(fixtures, name));
      assert.equal(f32.config.modelType, 'gpt2');
      const ours = fullLogits(f32.model, ref.ids);
      const flat = ref.logits.flat();
      assert.equal(ours.length, flat.length);
      const d32 = relMaxDiff(ours, flat);
      assert.ok(d32 < 1e-4, `f32: ${d32}`);
      const f64 = loadModel(join(fixtures, name), { dtype: 'f64' });
      const d64 = relMaxDiff(fullLogits(f64.model, ref.ids), flat);
      assert.ok(d64 < 1e-8, `f64: ${d64}`);
    });
  }
  it('the cases cover untied heads, n_inner, exact gelu, unscaled attention, head dim 1 and base-model names', () => {
    assert.deepEqual(Object.keys(reference).sort(), [
      'gpt2-gelu-unscaled',
      'gpt2-head-dim-1',
      'gpt2-tied',
      'gpt2-untied-inner',
    ]);
  });
});

describe('gpt2 checkpoints', () => {
  it('keeps Conv1D weights in the stored [in, out] layout under the Hub names, and saves them so', () => {
    const loaded = loadModel(join(fixtures, 'gpt2-untied-inner'));
    const m = loaded.model as Gpt2LMHeadModel;
    assert.deepEqual(m.transformer.h.at(0).attn.c_attn.weight.shape, [24, 72]);
    assert.deepEqual(m.transformer.h.at(0).mlp.c_fc.weight.shape, [24, 40]);
    assert.deepEqual(m.transformer.h.at(0).mlp.c_proj.weight.shape, [40, 24]);
    assert.ok(m.lm_head !== null);
    const dir = join(tmp, 'resaved');
    saveModel(loaded.model, dir);
    const original = openCheckpoint(join(fixtures, 'gpt2-untied-inner'));
    const saved = openCheckpoint(dir);
    try {
      // every parameter under the same name and shape; the attn.bias mask buffers are not written
      const params = original.names().filter((n) => !n.endsWith('.attn.bias'));
      assert.ok(original.names().includes('transformer.h.0.attn.bias'));
      assert.deepEqual(saved.names(), params);
      for (const n of params) assert.deepEqual(saved.info(n).shape, original.info(n).shape, n);
      const a = original.read('transformer.h.2.attn.c_attn.weight').data as Float32Array;
      const b = saved.read('transformer.h.2.attn.c_attn.weight').data as Float32Array;
      assert.deepEqual(b, a);
    } finally {
      original.close();
      saved.close();
    }
  });
  it('reads base-model names (no transformer. prefix) and writes the prefixed names, tied wte only', () => {
    const loaded = loadModel(join(fixtures, 'gpt2-gelu-unscaled'));
    const dir = join(tmp, 'prefixed');
    saveModel(loaded.model, dir);
    const r = openCheckpoint(dir);
    try {
      assert.ok(r.has('transformer.wte.weight'));
      assert.ok(r.has('transformer.h.0.attn.c_attn.weight'));
      assert.ok(!r.has('lm_head.weight'));
      assert.ok(!r.names().some((n) => !n.startsWith('transformer.')));
    } finally {
      r.close();
    }
    const again = loadModel(dir);
    const ids = reference['gpt2-gelu-unscaled']!.ids;
    assert.deepEqual(fullLogits(again.model, ids), fullLogits(loaded.model, ids));
  });
  it('accepts a tied matrix stored as lm_head.weight only', () => {
    const model = createModel(tiny, { seed: 3 }).eval();
    const dir = join(tmp, 'lmhead-only');
    saveModel(model, dir);
    const renamed = model
      .namedParameters()
      .map(([n, p]): [string, Tensor] => [n === 'transformer.wte.weight' ? 'lm_head.weight' : n, p]);
    writeCheckpoint(dir, new Map(renamed));
    const r = openCheckpoint(dir);
    assert.ok(r.has('lm_head.weight') && !r.has('transformer.wte.weight'));
    r.close();
    assert.deepEqual(fullLogits(loadModel(dir).model, [1, 2, 3]), fullLogits(model, [1, 2, 3]));
  });
});

describe('gpt2 config', () => {
  const write = (name: string, config: Record<string, unknown>) => {
    const dir = join(tmp, name);
    saveModel(createModel(tiny, { seed: 1 }), dir);
    writeFileSync(join(dir, 'config.json'), JSON.stringify(config));
    return dir;
  };
  for (const field of ['scale_attn_by_inverse_layer_idx', 'reorder_and_upcast_attn', 'add_cross_attention']) {
    it(`refuses ${field}: true, naming the field`, () => {
      const dir = write(field, { ...tiny, [field]: true });
      assert.throws(() => loadModel(dir), new RegExp(`config\\.json: '${field}' = true is not supported`));
    });
  }
  it('refuses an activation it has no kernel for, naming the field and the supported ones', () => {
    const dir = write('act', { ...tiny, activation_function: 'quick_gelu' });
    assert.throws(
      () => loadModel(dir),
      /'activation_function' = "quick_gelu" is not supported \(supported: gelu_new, gelu_pytorch_tanh, gelu,/,
    );
  });
  it('names the config field when it disagrees with the weights', () => {
    const dir = write('mismatch', { ...tiny, n_embd: 32, n_head: 4 });
    assert.throws(
      () => loadModel(dir),
      /mismatch\/config\.json: n_embd is 32 but transformer\.wte\.weight is \[40,16\]$/,
    );
    const dir2 = write('mismatch2', { ...tiny, n_inner: 50 });
    assert.throws(
      () => loadModel(dir2),
      /n_inner is 50 but transformer\.h\.0\.mlp\.c_fc\.weight is \[16,64\]$/,
    );
    const dir3 = write('mismatch3', { ...tiny, n_positions: 30 });
    assert.throws(() => loadModel(dir3), /n_positions is 30 but transformer\.wpe\.weight is \[24,16\]$/);
    const dir4 = write('mismatch4', { ...tiny, n_layer: 3 });
    assert.throws(
      () => loadModel(dir4),
      /n_layer is 3 but the checkpoint holds 2 layer\(s\) \(transformer\.h\.0 to transformer\.h\.1\)/,
    );
  });
  it('refuses sequences longer than n_positions', () => {
    const model = createModel(tiny, { seed: 2 });
    const ids = Array.from({ length: 25 }, (_, i) => i % 40);
    assert.throws(
      () => fullLogits(model, ids),
      /'n_positions' = 24 is shorter than the sequence \(25 tokens\)/,
    );
  });
});

describe('gpt2 model', () => {
  const model = createModel({ ...tiny, initializer_range: 0.3 }, { seed: 7 });
  it('names its linear modules (Conv1D, no LM head) and its dropout sites with the config rates', () => {
    const linear = model.linearModules().map(([n]) => n);
    assert.deepEqual(linear.slice(0, 4), [
      'transformer.h.0.attn.c_attn',
      'transformer.h.0.attn.c_proj',
      'transformer.h.0.mlp.c_fc',
      'transformer.h.0.mlp.c_proj',
    ]);
    assert.equal(linear.length, 8);
    const sites = model.dropoutSites().map(([n, d]) => `${n}=${d.p}`);
    assert.deepEqual(sites.slice(0, 4), [
      'transformer.drop=0.1',
      'transformer.h.0.attn.attn_dropout=0.1',
      'transformer.h.0.attn.resid_dropout=0.1',
      'transformer.h.0.mlp.dropout=0.1',
    ]);
  });
  it('applies dropout in training mode and when forced, not in eval mode', () => {
    const ids = [1, 5, 9, 2];
    model.eval();
    const a = fullLogits(model, ids);
    assert.deepEqual(fullLogits(model, ids), a);
    model.train();
    const b = fullLogits(model, ids);
    model.eval();
    assert.ok(relMaxDiff(b, a) > 1e-3, 'training-mode dropout changed the logits');
    forceDropout(model, 0.5);
    const c = fullLogits(model, ids);
    forceDropout(model, null);
    assert.ok(relMaxDiff(c, a) > 1e-3, 'forced dropout changed the logits');
    assert.deepEqual(fullLogits(model, ids), a);
  });
  it('generates with the KV cache exactly as recomputing the full sequence at every step', () => {
    const prompt = [3, 17, 8];
    const g = generate(model, prompt, { maxNewTokens: 10 });
    const seq = [...prompt];
    for (const next of g.generatedIds) {
      const full = fullLogits(model, seq);
      const last = full.subarray(full.length - 40);
      let best = 0;
      for (let i = 1; i < 40; i++) if (last[i]! > last[best]!) best = i;
      assert.equal(next, best, `step ${seq.length}`);
      seq.push(next);
    }
    // and the cached logits equal the recomputed ones
    const cache = model.createKvCache(2);
    noGrad(() =>
      scope(() => {
        let h = model.forwardHidden(fromArray(Int32Array.from(seq.slice(0, 3)), [1, 3], { dtype: 'i32' }), {
          cache,
        });
        for (let t = 3; t < seq.length; t++) {
          h = model.forwardHidden(fromArray(Int32Array.from([seq[t]!]), [1, 1], { dtype: 'i32' }), { cache });
        }
        const cached = model.logits(slice(h, 1, 0, 1)).data as Float32Array;
        const full = fullLogits(model, seq);
        assert.ok(relMaxDiff(cached, full.subarray(full.length - 40)) < 1e-5);
      }),
    );
  });
  it('backpropagates through positions, LayerNorm, fused c_attn and gelu_new (finite differences, f64)', () => {
    const small = gpt2ConfigJson({
      vocabSize: 11,
      hiddenSize: 8,
      numLayers: 1,
      numHeads: 2,
      maxPositions: 6,
      dropout: 0,
    });
    const m = createModel({ ...small, initializer_range: 0.4 }, { seed: 4, dtype: 'f64' }) as Gpt2LMHeadModel;
    const block = m.transformer.h.at(0);
    block.ln_1.bias!.fillWith((i) => 0.1 * Math.cos(i));
    const ids = fromArray(Int32Array.from([3, 1, 4, 1, 5]), [1, 5], { dtype: 'i32' });
    gradCheck('gpt2', () => m.forwardHidden(ids), [
      block.attn.c_attn.weight,
      block.attn.c_attn.bias!,
      block.mlp.c_fc.weight,
      block.ln_1.bias!,
      m.transformer.wpe.weight,
    ]);
  });
  it('scores through the fused LM head as the full logits do', () => {
    const ids = [4, 9, 33, 1, 0, 12];
    const s = scoreIds(model, ids);
    const full = fullLogits(model, ids);
    for (let t = 0; t + 1 < ids.length; t++) {
      const row = full.subarray(t * 40, (t + 1) * 40);
      const max = Math.max(...row);
      const lse = max + Math.log(row.reduce((acc, v) => acc + Math.exp(v - max), 0));
      assert.ok(Math.abs(s.tokens[t + 1]!.logprob! - (row[ids[t + 1]!]! - lse)) < 1e-5);
    }
  });
});
