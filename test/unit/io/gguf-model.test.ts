/**
 * GGUF model export (io/gguf/model.ts) of tiny random Llama, Qwen2 and GPT-2 models, read back with
 * @huggingface/gguf: llama.cpp's tensor names and shapes (dims reversed), element types (norms and
 * 1-D tensors f32), metadata as convert_hf_to_gguf.py writes it, and the bytes against the source —
 * q/k rows permuted for llama (not for qwen2), GPT-2's Conv1D transposed, q8_0 within its error.
 */
import assert from 'node:assert/strict';
import { join } from 'node:path';
import { after, describe, test } from 'node:test';
import { f16ToF32 } from '../../../src/io/convert.ts';
import { dequantizeQ8_0, exportModelGguf, type GgufDtype } from '../../../src/io/index.ts';
import { type CausalLM, createModel, gpt2ConfigJson, llamaConfigJson } from '../../../src/models/index.ts';
import type { Tensor } from '../../../src/tensor/index.ts';
import {
  asF32,
  asU16,
  byteLevelTokenizer,
  modelDir,
  readGguf,
  referencePermute,
  sentencePieceTokenizer,
} from './gguf-helpers.ts';
import { assertOneLine, cleanup, tempDir } from './helpers.ts';

after(cleanup);

function tiny(kind: 'llama' | 'qwen2' | 'gpt2', tied = false): CausalLM {
  const config =
    kind === 'gpt2'
      ? gpt2ConfigJson({ vocabSize: 262, hiddenSize: 32, numLayers: 2, numHeads: 4 })
      : llamaConfigJson({
          vocabSize: kind === 'llama' ? 283 : 262,
          hiddenSize: 64,
          intermediateSize: 48,
          numLayers: 2,
          numHeads: 4,
          numKvHeads: 2,
          tieWordEmbeddings: tied,
          modelType: kind,
        });
  return createModel(config, { seed: 11 });
}

function exportTiny(
  model: CausalLM,
  dtype: GgufDtype,
  tokenizer = byteLevelTokenizer(model.config.vocabSize),
) {
  const dir = modelDir(model, tokenizer);
  const path = join(tempDir(), 'model.gguf');
  const params = new Map<string, Tensor>(model.namedParameters());
  const config = { ...model.config.raw, tie_word_embeddings: model.config.tieWordEmbeddings };
  const summary = exportModelGguf(path, params, config, { dtype, tokenizerDir: dir, name: 'tiny' });
  return { path, params, summary };
}

function values(params: Map<string, Tensor>, name: string): Float32Array {
  return params.get(name)!.data as Float32Array;
}

const LLAMA_BLOCK = [
  'attn_q',
  'attn_k',
  'attn_v',
  'attn_output',
  'ffn_gate',
  'ffn_up',
  'ffn_down',
  'attn_norm',
  'ffn_norm',
];

