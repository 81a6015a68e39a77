/**
 * A Hugging Face tokenizer (tokenizer.json + tokenizer_config.json) -> llama.cpp's tokenizer
 * metadata, as convert_hf_to_gguf.py writes it:
 * - byte-level BPE (GPT-2, Qwen2, Llama 3): `tokenizer.ggml.model = gpt2` with tokens, token
 *   types, merges and the pre-tokenizer name llama.cpp knows (`gpt-2`, `qwen2`, `llama-bpe`), as
 *   `_set_vocab_gpt2`; a pre-tokenizer llama.cpp has no name for is refused;
 * - SentencePiece-style BPE (`▁` for spaces, byte fallback, e.g. Llama 2, TinyStories):
 *   `tokenizer.ggml.model = llama` with tokens, scores and token types, as `_set_vocab_llama_hf`
 *   (LlamaHfVocab), except the scores: the converter writes -1000 for every token, which makes
 *   llama.cpp's SentencePiece tokenizer merge leftmost-first; Attune writes minus the merge rank
 *   of the token, so llama.cpp merges in the order the BPE merges list gives;
 * - other tokenizers (WordPiece, Unigram, WordLevel, ...) are refused, naming the type.
 * Special-token ids, add_bos/add_eos flags and chat templates follow gguf-py's SpecialVocab.
 */
import { existsSync } from 'node:fs';
import { join } from 'node:path';
import { FormatError } from '../../errors.ts';
import { type JsonObject, readJsonObject } from '../json.ts';
import { TOKENIZER_CONFIG_FILE, TOKENIZER_FILE, Tokenizer } from '../tokenizer.ts';
import { TokenType } from './types.ts';
import { type GgufKv, ggufKv } from './writer.ts';

// Pre-tokenizer regexes of the byte-level BPE families llama.cpp names (src/llama-vocab.cpp).
const QWEN2_REGEX =
  "(?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\\r\\n\\p{L}\\p{N}]?\\p{L}+|\\p{N}| ?[^\\s\\p{L}\\p{N}]+[\\r\\n]*|\\s*[\\r\\n]+|\\s+(?!\\S)|\\s+";
const LLAMA3_REGEX =
  "(?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\\r\\n\\p{L}\\p{N}]?\\p{L}+|\\p{N}{1,3}| ?[^\\s\\p{L}\\p{N}]+[\\r\\n]*|\\s*[\\r\\n]+|\\s+(?!\\S)|\\s+";

function isObject(value: unknown): value is JsonObject {
  return typeof value === 'object' && value !== null && !Array.isArray(value);
}

/** The steps of a normalizer / pre-tokenizer / decoder (a Sequence's children, or the one step). */
function steps(step: unknown, key: 'normalizers' | 'pretokenizers' | 'decoders'): JsonObject[] {
  if (!isObject(step)) return [];
  if (step.type === 'Sequence' && Array.isArray(step[key])) return (step[key] as unknown[]).filter(isObject);
  return [step];
}

function describe(step: unknown): string {
  if (!isObject(step)) return 'none';
  const inner = steps(step, 'pretokenizers');
  return inner.map((s) => String(s.type)).join('+') || String(step.type);
}

/** llama.cpp's pre-tokenizer name for a byte-level BPE pre-tokenizer, or null when it has none. */
function byteLevelPreName(pre: unknown): string | null {
  const parts = steps(pre, 'pretokenizers');
  if (parts.length === 1 && parts[0]!.type === 'ByteLevel' && parts[0]!.use_regex !== false)
    return parts[0]!.add_prefix_space === true ? null : 'gpt-2';
  const split = parts.find((s) => s.type === 'Split');
  const byteLevel = parts.find((s) => s.type === 'ByteLevel');
  if (parts.length !== 2 || !split || !byteLevel || byteLevel.use_regex !== false) return null;
  const regex = isObject(split.pattern) ? split.pattern.Regex : undefined;
  if (regex === QWEN2_REGEX) return 'qwen2';
  if (regex === LLAMA3_REGEX) return 'llama-bpe';
  return null;
}

