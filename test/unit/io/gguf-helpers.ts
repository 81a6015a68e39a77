/**
 * Shared helpers of the GGUF tests: small hand-made tokenizers (byte-level BPE as GPT-2's,
 * SentencePiece-style BPE with byte fallback), model folders of tiny random models, and reading a
 * GGUF file back with the independent parser `@huggingface/gguf` (plus each tensor's raw bytes).
 */
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { gguf } from '@huggingface/gguf';
import { Tokenizer } from '../../../src/io/index.ts';
import { type CausalLM, saveModel } from '../../../src/models/index.ts';
import { tempDir } from './helpers.ts';

/** GPT-2's byte -> unicode table (the characters byte-level BPE vocabularies are written in). */
export function bytesToUnicode(): string[] {
  const keep: number[] = [];
  for (let b = 33; b <= 126; b++) keep.push(b);
  for (let b = 161; b <= 172; b++) keep.push(b);
  for (let b = 174; b <= 255; b++) keep.push(b);
  const table: string[] = new Array(256);
  let extra = 0;
  for (let b = 0; b < 256; b++) table[b] = String.fromCodePoint(keep.includes(b) ? b : 256 + extra++);
  return table;
}

/** A GPT-2-style byte-level BPE tokenizer of `vocabSize` ids (256 bytes, merges, `<|endoftext|>` last). */
export function byteLevelTokenizer(vocabSize: number): {
  json: Record<string, unknown>;
  config: Record<string, unknown>;
} {
  const vocab: Record<string, number> = {};
  bytesToUnicode().forEach((c, i) => {
    vocab[c] = i;
  });
  const merges: [string, string][] = [];
  const pairs: [string, string][] = [
    ['Ġ', 't'],
    ['h', 'e'],
    ['Ġt', 'he'],
    ['i', 'n'],
    ['Ġ', 'a'],
  ];
  for (const [a, b] of pairs) {
    if (Object.keys(vocab).length >= vocabSize - 1) break;
    merges.push([a, b]);
    vocab[a + b] = Object.keys(vocab).length;
  }
  const eos = Object.keys(vocab).length;
  const json = {
    version: '1.0',
    added_tokens: [
      {
        id: eos,
        content: '<|endoftext|>',
        single_word: false,
        lstrip: false,
        rstrip: false,
        normalized: true,
        special: true,
      },
    ],
    normalizer: null,
    pre_tokenizer: { type: 'ByteLevel', add_prefix_space: false, trim_offsets: true, use_regex: true },
    post_processor: { type: 'ByteLevel', add_prefix_space: true, trim_offsets: false, use_regex: true },
    decoder: { type: 'ByteLevel', add_prefix_space: true, trim_offsets: true, use_regex: true },
    model: {
      type: 'BPE',
      dropout: null,
      unk_token: null,
      continuing_subword_prefix: '',
      end_of_word_suffix: '',
      fuse_unk: false,
      byte_fallback: false,
      ignore_merges: false,
      vocab,
      merges,
    },
  };
  const config = {
    bos_token: '<|endoftext|>',
    eos_token: '<|endoftext|>',
    unk_token: '<|endoftext|>',
    add_bos_token: false,
    chat_template: "{% for m in messages %}{{ m['role'] }}: {{ m['content'] }}\n{% endfor %}",
  };
  return { json, config };
}

