/**
 * The world's tokenizer: a standard WordPiece `tokenizer.json` over the world's closed vocabulary.
 * Every word of the templates and pools (and every year and number the world writes) is one token;
 * person names are spelled letter by letter ("Tavik" -> `T` `##a` `##v` `##i` `##k`), so the name
 * of a taught or unknown person is a new sequence of tokens the base has trained on, never a token
 * it has not seen (whose embedding would be untrained and would make those people trivially
 * different). Single ASCII letters, digits and punctuation, each also as a `##` continuation, back
 * everything up, so ASCII text is never unknown. (Syllable pieces were tried first: a 44-person
 * corpus uses well under half of the 420 syllables, so most taught names held untrained pieces.)
 *
 * The pre-tokenizer is `Whitespace` (`\w+|[^\w\s]+`): whitespace, newlines included, is not a token.
 * On ASCII text the Rust `tokenizers` and `@huggingface/tokenizers` split identically (the Rust
 * `\w` is Unicode-aware, the JavaScript one ASCII-only; the world is ASCII). Decoding joins pieces
 * and puts spaces between words (`WordPiece` decoder with cleanup of spaces before `.` `?` `,`).
 */
import { mkdirSync } from 'node:fs';
import { join } from 'node:path';
import { writeJsonAtomic } from '../io/index.ts';
import type { World } from './generate.ts';

/** The special tokens, ids 0..3 in this order. */
export const WORLD_SPECIAL_TOKENS = {
  unk: '<|unk|>',
  bos: '<|bos|>',
  eos: '<|eos|>',
  pad: '<|pad|>',
} as const;

/** The pre-tokenizer's split, as the `Whitespace` pre-tokenizer of both libraries does it on ASCII. */
const PRE_TOKEN = /\w+|[^\w\s]+/g;

/** Printable ASCII characters other than letters, digits and space: the punctuation fallback. */
function asciiPunctuation(): string[] {
  const out: string[] = [];
  for (let c = 33; c < 127; c++) {
    const ch = String.fromCharCode(c);
    if (!/[A-Za-z0-9]/.test(ch)) out.push(ch);
  }
  return out;
}

/**
 * The vocabulary (token -> id) of `world` whose rendered files are `texts`: the special tokens,
 * then the words of `texts` that are not part of a person's name (sorted), then the single ASCII
 * characters, each as a word start and as a `##` continuation.
 */
export function worldVocabulary(world: World, texts: readonly string[]): Record<string, number> {
  const nameWords = new Set(world.people.flatMap((p) => [p.firstName, p.lastName]));
  const words = new Set<string>();
  for (const text of texts) for (const w of text.match(PRE_TOKEN) ?? []) if (!nameWords.has(w)) words.add(w);
  const tokens: string[] = [...Object.values(WORLD_SPECIAL_TOKENS), ...[...words].sort()];
  const chars = [...'abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789', ...asciiPunctuation()];
  for (const ch of chars) tokens.push(ch, `##${ch}`);
  const vocab: Record<string, number> = {};
  for (const t of tokens) if (!(t in vocab)) vocab[t] = Object.keys(vocab).length;
  return vocab;
}

/** tokenizer.json and tokenizer_config.json of the world's tokenizer for `world` and its `texts`. */
export function worldTokenizerFiles(
  world: World,
  texts: readonly string[],
): { tokenizer: Record<string, unknown>; config: Record<string, unknown> } {
  const vocab = worldVocabulary(world, texts);
  const s = WORLD_SPECIAL_TOKENS;
  const added = Object.values(s).map((content) => ({
    id: vocab[content],
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
    pre_tokenizer: { type: 'Whitespace' },
    post_processor: {
      type: 'TemplateProcessing',
      single: [{ SpecialToken: { id: s.bos, type_id: 0 } }, { Sequence: { id: 'A', type_id: 0 } }],
      pair: [
        { SpecialToken: { id: s.bos, type_id: 0 } },
        { Sequence: { id: 'A', type_id: 0 } },
        { Sequence: { id: 'B', type_id: 1 } },
      ],
      special_tokens: { [s.bos]: { id: s.bos, ids: [vocab[s.bos]], tokens: [s.bos] } },
    },
    decoder: { type: 'WordPiece', prefix: '##', cleanup: true },
    model: {
      type: 'WordPiece',
      unk_token: s.unk,
      continuing_subword_prefix: '##',
      max_input_chars_per_word: 100,
      vocab,
    },
  };
  const config = {
    tokenizer_class: 'PreTrainedTokenizerFast',
    bos_token: s.bos,
    eos_token: s.eos,
    pad_token: s.pad,
    unk_token: s.unk,
    clean_up_tokenization_spaces: false,
    model_max_length: 1e30,
  };
  return { tokenizer, config };
}

/** Write the world's tokenizer (tokenizer.json + tokenizer_config.json) into `dir`; returns its vocabulary size. */
export function writeWorldTokenizer(world: World, texts: readonly string[], dir: string): number {
  const { tokenizer, config } = worldTokenizerFiles(world, texts);
  mkdirSync(dir, { recursive: true });
  writeJsonAtomic(join(dir, 'tokenizer.json'), tokenizer);
  writeJsonAtomic(join(dir, 'tokenizer_config.json'), config);
  return Object.keys((tokenizer.model as { vocab: object }).vocab).length;
}