function isSentencePieceStyle(tokenizer: JsonObject): boolean {
  const model = tokenizer.model as JsonObject;
  const decoders = steps(tokenizer.decoder, 'decoders');
  const replacesMeta = decoders.some(
    (d) =>
      d.type === 'Metaspace' || (d.type === 'Replace' && isObject(d.pattern) && d.pattern.String === '▁'),
  );
  return model.byte_fallback === true && replacesMeta;
}

/** Whether a SentencePiece-style tokenizer puts `▁` before the text (llama.cpp's add_space_prefix). */
function addsSpacePrefix(tokenizer: JsonObject): boolean {
  if (steps(tokenizer.normalizer, 'normalizers').some((n) => n.type === 'Prepend' && n.prepend === '▁'))
    return true;
  return steps(tokenizer.pre_tokenizer, 'pretokenizers').some(
    (p) =>
      p.type === 'Metaspace' &&
      (p.prepend_scheme ?? (p.add_prefix_space === false ? 'never' : 'always')) !== 'never',
  );
}

function mergeStrings(model: JsonObject, file: string): string[] {
  const merges = Array.isArray(model.merges) ? model.merges : [];
  return merges.map((merge, index) => {
    if (typeof merge === 'string') return merge;
    if (Array.isArray(merge) && merge.length === 2 && merge.every((m) => typeof m === 'string'))
      return `${merge[0]} ${merge[1]}`;
    throw new FormatError(file, `model.merges[${index}] is neither "a b" nor ["a", "b"]`);
  });
}

/** Token strings by id (vocab + added tokens), padded to `vocabSize` with `[PAD<i>]`. */
function tokenTable(tokenizer: JsonObject, vocabSize: number, file: string) {
  const model = tokenizer.model as JsonObject;
  const tokens: (string | undefined)[] = new Array(vocabSize);
  const added = new Map<number, { content: string; special: boolean }>();
  if (isObject(model.vocab))
    for (const [token, id] of Object.entries(model.vocab)) if (typeof id === 'number') tokens[id] = token;
  for (const entry of Array.isArray(tokenizer.added_tokens) ? tokenizer.added_tokens : []) {
    if (!isObject(entry) || typeof entry.id !== 'number' || typeof entry.content !== 'string') continue;
    tokens[entry.id] = entry.content;
    added.set(entry.id, { content: entry.content, special: entry.special === true });
  }
  if (tokens.length > vocabSize)
    throw new FormatError(
      file,
      `the tokenizer has ids up to ${tokens.length - 1} but config.json 'vocab_size' is ${vocabSize}`,
    );
  return { tokens, added };
}

function contentOf(value: unknown): string | null {
  if (typeof value === 'string') return value;
  if (isObject(value) && typeof value.content === 'string') return value.content;
  return null;
}

