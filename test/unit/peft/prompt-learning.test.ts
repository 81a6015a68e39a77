/** prompt_tuning and prefix_tuning: identities, cache, gradients (f64), PEFT layout, round trip. */
import assert from 'node:assert/strict';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, it } from 'node:test';
import { openSafetensors, writeSafetensors } from '../../../src/io/index.ts';
import type { CausalLM } from '../../../src/models/index.ts';
import { applyTuner, loadAdapter, type PrefixEncoder } from '../../../src/peft/index.ts';
import { fromArray, noGrad, scope, sum } from '../../../src/tensor/index.ts';
import { gradCheck } from '../../helpers/gradcheck.ts';
import { logitsOf, maxAbsDiff, tinyLlama, tokens } from './helpers.ts';

const V = 50;

/** Logits row by row through a KV cache, one token per call after the first. */
function cachedLogits(model: CausalLM, ids: readonly number[]): Float64Array {
  return noGrad(() => {
    const cache = model.createKvCache(4);
    const out: number[] = [];
    const first = scope(() =>
      Array.from(
        model.logits(
          model.forwardHidden(fromArray(Int32Array.from(ids.slice(0, 2)), [1, 2], { dtype: 'i32' }), {
            cache,
          }),
        ).data as Float32Array,
      ),
    );
    out.push(...first);
    for (let t = 2; t < ids.length; t++) {
      const row = scope(() =>
        Array.from(
          model.logits(
            model.forwardHidden(fromArray(Int32Array.from([ids[t]!]), [1, 1], { dtype: 'i32' }), { cache }),
          ).data as Float32Array,
        ),
      );
      out.push(...row);
    }
    return Float64Array.from(out);
  });
}