/** A Llama-2-style tokenizer (▁ for spaces, byte fallback): specials, 256 byte tokens, letters, merges. */
export function sentencePieceTokenizer(): { json: Record<string, unknown>; config: Record<string, unknown> } {
  const vocab: Record<string, number> = { '<unk>': 0, '<s>': 1, '</s>': 2 };
  for (let b = 0; b < 256; b++) vocab[`<0x${b.toString(16).toUpperCase().padStart(2, '0')}>`] = 3 + b;
  for (const c of '▁abcdehlnorstw') vocab[c] = Object.keys(vocab).length;
  const merges = ['▁ t', 'h e', '▁t he', 'e r', 'he r', '▁ a', 'a n', '▁a n', 'l l', 'o w'];
  for (const m of merges) vocab[m.replace(' ', '')] = Object.keys(vocab).length;
  const special = (id: number, content: string) => ({
    id,
    content,
    single_word: false,
    lstrip: false,
    rstrip: false,
    normalized: false,
    special: true,
  });
  const json = {
    version: '1.0',
    added_tokens: [special(0, '<unk>'), special(1, '<s>'), special(2, '</s>')],
    normalizer: {
      type: 'Sequence',
      normalizers: [
        { type: 'Prepend', prepend: '▁' },
        { type: 'Replace', pattern: { String: ' ' }, content: '▁' },
      ],
    },
    pre_tokenizer: null,
    post_processor: null,
    decoder: {
      type: 'Sequence',
      decoders: [
        { type: 'Replace', pattern: { String: '▁' }, content: ' ' },
        { type: 'ByteFallback' },
        { type: 'Fuse' },
        { type: 'Strip', content: ' ', start: 1, stop: 0 },
      ],
    },
    model: {
      type: 'BPE',
      dropout: null,
      unk_token: '<unk>',
      continuing_subword_prefix: null,
      end_of_word_suffix: null,
      fuse_unk: true,
      byte_fallback: true,
      ignore_merges: false,
      vocab,
      merges,
    },
  };
  const config = {
    bos_token: '<s>',
    eos_token: '</s>',
    unk_token: '<unk>',
    add_bos_token: true,
    add_eos_token: false,
    tokenizer_class: 'LlamaTokenizer',
  };
  return { json, config };
}

/** Save `model` with `tokenizer` as a Hub-format folder (a fresh temporary one). */
export function modelDir(
  model: CausalLM,
  tokenizer: { json: Record<string, unknown>; config: Record<string, unknown> },
): string {
  const dir = join(tempDir(), 'model');
  saveModel(model, dir, { tokenizer: Tokenizer.fromObjects(tokenizer.json, tokenizer.config) });
  return dir;
}

/** A GGUF file read back by @huggingface/gguf, with each tensor's raw bytes by name. */
export interface ReadBack {
  metadata: Record<string, unknown>;
  tensors: Map<
    string,
    { shape: number[]; dtype: number; offset: number; bytes: (length: number) => Uint8Array }
  >;
  dataOffset: number;
}

/** Parse `path` with @huggingface/gguf; shapes as the file stores them (ne, innermost first). */
export async function readGguf(path: string): Promise<ReadBack> {
  const parsed = await gguf(path, { allowLocalFile: true });
  const file = readFileSync(path);
  const dataOffset = Number(parsed.tensorDataOffset);
  const tensors: ReadBack['tensors'] = new Map();
  for (const info of parsed.tensorInfos) {
    const offset = Number(info.offset);
    tensors.set(info.name, {
      shape: info.shape.map(Number),
      dtype: info.dtype,
      offset,
      bytes: (length) => new Uint8Array(file.buffer, file.byteOffset + dataOffset + offset, length),
    });
  }
  return { metadata: parsed.metadata as unknown as Record<string, unknown>, tensors, dataOffset };
}

/** f32 values of a tensor's bytes. */
export function asF32(bytes: Uint8Array): Float32Array {
  return new Float32Array(bytes.slice().buffer);
}

/** u16 values of a tensor's bytes. */
export function asU16(bytes: Uint8Array): Uint16Array {
  return new Uint16Array(bytes.slice().buffer);
}

/**
 * The Hub-to-llama.cpp q/k row permutation, written independently of src/: numpy's
 * `w.reshape(heads, 2, rows // heads // 2, cols).swapaxes(1, 2).reshape(rows, cols)` element by element.
 */
export function referencePermute(w: Float32Array, rows: number, cols: number, heads: number): Float32Array {
  const half = rows / heads / 2;
  const out = new Float32Array(w.length);
  // out index (h, j, t, c) in shape [heads, half, 2, cols] reads input (h, t, j, c) of [heads, 2, half, cols]
  for (let h = 0; h < heads; h++)
    for (let j = 0; j < half; j++)
      for (let t = 0; t < 2; t++)
        for (let c = 0; c < cols; c++)
          out[((h * half + j) * 2 + t) * cols + c] = w[((h * 2 + t) * half + j) * cols + c]!;
  return out;
}