/** The tokenizer metadata entries for the tokenizer in `dir`; `config` is the model's config.json. */
export function tokenizerMetadata(dir: string, config: JsonObject): GgufKv[] {
  const file = join(dir, TOKENIZER_FILE);
  if (!existsSync(file))
    throw new FormatError(file, 'file not found: a GGUF model needs its tokenizer (tokenizer.json)');
  const tokenizer = Tokenizer.fromDir(dir);
  const json = readJsonObject(file);
  const configFile = join(dir, TOKENIZER_CONFIG_FILE);
  const tokConfig = existsSync(configFile) ? readJsonObject(configFile) : {};
  const model = json.model as JsonObject;
  const vocabSize = typeof config.vocab_size === 'number' ? config.vocab_size : tokenizer.vocabSize;
  const { tokens, added } = tokenTable(json, vocabSize, file);
  const out: GgufKv[] = [];
  const names: string[] = [];
  const types: number[] = [];
  for (let id = 0; id < vocabSize; id++) {
    const token = tokens[id];
    names.push(token ?? `[PAD${id}]`);
    if (token === undefined) types.push(TokenType.UNUSED);
    else if (added.has(id)) types.push(added.get(id)!.special ? TokenType.CONTROL : TokenType.USER_DEFINED);
    else types.push(TokenType.NORMAL);
  }
  if (model.type === 'BPE' && byteLevelPreName(json.pre_tokenizer) !== null) {
    out.push(ggufKv.string('tokenizer.ggml.model', 'gpt2'));
    out.push(ggufKv.string('tokenizer.ggml.pre', byteLevelPreName(json.pre_tokenizer)!));
    out.push(ggufKv.strings('tokenizer.ggml.tokens', names));
    out.push(ggufKv.i32s('tokenizer.ggml.token_type', types));
    out.push(ggufKv.strings('tokenizer.ggml.merges', mergeStrings(model, file)));
  } else if (model.type === 'BPE' && isSentencePieceStyle(json)) {
    const merges = mergeStrings(model, file);
    const rank = new Map<string, number>();
    merges.forEach((merge, index) => {
      const product = merge.replace(' ', '');
      if (!rank.has(product)) rank.set(product, index);
    });
    const scores = names.map((token, id) => {
      if (types[id] === TokenType.NORMAL && /^<0x[0-9A-Fa-f]{2}>$/.test(token)) types[id] = TokenType.BYTE;
      const r = rank.get(token);
      return r === undefined ? -(merges.length + 1) : -r;
    });
    for (const id of [tokenizer.bosTokenId, tokenizer.unkTokenId, ...tokenizer.eosTokenIds])
      if (id !== null && id < vocabSize && types[id] === TokenType.NORMAL) types[id] = TokenType.CONTROL;
    out.push(ggufKv.string('tokenizer.ggml.model', 'llama'));
    out.push(ggufKv.string('tokenizer.ggml.pre', 'default'));
    out.push(ggufKv.strings('tokenizer.ggml.tokens', names));
    out.push(ggufKv.f32s('tokenizer.ggml.scores', scores));
    out.push(ggufKv.i32s('tokenizer.ggml.token_type', types));
    out.push(ggufKv.bool('tokenizer.ggml.add_space_prefix', addsSpacePrefix(json)));
  } else {
    const kind =
      model.type === 'BPE'
        ? `BPE with pre-tokenizer ${describe(json.pre_tokenizer)} and no byte fallback`
        : String(model.type);
    throw new FormatError(
      file,
      `tokenizer ${kind} has no faithful llama.cpp equivalent (supported: byte-level BPE as GPT-2 / Qwen2 / Llama 3, SentencePiece-style BPE with byte fallback)`,
    );
  }
  const special = (key: string, id: number | null | undefined) => {
    if (id !== null && id !== undefined && id >= 0 && id < vocabSize)
      out.push(ggufKv.u32(`tokenizer.ggml.${key}`, id));
  };
  const idOf = (key: string) => {
    const content = contentOf(tokConfig[key]);
    return content === null ? undefined : tokenizer.tokenToId(content);
  };
  const configId = (key: string) => {
    const value = config[key];
    return typeof value === 'number'
      ? value
      : Array.isArray(value) && typeof value[0] === 'number'
        ? value[0]
        : undefined;
  };
  special('bos_token_id', idOf('bos_token') ?? configId('bos_token_id'));
  special('eos_token_id', idOf('eos_token') ?? configId('eos_token_id'));
  special('unknown_token_id', idOf('unk_token'));
  special('padding_token_id', idOf('pad_token') ?? configId('pad_token_id'));
  if (typeof tokConfig.add_bos_token === 'boolean')
    out.push(ggufKv.bool('tokenizer.ggml.add_bos_token', tokConfig.add_bos_token));
  if (typeof tokConfig.add_eos_token === 'boolean')
    out.push(ggufKv.bool('tokenizer.ggml.add_eos_token', tokConfig.add_eos_token));
  const templates = tokenizer.chatTemplates;
  const namedTemplates = Object.keys(templates).filter((name) => name !== 'default');
  if (templates.default !== undefined) out.push(ggufKv.string('tokenizer.chat_template', templates.default));
  for (const name of namedTemplates)
    out.push(ggufKv.string(`tokenizer.chat_template.${name}`, templates[name]!));
  if (namedTemplates.length) out.push(ggufKv.strings('tokenizer.chat_templates', namedTemplates));
  return out;
}
