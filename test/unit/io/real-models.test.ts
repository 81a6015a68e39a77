/**
 * io/ on real Hub-format folders written by transformers (ATTUNE_TEST_MODELS, e.g. ../shared/models):
 * skipped with a printed reason when the variable is unset, failed when it is unset under CI=true.
 */
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { after, describe, it } from 'node:test';
import { openCheckpoint, writeCheckpoint } from '../../../src/io/checkpoint.ts';
import { readGenerationConfig, readModelConfig } from '../../../src/io/hf.ts';
import { openSafetensors } from '../../../src/io/safetensors.ts';
import { Tokenizer } from '../../../src/io/tokenizer.ts';
import { cleanup, tempDir, testModelDir, tinystoriesFixturePath } from './helpers.ts';

after(cleanup);

interface Fixture {
  scoring: { text: string; ids: number[] }[];
  greedy: { prompt: string; prompt_ids: number[]; generated_ids: number[] };
}

/** The expected tensor names and shapes of a Llama from its config (tied embeddings stored as lm_head only). */
function expectedLlamaShapes(config: Record<string, number>): Map<string, number[]> {
  const hidden = config.hidden_size!;
  const headDim = hidden / config.num_attention_heads!;
  const kv = config.num_key_value_heads! * headDim;
  const ffn = config.intermediate_size!;
  const shapes = new Map<string, number[]>([
    ['lm_head.weight', [config.vocab_size!, hidden]],
    ['model.norm.weight', [hidden]],
  ]);
  for (let layer = 0; layer < config.num_hidden_layers!; layer++) {
    const p = `model.layers.${layer}`;
    shapes.set(`${p}.input_layernorm.weight`, [hidden]);
    shapes.set(`${p}.post_attention_layernorm.weight`, [hidden]);
    shapes.set(`${p}.self_attn.q_proj.weight`, [hidden, hidden]);
    shapes.set(`${p}.self_attn.k_proj.weight`, [kv, hidden]);
    shapes.set(`${p}.self_attn.v_proj.weight`, [kv, hidden]);
    shapes.set(`${p}.self_attn.o_proj.weight`, [hidden, hidden]);
    shapes.set(`${p}.mlp.gate_proj.weight`, [ffn, hidden]);
    shapes.set(`${p}.mlp.up_proj.weight`, [ffn, hidden]);
    shapes.set(`${p}.mlp.down_proj.weight`, [hidden, ffn]);
  }
  return shapes;
}