describe('GGUF export: llama', () => {
  test('f32: names, reversed shapes, metadata and bytes (q/k permuted per head, the rest as is)', async () => {
    const model = tiny('llama');
    const { path, params } = exportTiny(model, 'f32', sentencePieceTokenizer());
    const file = await readGguf(path);
    const expected = ['token_embd.weight', 'output_norm.weight', 'output.weight'];
    for (let i = 0; i < 2; i++) for (const b of LLAMA_BLOCK) expected.push(`blk.${i}.${b}.weight`);
    assert.deepEqual([...file.tensors.keys()].sort(), expected.sort());
    const m = file.metadata;
    assert.equal(m['general.architecture'], 'llama');
    assert.equal(m['general.type'], 'model');
    assert.equal(m['general.name'], 'tiny');
    assert.equal(m['general.file_type'], 0);
    assert.equal(m['general.alignment'], 32);
    assert.equal(m['llama.block_count'], 2);
    assert.equal(m['llama.embedding_length'], 64);
    assert.equal(m['llama.feed_forward_length'], 48);
    assert.equal(m['llama.attention.head_count'], 4);
    assert.equal(m['llama.attention.head_count_kv'], 2);
    assert.equal(m['llama.rope.dimension_count'], 16);
    assert.equal(m['llama.vocab_size'], 283);
    assert.equal(m['llama.context_length'], model.config.maxPositionEmbeddings);
    assert.ok(Math.abs((m['llama.attention.layer_norm_rms_epsilon'] as number) - 1e-6) < 1e-12);
    assert.equal(m['llama.rope.freq_base'], 10000);
    const t = (n: string) => file.tensors.get(n)!;
    assert.deepEqual(t('blk.0.attn_q.weight').shape, [64, 64]);
    assert.deepEqual(t('blk.0.attn_k.weight').shape, [64, 32]);
    assert.deepEqual(t('blk.0.ffn_down.weight').shape, [48, 64]);
    assert.deepEqual(t('token_embd.weight').shape, [64, 283]);
    for (const [, info] of file.tensors) assert.equal(info.dtype, 0);
    const read = (n: string, count: number) => asF32(t(n).bytes(count * 4));
    const q = values(params, 'model.layers.1.self_attn.q_proj.weight');
    const k = values(params, 'model.layers.1.self_attn.k_proj.weight');
    assert.deepEqual(read('blk.1.attn_q.weight', q.length), referencePermute(q, 64, 64, 4));
    assert.deepEqual(read('blk.1.attn_k.weight', k.length), referencePermute(k, 32, 64, 2));
    assert.notDeepEqual(read('blk.1.attn_q.weight', q.length), q); // the permutation is not the identity
    const v = values(params, 'model.layers.1.self_attn.v_proj.weight');
    assert.deepEqual(read('blk.1.attn_v.weight', v.length), v);
    const embed = values(params, 'model.embed_tokens.weight');
    assert.deepEqual(read('token_embd.weight', embed.length), embed);
    const head = values(params, 'lm_head.weight');
    assert.deepEqual(read('output.weight', head.length), head);
    const norm = values(params, 'model.layers.0.input_layernorm.weight');
    assert.deepEqual(read('blk.0.attn_norm.weight', 64), norm);
  });

  test('the permutation moves each rotary pair (j, j + half) of a head to adjacent rows (2j, 2j + 1)', async () => {
    const model = tiny('llama');
    const q = model.namedParameters().find(([n]) => n === 'model.layers.0.self_attn.q_proj.weight')![1];
    const data = q.data as Float32Array;
    for (let row = 0; row < 64; row++) data.fill(row, row * 64, row * 64 + 64); // row r holds r
    const { path } = exportTiny(model, 'f32');
    const file = await readGguf(path);
    const rows = asF32(file.tensors.get('blk.0.attn_q.weight')!.bytes(64 * 64 * 4));
    const order = Array.from({ length: 64 }, (_, r) => rows[r * 64]);
    // head 0 (rows 0..15, half 8): 0, 8, 1, 9, ...; head 1 starts at 16
    assert.deepEqual(order.slice(0, 6), [0, 8, 1, 9, 2, 10]);
    assert.deepEqual(order.slice(16, 20), [16, 24, 17, 25]);
  });

  test('tied embeddings: no output.weight (llama.cpp reuses token_embd)', async () => {
    const { path } = exportTiny(tiny('llama', true), 'f32');
    const file = await readGguf(path);
    assert.ok(file.tensors.has('token_embd.weight'));
    assert.ok(!file.tensors.has('output.weight'));
  });

  for (const dtype of ['f16', 'bf16', 'q8_0'] as const) {
    test(`${dtype}: matrices in ${dtype}, norms f32, values within the type's error`, async () => {
      const { path, params, summary } = exportTiny(tiny('llama'), dtype);
      const file = await readGguf(path);
      const id = { f16: 1, bf16: 30, q8_0: 8 }[dtype];
      assert.equal(file.metadata['general.file_type'], { f16: 1, bf16: 32, q8_0: 7 }[dtype]);
      assert.equal(file.tensors.get('blk.0.attn_norm.weight')!.dtype, 0);
      assert.equal(file.tensors.get('output_norm.weight')!.dtype, 0);
      assert.equal(file.tensors.get('blk.0.attn_v.weight')!.dtype, id);
      // ffn_down rows are 48 long: q8_0 (blocks of 32) falls back to f16 as the converter does
      const down = file.tensors.get('blk.0.ffn_down.weight')!;
      assert.equal(down.dtype, dtype === 'q8_0' ? 1 : id);
      assert.deepEqual(
        summary.f16Fallbacks,
        dtype === 'q8_0' ? ['blk.0.ffn_down.weight', 'blk.1.ffn_down.weight'] : [],
      );
      const src = values(params, 'model.layers.0.self_attn.v_proj.weight');
      const info = file.tensors.get('blk.0.attn_v.weight')!;
      const got =
        dtype === 'q8_0'
          ? dequantizeQ8_0(info.bytes((src.length / 32) * 34))
          : dtype === 'f16'
            ? f16ToF32(asU16(info.bytes(src.length * 2)))
            : Float32Array.from(
                asU16(info.bytes(src.length * 2)),
                (b) => new Float32Array(new Uint32Array([b << 16]).buffer)[0]!,
              );
      for (let i = 0; i < src.length; i++) {
        const rowMax = Math.max(
          ...Array.from(src.subarray(Math.floor(i / 32) * 32, Math.floor(i / 32) * 32 + 32), Math.abs),
        );
        const bound =
          dtype === 'q8_0'
            ? rowMax / 127 / 2 + rowMax * 2 ** -10
            : Math.abs(src[i]!) * (dtype === 'f16' ? 2 ** -11 : 2 ** -8) + 1e-7;
        assert.ok(Math.abs(got[i]! - src[i]!) <= bound, `element ${i}: ${got[i]} vs ${src[i]}`);
      }
    });
  }

  test('tokenizer: SentencePiece-style BPE -> tokenizer.ggml.model llama with scores and byte tokens', async () => {
    const tokenizer = sentencePieceTokenizer();
    const { path } = exportTiny(tiny('llama'), 'f32', tokenizer);
    const m = (await readGguf(path)).metadata;
    const vocab = (tokenizer.json.model as { vocab: Record<string, number> }).vocab;
    const tokens = m['tokenizer.ggml.tokens'] as string[];
    assert.equal(m['tokenizer.ggml.model'], 'llama');
    assert.equal(tokens.length, 283);
    for (const [token, id] of Object.entries(vocab)) assert.equal(tokens[id], token);
    const types = m['tokenizer.ggml.token_type'] as number[];
    assert.deepEqual(types.slice(0, 4), [3, 3, 3, 6]); // specials CONTROL, <0x00> BYTE
    assert.equal(types[vocab.a!], 1);
    const scores = m['tokenizer.ggml.scores'] as number[];
    // the merge rank, negated: '▁t' (rank 0) > 'he' (1) > '▁the' (2)
    assert.equal(scores[vocab['▁t']!], -0);
    assert.equal(scores[vocab.he!], -1);
    assert.equal(scores[vocab['▁the']!], -2);
    assert.equal(m['tokenizer.ggml.bos_token_id'], 1);
    assert.equal(m['tokenizer.ggml.eos_token_id'], 2);
    assert.equal(m['tokenizer.ggml.unknown_token_id'], 0);
    assert.equal(m['tokenizer.ggml.add_bos_token'], true);
    assert.equal(m['tokenizer.ggml.add_eos_token'], false);
    assert.equal(m['tokenizer.ggml.add_space_prefix'], true);
    assert.equal(m['tokenizer.ggml.merges'], undefined);
  });

  test('refuses a tokenizer it cannot map faithfully, naming its type, before creating the file', () => {
    const tokenizer = sentencePieceTokenizer();
    (tokenizer.json.model as Record<string, unknown>).byte_fallback = false;
    let caught: unknown;
    try {
      exportTiny(tiny('llama'), 'f32', tokenizer);
    } catch (error) {
      caught = error;
    }
    assertOneLine(caught, [
      'tokenizer.json',
      'BPE with pre-tokenizer none and no byte fallback',
      'no faithful llama.cpp equivalent',
    ]);
  });

  test('refuses a sliding window shorter than the context and an unknown tensor', () => {
    const model = tiny('llama');
    const params = new Map<string, Tensor>(model.namedParameters());
    const dir = modelDir(model, byteLevelTokenizer(283));
    const config = { ...model.config.raw, model_type: 'mistral', sliding_window: 16 };
    assert.throws(
      () => exportModelGguf(join(tempDir(), 'x.gguf'), params, config, { tokenizerDir: dir }),
      /'sliding_window' = 16/,
    );
    params.set('model.layers.0.self_attn.rotary_emb.inv_freq', params.get('model.norm.weight')!);
    assert.throws(
      () => exportModelGguf(join(tempDir(), 'x.gguf'), params, model.config.raw, { tokenizerDir: dir }),
      /tensor 'model.layers.0.self_attn.rotary_emb.inv_freq' has no llama.cpp name/,
    );
  });
});