describe('prompt_tuning', () => {
  it('text init gives the logits of the base model with that text prepended', () => {
    const model = tinyLlama();
    const text = [5, 9, 11];
    const ids = tokens(6);
    const base = logitsOf(model, [...text, ...ids]).slice(text.length * V);
    applyTuner(model, 'prompt_tuning', {
      numVirtualTokens: 3,
      init: 'TEXT',
      initText: 'x',
      tokenize: () => text,
    });
    const tuned = logitsOf(model, ids);
    assert.equal(tuned.length, ids.length * V);
    assert.ok(maxAbsDiff(base, tuned) < 1e-5, `diff ${maxAbsDiff(base, tuned)}`);
  });

  it('text init repeats and truncates the text to n tokens (PEFT)', () => {
    const model = tinyLlama();
    const ids = tokens(4);
    const base = logitsOf(model, [5, 9, 5, 9, 5, ...ids]).slice(5 * V);
    applyTuner(model, 'prompt_tuning', {
      numVirtualTokens: 5,
      init: 'TEXT',
      initText: 'x',
      tokenize: () => [5, 9],
    });
    assert.ok(maxAbsDiff(base, logitsOf(model, ids)) < 1e-5);
  });

  it('generation with the KV cache equals the full forward', () => {
    const model = tinyLlama();
    applyTuner(model, 'prompt_tuning', { numVirtualTokens: 4, seed: 2 });
    const ids = tokens(7);
    const d = maxAbsDiff(logitsOf(model, ids), cachedLogits(model, ids));
    assert.ok(d < 1e-4, `diff ${d}`);
  });

  it('gradient of the prompt matches finite differences (f64)', () => {
    const model = tinyLlama({ dtype: 'f64' });
    const adapter = applyTuner(model, 'prompt_tuning', { numVirtualTokens: 2, seed: 1 });
    const [p] = adapter.trainableParameters();
    p!.fillWith((i) => 0.05 * Math.sin(i));
    const ids = fromArray(Int32Array.from(tokens(4)), [1, 4], { dtype: 'i32' });
    gradCheck('prompt', () => model.logits(model.forwardHidden(ids)), [p!], { tol: 1e-5 });
  });

  it('saves PEFT layout, round-trips, refuses merge', () => {
    const dir = mkdtempSync(join(tmpdir(), 'pt-'));
    try {
      const model = tinyLlama();
      const adapter = applyTuner(model, 'prompt_tuning', { numVirtualTokens: 3, seed: 4 });
      const ids = tokens(5);
      const want = logitsOf(model, ids);
      adapter.save(dir);
      const cfg = JSON.parse(readFileSync(join(dir, 'adapter_config.json'), 'utf8'));
      assert.equal(cfg.peft_type, 'PROMPT_TUNING');
      assert.equal(cfg.task_type, 'CAUSAL_LM');
      assert.equal(cfg.num_virtual_tokens, 3);
      assert.equal(cfg.token_dim, 32);
      assert.equal(cfg.num_transformer_submodules, 1);
      assert.equal(cfg.num_attention_heads, 4);
      assert.equal(cfg.num_layers, 2);
      const r = openSafetensors(join(dir, 'adapter_model.safetensors'));
      assert.deepEqual(r.names(), ['prompt_embeddings']);
      assert.deepEqual([...r.info('prompt_embeddings').shape], [3, 32]);
      r.close();
      assert.throws(() => adapter.merge(), /cannot be merged/);
      adapter.unload();
      assert.ok(maxAbsDiff(logitsOf(model, ids), want) > 1e-4);
      loadAdapter(model, dir);
      assert.ok(maxAbsDiff(logitsOf(model, ids), want) < 1e-6);
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });
});

describe('prompt_tuning adapters written by PEFT', () => {
  it('loads the adapter_config.json and prompt_embeddings PEFT writes; logits = those rows prepended', () => {
    const dir = mkdtempSync(join(tmpdir(), 'pt-peft-'));
    try {
      const model = tinyLlama();
      const embed = new Map(model.namedParameters()).get('model.embed_tokens.weight');
      assert.ok(embed, 'the tiny model has model.embed_tokens.weight');
      const hidden = embed.shape[1]!;
      const rows = [7, 3, 12, 7];
      const values = embed.toArray();
      const prompt = rows.flatMap((r) => values.slice(r * hidden, (r + 1) * hidden));
      // the file as PEFT 0.13's save_pretrained writes it for PromptTuningConfig(TEXT init)
      writeFileSync(
        join(dir, 'adapter_config.json'),
        JSON.stringify(
          {
            auto_mapping: null,
            base_model_name_or_path: 'HuggingFaceTB/SmolLM2-135M',
            inference_mode: true,
            num_attention_heads: 4,
            num_layers: 2,
            num_transformer_submodules: 1,
            num_virtual_tokens: rows.length,
            peft_type: 'PROMPT_TUNING',
            prompt_tuning_init: 'TEXT',
            prompt_tuning_init_text: 'Answer the question:',
            revision: null,
            task_type: 'CAUSAL_LM',
            token_dim: hidden,
            tokenizer_kwargs: null,
            tokenizer_name_or_path: 'HuggingFaceTB/SmolLM2-135M',
          },
          null,
          2,
        ),
      );
      writeSafetensors(join(dir, 'adapter_model.safetensors'), {
        prompt_embeddings: fromArray(Float32Array.from(prompt), [rows.length, hidden]),
      });
      const ids = tokens(5);
      const want = logitsOf(model, [...rows, ...ids]).slice(rows.length * V);
      loadAdapter(model, dir);
      const got = logitsOf(model, ids);
      assert.equal(got.length, ids.length * V);
      assert.ok(maxAbsDiff(want, got) < 1e-5, `diff ${maxAbsDiff(want, got)}`);
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });

  it('a prompt_embeddings of another shape than its config says is refused naming the tensor and both shapes', () => {
    const dir = mkdtempSync(join(tmpdir(), 'pt-peft-bad-'));
    try {
      const model = tinyLlama();
      writeFileSync(
        join(dir, 'adapter_config.json'),
        JSON.stringify({
          peft_type: 'PROMPT_TUNING',
          task_type: 'CAUSAL_LM',
          num_virtual_tokens: 2,
          token_dim: 32,
        }),
      );
      writeSafetensors(join(dir, 'adapter_model.safetensors'), {
        prompt_embeddings: fromArray(new Float32Array(2 * 16), [2, 16]),
      });
      const before = logitsOf(model, tokens(4));
      assert.throws(
        () => loadAdapter(model, dir),
        (e: Error) => /prompt_embeddings/.test(e.message) && /16/.test(e.message) && /32/.test(e.message),
      );
      assert.ok(maxAbsDiff(logitsOf(model, tokens(4)), before) === 0, 'a refused adapter changes nothing');
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });
});

describe('prefix_tuning', () => {
  it('a prefix holding the KV cache of a text equals prepending that text', () => {
    const model = tinyLlama();
    const text = [5, 9, 11];
    const ids = tokens(5);
    const base = logitsOf(model, [...text, ...ids]).slice(text.length * V);
    // the cache of the text, written into the prefix embedding in PEFT's layout
    const cache = model.createKvCache(8);
    noGrad(() =>
      scope(() => model.forwardHidden(fromArray(Int32Array.from(text), [1, 3], { dtype: 'i32' }), { cache })),
    );
    const kvCopy = cache.clone();
    const adapter = applyTuner(model, 'prefix_tuning', { numVirtualTokens: 3 });
    const enc = (adapter as unknown as { encoder: PrefixEncoder }).encoder;
    const w = enc.embedding.data as Float32Array;
    const row = 2 * 2 * 2 * 8; // layers * 2 * kvHeads * headDim
    const keys = kvCopy as unknown as { keys: Float32Array[]; values: Float32Array[] };
    for (let i = 0; i < 3; i++)
      for (let l = 0; l < 2; l++)
        for (let j = 0; j < 16; j++) {
          w[i * row + 2 * l * 16 + j] = keys.keys[l]![i * 16 + j]!;
          w[i * row + (2 * l + 1) * 16 + j] = keys.values[l]![i * 16 + j]!;
        }
    const d = maxAbsDiff(base, logitsOf(model, ids));
    assert.ok(d < 1e-5, `diff ${d}`);
  });

  it('generation with the KV cache equals the full forward (with projection)', () => {
    const model = tinyLlama();
    applyTuner(model, 'prefix_tuning', {
      numVirtualTokens: 3,
      prefixProjection: true,
      encoderHiddenSize: 12,
      seed: 3,
    });
    const ids = tokens(6);
    const d = maxAbsDiff(logitsOf(model, ids), cachedLogits(model, ids));
    assert.ok(d < 1e-4, `diff ${d}`);
  });

  it('gradients of the embedding and the MLP match finite differences (f64)', () => {
    const model = tinyLlama({ dtype: 'f64' });
    const adapter = applyTuner(model, 'prefix_tuning', {
      numVirtualTokens: 2,
      prefixProjection: true,
      encoderHiddenSize: 6,
      seed: 5,
    });
    const params = adapter.trainableParameters();
    assert.equal(params.length, 5);
    const ids = fromArray(Int32Array.from(tokens(3)), [1, 3], { dtype: 'i32' });
    gradCheck('prefix', () => sum(model.logits(model.forwardHidden(ids))), params, { tol: 1e-5 });
  });

  it('saves the projected prefix in PEFT layout and loads it as the plain embedding', () => {
    const dir = mkdtempSync(join(tmpdir(), 'px-'));
    try {
      const model = tinyLlama();
      const adapter = applyTuner(model, 'prefix_tuning', {
        numVirtualTokens: 4,
        prefixProjection: true,
        encoderHiddenSize: 10,
        seed: 6,
      });
      const ids = tokens(5);
      const want = logitsOf(model, ids);
      adapter.save(dir);
      const cfg = JSON.parse(readFileSync(join(dir, 'adapter_config.json'), 'utf8'));
      assert.equal(cfg.peft_type, 'PREFIX_TUNING');
      assert.equal(cfg.prefix_projection, true);
      assert.equal(cfg.encoder_hidden_size, 10);
      assert.equal(cfg.token_dim, 16); // kv heads 2 * head dim 8 (PEFT's GQA rule)
      assert.equal(cfg.num_attention_heads, 2);
      const r = openSafetensors(join(dir, 'adapter_model.safetensors'));
      assert.deepEqual([...r.info('prompt_embeddings').shape], [4, 2 * 2 * 16]);
      r.close();
      adapter.unload();
      const loaded = loadAdapter(model, dir);
      assert.equal(loaded.trainableParameters().length, 1);
      assert.ok(maxAbsDiff(logitsOf(model, ids), want) < 1e-5);
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });
});
