/**
 * A byte-level tokenizer as a standard Hugging Face `tokenizer.json`: GPT-2's byte-to-unicode
 * alphabet as a BPE vocabulary with no merges (every UTF-8 byte is one token, so any text
 * round-trips and nothing is ever unknown), plus special tokens. Used for models trained from
 * scratch (the benchmark world's base model, tests); transformers and tokenizers load it as-is.
 */
import { mkdirSync } from 'node:fs';
import { join } from 'node:path';
import { writeJsonAtomic } from './json.ts';

/** GPT-2's reversible byte -> printable unicode character mapping. */
export function bytesToUnicode(): string[] {
  const printable: number[] = [];
  for (let b = '!'.charCodeAt(0); b <= '~'.charCodeAt(0); b++) printable.push(b);
  for (let b = '¡'.charCodeAt(0); b <= '¬'.charCodeAt(0); b++) printable.push(b);
  for (let b = '®'.charCodeAt(0); b <= 'ÿ'.charCodeAt(0); b++) printable.push(b);
  const table = new Array<string>(256);
  let extra = 0;
  for (let b = 0; b < 256; b++) {
    table[b] = printable.includes(b) ? String.fromCharCode(b) : String.fromCharCode(256 + extra++);
  }
  return table;
}

export interface ByteTokenizerOptions {
  /** Special tokens, given ids 256, 257, ... in order (default bos, eos, pad). */
  specialTokens?: { bos: string; eos: string; pad: string };
  /** Chat template stored in tokenizer_config.json (default: none). */
  chatTemplate?: string | null;
}

/** tokenizer.json and tokenizer_config.json objects of a byte-level tokenizer. */
export function byteTokenizerFiles(options: ByteTokenizerOptions = {}): {
  tokenizer: Record<string, unknown>;
  config: Record<string, unknown>;
} {
  const special = options.specialTokens ?? { bos: '<|bos|>', eos: '<|eos|>', pad: '<|pad|>' };
  const alphabet = bytesToUnicode();
  const vocab: Record<string, number> = {};
  alphabet.forEach((ch, i) => {
    vocab[ch] = i;
  });
  const specials = [special.bos, special.eos, special.pad];
  specials.forEach((s, i) => {
    vocab[s] = 256 + i;
  });
  const added = specials.map((content, i) => ({
    id: 256 + i,
    content,
    single_word: false,
    lstrip: false,
    rstrip: false,
    normalized: false,
    special: true,
  }));
  const tokenizer = {
    version: '1.0',
    truncation: null,
    padding: null,
    added_tokens: added,
    normalizer: null,
    pre_tokenizer: { type: 'ByteLevel', add_prefix_space: false, trim_offsets: true, use_regex: false },
    post_processor: {
      type: 'TemplateProcessing',
      single: [{ SpecialToken: { id: special.bos, type_id: 0 } }, { Sequence: { id: 'A', type_id: 0 } }],
      pair: [
        { SpecialToken: { id: special.bos, type_id: 0 } },
        { Sequence: { id: 'A', type_id: 0 } },
        { Sequence: { id: 'B', type_id: 1 } },
      ],
      special_tokens: { [special.bos]: { id: special.bos, ids: [256], tokens: [special.bos] } },
    },
    decoder: { type: 'ByteLevel', add_prefix_space: false, trim_offsets: true, use_regex: false },
    model: {
      type: 'BPE',
      dropout: null,
      unk_token: null,
      continuing_subword_prefix: null,
      end_of_word_suffix: null,
      fuse_unk: false,
      byte_fallback: false,
      ignore_merges: false,
      vocab,
      merges: [],
    },
  };
  const config: Record<string, unknown> = {
    tokenizer_class: 'PreTrainedTokenizerFast',
    bos_token: special.bos,
    eos_token: special.eos,
    pad_token: special.pad,
    unk_token: null,
    add_bos_token: true,
    add_eos_token: false,
    clean_up_tokenization_spaces: false,
    model_max_length: 1e30,
  };
  if (options.chatTemplate) config.chat_template = options.chatTemplate;
  return { tokenizer, config };
}

/** Write a byte-level tokenizer (tokenizer.json + tokenizer_config.json) into `dir`. */
export function writeByteTokenizer(dir: string, options: ByteTokenizerOptions = {}): void {
  const { tokenizer, config } = byteTokenizerFiles(options);
  mkdirSync(dir, { recursive: true });
  writeJsonAtomic(join(dir, 'tokenizer.json'), tokenizer);
  writeJsonAtomic(join(dir, 'tokenizer_config.json'), config);
}
