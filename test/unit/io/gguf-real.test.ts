/**
 * GGUF export of the real checkpoints under ATTUNE_TEST_MODELS (tinystories-656k, a trained Llama
 * with a SentencePiece-style tokenizer; tiny-gpt2-random, GPT-2 with its byte-level BPE), read back
 * with @huggingface/gguf and compared tensor by tensor with the safetensors file transformers wrote.
 * The tokenizer metadata is checked by running llama.cpp's SentencePiece tokenizer algorithm
 * (llm_tokenizer_spm: best-scoring bigram first, leftmost on ties) on the exported tokens and
 * scores: it gives the ids the Hugging Face tokenizer gives.
 */
import assert from 'node:assert/strict';
import { join } from 'node:path';
import { after, describe, test } from 'node:test';
import { exportModelGguf, openCheckpoint, readJsonObject, Tokenizer } from '../../../src/io/index.ts';
import { loadModel } from '../../../src/models/index.ts';
import type { Tensor } from '../../../src/tensor/index.ts';
import { asF32, readGguf, referencePermute } from './gguf-helpers.ts';
import { cleanup, tempDir, testModelDir } from './helpers.ts';

after(cleanup);

function exportDir(dir: string): string {
  const { model } = loadModel(dir);
  const path = join(tempDir(), 'model.gguf');
  const config = { ...model.config.raw, tie_word_embeddings: model.config.tieWordEmbeddings };
  exportModelGguf(path, new Map<string, Tensor>(model.namedParameters()), config, { tokenizerDir: dir });
  return path;
}

/** llama.cpp's SentencePiece tokenization (llm_tokenizer_spm) over a GGUF vocabulary. */
function llamaCppSpm(text: string, tokens: string[], scores: number[], addSpacePrefix: boolean): number[] {
  const ids = new Map(tokens.map((t, i) => [t, i]));
  const symbols = [...((addSpacePrefix ? ' ' : '') + text).replaceAll(' ', '▁')];
  const alive = symbols.map(() => true);
  const next = symbols.map((_, i) => i + 1);
  const prev = symbols.map((_, i) => i - 1);
  const queue: { left: number; right: number; score: number; text: string }[] = [];
  const tryAdd = (left: number, right: number) => {
    if (left < 0 || right >= symbols.length) return;
    const merged = symbols[left]! + symbols[right]!;
    const id = ids.get(merged);
    if (id !== undefined) queue.push({ left, right, score: scores[id]!, text: merged });
  };
  for (let i = 0; i + 1 < symbols.length; i++) tryAdd(i, i + 1);
  while (queue.length) {
    queue.sort((a, b) => b.score - a.score || a.left - b.left);
    const best = queue.shift()!;
    if (!alive[best.left] || !alive[best.right] || symbols[best.left]! + symbols[best.right]! !== best.text)
      continue;
    symbols[best.left] = best.text;
    alive[best.right] = false;
    next[best.left] = next[best.right]!;
    if (next[best.left]! < symbols.length) prev[next[best.left]!] = best.left;
    tryAdd(prev[best.left]!, best.left);
    tryAdd(best.left, next[best.left]!);
  }
  const out: number[] = [];
  for (let i = 0; i < symbols.length; i = next[i]!) out.push(ids.get(symbols[i]!) ?? 0);
  return out;
}

const STORIES = [
  'Once upon a time, there was a little girl named Lily.',
  'Tom had a red ball. He liked to play with it in the park every day!',
  'One day, a girl named Sue found a shiny stone.',
  '"Mom, can I have some cake?" asked Ben happily.',
];