describe('GGUF export: qwen2 and gpt2', () => {
  test('qwen2: arch qwen2, q/k/v biases, no permutation, byte-level tokenizer as gpt2 + merges', async () => {
    const model = tiny('qwen2');
    const { path, params } = exportTiny(model, 'f32');
    const file = await readGguf(path);
    const m = file.metadata;
    assert.equal(m['general.architecture'], 'qwen2');
    assert.equal(m['qwen2.attention.head_count_kv'], 2);
    assert.equal(m['llama.vocab_size'], undefined);
    for (const b of ['attn_q', 'attn_k', 'attn_v']) assert.ok(file.tensors.has(`blk.0.${b}.bias`), b);
    const q = values(params, 'model.layers.0.self_attn.q_proj.weight');
    assert.deepEqual(asF32(file.tensors.get('blk.0.attn_q.weight')!.bytes(q.length * 4)), q);
    const bias = values(params, 'model.layers.0.self_attn.k_proj.bias');
    assert.deepEqual(asF32(file.tensors.get('blk.0.attn_k.bias')!.bytes(bias.length * 4)), bias);
    assert.equal(m['tokenizer.ggml.model'], 'gpt2');
    assert.equal(m['tokenizer.ggml.pre'], 'gpt-2');
    assert.deepEqual(m['tokenizer.ggml.merges'], ['Ġ t', 'h e', 'Ġt he', 'i n', 'Ġ a']);
    const tokens = m['tokenizer.ggml.tokens'] as string[];
    assert.equal(tokens[261], '<|endoftext|>');
    assert.equal((m['tokenizer.ggml.token_type'] as number[])[261], 3);
    assert.equal(m['tokenizer.ggml.eos_token_id'], 261);
    assert.equal(m['tokenizer.chat_template'], byteLevelTokenizer(262).config.chat_template);
  });

  test('byte-level pre-tokenizers: Qwen2 and Llama 3 splits are named; an unknown split is refused', async () => {
    const qwen2 =
      "(?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\\r\\n\\p{L}\\p{N}]?\\p{L}+|\\p{N}| ?[^\\s\\p{L}\\p{N}]+[\\r\\n]*|\\s*[\\r\\n]+|\\s+(?!\\S)|\\s+";
    const llama3 = qwen2.replace('\\p{N}|', '\\p{N}{1,3}|');
    const cases: [string, string | null][] = [
      [qwen2, 'qwen2'],
      [llama3, 'llama-bpe'],
      ['\\s+', null],
    ];
    for (const [regex, name] of cases) {
      const tokenizer = byteLevelTokenizer(262);
      tokenizer.json.pre_tokenizer = {
        type: 'Sequence',
        pretokenizers: [
          { type: 'Split', pattern: { Regex: regex }, behavior: 'Isolated', invert: false },
          { type: 'ByteLevel', add_prefix_space: false, trim_offsets: false, use_regex: false },
        ],
      };
      if (name === null) {
        assert.throws(
          () => exportTiny(tiny('qwen2'), 'f32', tokenizer),
          /BPE with pre-tokenizer Split\+ByteLevel and no byte fallback/,
        );
        continue;
      }
      const { path } = exportTiny(tiny('qwen2'), 'f32', tokenizer);
      const m = (await readGguf(path)).metadata;
      assert.equal(m['tokenizer.ggml.model'], 'gpt2');
      assert.equal(m['tokenizer.ggml.pre'], name);
    }
  });

  test('gpt2: names, Conv1D weights transposed, output.weight = token_embd, position_embd f32', async () => {
    const model = tiny('gpt2');
    const { path, params } = exportTiny(model, 'f16');
    const file = await readGguf(path);
    const expected = [
      'token_embd.weight',
      'position_embd.weight',
      'output_norm.weight',
      'output_norm.bias',
      'output.weight',
    ];
    for (let i = 0; i < 2; i++)
      for (const b of ['attn_norm', 'attn_qkv', 'attn_output', 'ffn_norm', 'ffn_up', 'ffn_down'])
        expected.push(`blk.${i}.${b}.weight`, `blk.${i}.${b}.bias`);
    assert.deepEqual([...file.tensors.keys()].sort(), expected.sort());
    const m = file.metadata;
    assert.equal(m['general.architecture'], 'gpt2');
    assert.equal(m['gpt2.embedding_length'], 32);
    assert.equal(m['gpt2.feed_forward_length'], 128);
    assert.equal(m['gpt2.attention.head_count'], 4);
    assert.equal(m['gpt2.block_count'], 2);
    const t = (n: string) => file.tensors.get(n)!;
    assert.equal(t('position_embd.weight').dtype, 0);
    assert.equal(t('blk.0.attn_norm.bias').dtype, 0);
    assert.equal(t('blk.0.attn_qkv.weight').dtype, 1);
    // HF c_attn is [in 32, out 96]; llama.cpp's attn_qkv has ne [32, 96] = row-major [96, 32]
    assert.deepEqual(t('blk.0.attn_qkv.weight').shape, [32, 96]);
    assert.deepEqual(t('blk.0.ffn_down.weight').shape, [128, 32]);
    const conv = values(params, 'transformer.h.0.attn.c_attn.weight'); // [32, 96]
    const got = f16ToF32(asU16(t('blk.0.attn_qkv.weight').bytes(conv.length * 2))); // [96, 32]
    for (let o = 0; o < 96; o++)
      for (let i = 0; i < 32; i++) {
        const want = conv[i * 96 + o]!;
        assert.ok(Math.abs(got[o * 32 + i]! - want) <= Math.abs(want) * 2 ** -11 + 1e-7);
      }
    const embd = t('token_embd.weight');
    assert.deepEqual(t('output.weight').bytes(262 * 32 * 2), embd.bytes(262 * 32 * 2));
  });
});