describe('tinystories-656k (real Llama checkpoint)', () => {
  it('opens model.safetensors: names, shapes, dtypes, tied-embedding metadata', (t) => {
    const dir = testModelDir(t, 'tinystories-656k');
    if (!dir) return;
    const config = readModelConfig(dir) as Record<string, number>;
    assert.equal(config.model_type as unknown, 'llama');
    assert.deepEqual(readGenerationConfig(dir), {
      _from_model_config: true,
      bos_token_id: 1,
      eos_token_id: 2,
      transformers_version: '4.41.2',
    });
    const expected = expectedLlamaShapes(config);
    const reader = openSafetensors(join(dir, 'model.safetensors'));
    assert.deepEqual(reader.names(), [...expected.keys()].sort());
    assert.equal(
      reader.has('model.embed_tokens.weight'),
      false,
      'the tied matrix is stored as lm_head.weight only',
    );
    assert.deepEqual(reader.metadata(), { format: 'pt', 'model.embed_tokens.weight': 'lm_head.weight' });
    let parameters = 0;
    for (const [name, shape] of expected) {
      const info = reader.info(name);
      assert.equal(info.dtype, 'F32', name);
      assert.deepEqual(info.shape, shape, name);
      const tensor = reader.read(name);
      assert.equal(tensor.dtype, 'f32');
      assert.ok((tensor.data as Float32Array).every(Number.isFinite), `${name} has non-finite values`);
      parameters += tensor.size;
    }
    assert.ok(parameters > 600_000 && parameters < 700_000, `${parameters} parameters`);
    reader.close();
  });

  it('reads the same tensors through openCheckpoint, and after resharding', (t) => {
    const dir = testModelDir(t, 'tinystories-656k');
    if (!dir) return;
    const original = openCheckpoint(dir);
    const tensors = new Map(original.names().map((name) => [name, original.read(name)]));
    const out = tempDir();
    const written = writeCheckpoint(out, tensors, {
      maxShardBytes: 1_000_000,
      metadata: original.metadata(),
    });
    assert.ok(written.files.length > 2, 'sharded');
    const resharded = openCheckpoint(out);
    assert.deepEqual(resharded.names(), original.names());
    assert.deepEqual(resharded.metadata(), original.metadata());
    for (const name of original.names()) {
      const a = original.read(name).data as Float32Array;
      const b = resharded.read(name).data as Float32Array;
      assert.deepEqual(new Uint8Array(b.buffer), new Uint8Array(a.buffer), name);
    }
    original.close();
    resharded.close();
  });

  it('tokenizes exactly as the Rust tokenizers library (fixture ids, BOS added) and decodes back', (t) => {
    const dir = testModelDir(t, 'tinystories-656k');
    if (!dir) return;
    const fixture = JSON.parse(readFileSync(tinystoriesFixturePath(), 'utf8')) as Fixture;
    const tok = Tokenizer.fromDir(dir);
    assert.equal(tok.vocabSize, 2048);
    assert.equal(tok.bosTokenId, 1);
    assert.deepEqual(tok.eosTokenIds, [2]);
    assert.equal(tok.idToToken(1), '<|start_story|>');
    assert.equal(tok.tokenToId('<|end_story|>'), 2);
    assert.equal(tok.chatTemplate, null);
    const cases = [
      ...fixture.scoring.map((s) => [s.text, s.ids] as const),
      [fixture.greedy.prompt, fixture.greedy.prompt_ids] as const,
    ];
    assert.equal(cases.length, 4);
    for (const [text, ids] of cases) {
      assert.deepEqual(tok.encode(text), ids, text);
      assert.deepEqual(tok.encode(text, { addSpecialTokens: false }), ids.slice(1), text);
      assert.equal(tok.decode(ids, { skipSpecialTokens: true }), text);
      assert.equal(tok.decode(ids), `<|start_story|> ${text}`);
    }
    const generated = tok.decode(fixture.greedy.generated_ids, { skipSpecialTokens: true });
    assert.ok(generated.length > 20, `decoded greedy continuation: ${JSON.stringify(generated)}`);
  });

  it('saves a tokenizer that loads back identical', (t) => {
    const dir = testModelDir(t, 'tinystories-656k');
    if (!dir) return;
    const out = tempDir();
    Tokenizer.fromDir(dir).save(out);
    for (const name of ['tokenizer.json', 'tokenizer_config.json', 'special_tokens_map.json']) {
      assert.equal(readFileSync(join(out, name), 'utf8'), readFileSync(join(dir, name), 'utf8'), name);
    }
    assert.deepEqual(Tokenizer.fromDir(out).encode('Tom had a red ball.'), [1, 80, 388, 356, 1714, 10]);
  });
});

describe('tiny-gpt2-random (real GPT-2 files)', () => {
  it('encodes with the GPT-2 byte-level BPE and adds no BOS', (t) => {
    const dir = testModelDir(t, 'tiny-gpt2-random');
    if (!dir) return;
    const tok = Tokenizer.fromDir(dir);
    assert.deepEqual(tok.encode('Hello world'), [15496, 995]);
    assert.equal(tok.vocabSize, 50257);
    assert.deepEqual(tok.eosTokenIds, [50256]);
    assert.equal(tok.padTokenId, 50256, 'no pad_token: falls back to EOS');
    for (const text of ['Hello world', ' leading space', 'Ünïcode 😀 and\nnewlines  ']) {
      assert.equal(tok.decode(tok.encode(text)), text);
    }
  });

  it('opens its model.safetensors', (t) => {
    const dir = testModelDir(t, 'tiny-gpt2-random');
    if (!dir) return;
    const reader = openCheckpoint(dir);
    assert.equal(reader.names().length, 28);
    assert.deepEqual(reader.info('transformer.wte.weight').shape, [50257, 2]);
    assert.deepEqual(reader.info('transformer.h.0.attn.c_attn.weight').shape, [2, 6]);
    assert.deepEqual(reader.read('transformer.wpe.weight').shape, [1024, 2]);
    reader.close();
  });
});