describe('GGUF export of the real checkpoints', () => {
  test('tinystories-656k: every tensor against model.safetensors (tied head = token_embd; q/k permuted)', async (t) => {
    const dir = testModelDir(t, 'tinystories-656k');
    if (!dir) return;
    const file = await readGguf(exportDir(dir));
    const reader = openCheckpoint(dir);
    const hub = (name: string) => reader.read(name, { dtype: 'f32' }).data as Float32Array;
    const got = (name: string, n: number) => asF32(file.tensors.get(name)!.bytes(n * 4));
    assert.equal(file.tensors.size, 1 + 1 + 2 * 9);
    const embed = hub('lm_head.weight'); // stored only under the head's name, aliased by __metadata__
    assert.deepEqual(got('token_embd.weight', embed.length), embed);
    assert.deepEqual(file.tensors.get('token_embd.weight')!.shape, [128, 2048]);
    for (let i = 0; i < 2; i++) {
      const p = `model.layers.${i}.`;
      const q = hub(`${p}self_attn.q_proj.weight`);
      const k = hub(`${p}self_attn.k_proj.weight`);
      assert.deepEqual(got(`blk.${i}.attn_q.weight`, q.length), referencePermute(q, 128, 128, 8));
      assert.deepEqual(got(`blk.${i}.attn_k.weight`, k.length), referencePermute(k, 64, 128, 4));
      for (const [hf, gg] of [
        ['self_attn.v_proj', 'attn_v'],
        ['self_attn.o_proj', 'attn_output'],
        ['mlp.gate_proj', 'ffn_gate'],
        ['mlp.up_proj', 'ffn_up'],
        ['mlp.down_proj', 'ffn_down'],
        ['input_layernorm', 'attn_norm'],
        ['post_attention_layernorm', 'ffn_norm'],
      ] as const) {
        const w = hub(`${p}${hf}.weight`);
        assert.deepEqual(got(`blk.${i}.${gg}.weight`, w.length), w, `${hf} -> ${gg}`);
      }
    }
    assert.deepEqual(got('output_norm.weight', 128), hub('model.norm.weight'));
    reader.close();
    const m = file.metadata;
    assert.equal(m['llama.attention.head_count_kv'], 4);
    assert.equal(m['llama.context_length'], 512);
    assert.equal(m['general.name'], 'tinystories-656k');
    assert.equal(m['tokenizer.ggml.model'], 'llama');
    assert.equal(m['tokenizer.ggml.bos_token_id'], 1);
    assert.equal(m['tokenizer.ggml.eos_token_id'], 2);
    assert.equal(m['tokenizer.ggml.add_bos_token'], true);
    const vocab = (readJsonObject(join(dir, 'tokenizer.json')).model as { vocab: Record<string, number> })
      .vocab;
    const tokens = m['tokenizer.ggml.tokens'] as string[];
    for (const [token, id] of Object.entries(vocab)) assert.equal(tokens[id], token);
  });

  test("tinystories-656k: llama.cpp's SentencePiece algorithm on the exported scores gives the HF ids", async (t) => {
    const dir = testModelDir(t, 'tinystories-656k');
    if (!dir) return;
    const m = (await readGguf(exportDir(dir))).metadata;
    const tokens = m['tokenizer.ggml.tokens'] as string[];
    const scores = m['tokenizer.ggml.scores'] as number[];
    const tokenizer = Tokenizer.fromDir(dir);
    for (const text of STORIES) {
      const hf = tokenizer.encode(text); // BOS added (add_bos_token)
      assert.deepEqual(
        [1, ...llamaCppSpm(text, tokens, scores, m['tokenizer.ggml.add_space_prefix'] === true)],
        hf,
        text,
      );
    }
    // the converter's flat -1000 scores would merge leftmost-first instead: not the same ids
    const flat = scores.map(() => -1000);
    assert.ok(
      STORIES.some(
        (text) =>
          JSON.stringify([1, ...llamaCppSpm(text, tokens, flat, true)]) !==
          JSON.stringify(tokenizer.encode(text)),
      ),
    );
  });

  test('tiny-gpt2-random: Conv1D transposed, tied head written as output.weight, GPT-2 BPE metadata', async (t) => {
    const dir = testModelDir(t, 'tiny-gpt2-random');
    if (!dir) return;
    const file = await readGguf(exportDir(dir));
    const reader = openCheckpoint(dir);
    const hub = (name: string) => reader.read(name, { dtype: 'f32' }).data as Float32Array;
    const got = (name: string, n: number) => asF32(file.tensors.get(name)!.bytes(n * 4));
    const cAttn = hub('transformer.h.1.attn.c_attn.weight'); // [2, 6]
    const qkv = got('blk.1.attn_qkv.weight', 12); // [6, 2]
    for (let o = 0; o < 6; o++) for (let i = 0; i < 2; i++) assert.equal(qkv[o * 2 + i], cAttn[i * 6 + o]);
    const wte = hub('transformer.wte.weight');
    assert.deepEqual(got('token_embd.weight', wte.length), wte);
    assert.deepEqual(got('output.weight', wte.length), wte);
    assert.deepEqual(got('position_embd.weight', 2048), hub('transformer.wpe.weight'));
    assert.deepEqual(got('blk.0.ffn_norm.bias', 2), hub('transformer.h.0.ln_2.bias'));
    reader.close();
    const m = file.metadata;
    assert.equal(m['gpt2.context_length'], 1024);
    assert.equal(m['tokenizer.ggml.model'], 'gpt2');
    assert.equal(m['tokenizer.ggml.pre'], 'gpt-2');
    const json = readJsonObject(join(dir, 'tokenizer.json')).model as {
      vocab: Record<string, number>;
      merges: unknown[];
    };
    const tokens = m['tokenizer.ggml.tokens'] as string[];
    assert.equal(tokens.length, 50257);
    for (const [token, id] of Object.entries(json.vocab)) assert.equal(tokens[id], token);
    const merges = m['tokenizer.ggml.merges'] as string[];
    assert.equal(merges.length, 50000);
    assert.deepEqual(
      merges.slice(0, 3),
      json.merges.slice(0, 3).map((x) => (Array.isArray(x) ? x.join(' ') : x)),
    );
    assert.equal((m['tokenizer.ggml.token_type'] as number[])[50256], 3);
    assert.equal(m['tokenizer.ggml.eos_token_id'], 50256);
    assert.equal(m['tokenizer.ggml.add_bos_token'], false);
  });
});
