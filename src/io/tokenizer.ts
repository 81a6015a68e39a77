/**
 * Tokenizer: a Hugging Face fast tokenizer (`tokenizer.json` + `tokenizer_config.json`) run by
 * `@huggingface/tokenizers`, with the special-token conventions of transformers on top: BOS/EOS/PAD
 * ids, the Llama family's `add_bos_token` / `add_eos_token` flags, and chat templates.
 *
 * Special tokens added by `encode`: the `post_processor` of tokenizer.json decides, as in the Rust
 * tokenizers library, except for the tokenizer classes whose transformers fast tokenizer rebuilds
 * the post-processor from `add_bos_token` / `add_eos_token` (Llama, CodeLlama, Gemma): for those the
 * flags in tokenizer_config.json decide (defaults: BOS yes, EOS no), as transformers does.
 */
import { existsSync, mkdirSync } from 'node:fs';
import { join } from 'node:path';
import { Tokenizer as HfTokenizer } from '@huggingface/tokenizers';
import { FormatError } from '../errors.ts';
import { writeTextAtomic } from './atomic.ts';
import {
  type ChatMessage,
  ChatTemplate,
  type ChatTemplateOptions,
  chatTemplatesOf,
} from './chat-template.ts';
import { GENERATION_CONFIG_FILE, tokenIdsOf } from './hf.ts';
import {
  briefJson,
  isJsonObject,
  type JsonObject,
  parseJson,
  readOptionalJsonObject,
  readUtf8,
} from './json.ts';

/** The fast tokenizer file (required). */
export const TOKENIZER_FILE = 'tokenizer.json';
/** Special tokens, flags and chat template of transformers (optional). */
export const TOKENIZER_CONFIG_FILE = 'tokenizer_config.json';
/** Older place of the special tokens (optional; fills what tokenizer_config.json lacks). */
export const SPECIAL_TOKENS_MAP_FILE = 'special_tokens_map.json';
/** The chat template as its own file (recent transformers; optional). */
export const CHAT_TEMPLATE_FILE = 'chat_template.jinja';

/** Special-token fields of tokenizer_config.json that hold a single token. */
const SPECIAL_TOKEN_KEYS = [
  'bos_token',
  'eos_token',
  'unk_token',
  'sep_token',
  'pad_token',
  'cls_token',
  'mask_token',
];

/** tokenizer.json model types that @huggingface/tokenizers implements. */
const SUPPORTED_MODELS = ['BPE', 'WordPiece', 'Unigram'];

/** transformers fast tokenizers that rebuild their post-processor from add_bos_token / add_eos_token. */
const FLAG_DRIVEN_CLASSES = /^(Llama|CodeLlama|Gemma)Tokenizer(Fast)?$/;

/** Options of `Tokenizer.encode`. */
export interface EncodeOptions {
  /** Add the special tokens of the post-processor or config (e.g. BOS); default true. */
  addSpecialTokens?: boolean;
}

/** Options of `Tokenizer.decode`. */
export interface DecodeOptions {
  /** Leave out special tokens (BOS, EOS, PAD, ...); default false. */
  skipSpecialTokens?: boolean;
}

/** Options of `Tokenizer.applyChatTemplate`. */
export interface ApplyChatTemplateOptions extends ChatTemplateOptions {
  /**
   * A named template of this tokenizer (e.g. 'tool_use') or a template source; default: 'tool_use'
   * when `tools` are given and the tokenizer has it, else the default template.
   */
  chatTemplate?: string;
}

/** Options of `Tokenizer.fromDir`. */
export interface FromDirOptions {
  /** Also add generation_config.json's `eos_token_id`(s) of the folder to `eosTokenIds` (default false). */
  mergeGenerationConfig?: boolean;
}

/** The files a Tokenizer was built from, kept verbatim so `save` writes exact copies. */
type SourceFiles = Map<string, string>;

/** The token string of a special-token value: a string or an AddedToken object `{content, ...}`. */
function tokenContent(value: unknown, file: string, key: string): string | null {
  if (value === undefined || value === null) return null;
  if (typeof value === 'string') return value;
  if (isJsonObject(value) && typeof value.content === 'string') return value.content;
  throw new FormatError(file, `${key} must be a token string or {content: ...}, found ${briefJson(value)}`);
}

/**
 * A copy of a tokenizer.json without the dummy prefix that SentencePiece-style and byte-level
 * tokenizers put before a text: `Prepend` normalizers are dropped, Metaspace pre-tokenizers get
 * `prepend_scheme: 'never'`, ByteLevel ones `add_prefix_space: false` (also inside Sequences).
 */
function withoutDummyPrefix(tokenizerJson: JsonObject): JsonObject {
  const strip = (step: unknown, kind: 'normalizers' | 'pretokenizers'): unknown => {
    if (!isJsonObject(step)) return step;
    if (step.type === 'Sequence' && Array.isArray(step[kind])) {
      const inner = step[kind].map((s) => strip(s, kind)).filter((s) => s !== null);
      return { ...step, [kind]: inner };
    }
    if (step.type === 'Prepend') return null;
    if (step.type === 'Metaspace') return { ...step, prepend_scheme: 'never', add_prefix_space: false };
    if (step.type === 'ByteLevel') return { ...step, add_prefix_space: false };
    return step;
  };
  return {
    ...tokenizerJson,
    normalizer: strip(tokenizerJson.normalizer, 'normalizers') as JsonObject | null,
    pre_tokenizer: strip(tokenizerJson.pre_tokenizer, 'pretokenizers') as JsonObject | null,
  };
}

/** Text encoded and decoded once at load, so that a malformed part of tokenizer.json fails there. */
const PROBE_TEXT = 'Hello, world! 1 2 ü 🙂';

/**
 * The structural checks the tokenizers library leaves to chance (a wrong type there surfaces as
 * a TypeError, or as garbage token ids, at the first encode): the token ids of `added_tokens` and
 * of the model's vocabulary must be non-negative integers, the merges strings or pairs.
 */
function checkTokenizerJson(tokenizerJson: JsonObject, file: string): void {
  const isId = (v: unknown) => Number.isSafeInteger(v) && (v as number) >= 0;
  const added = tokenizerJson.added_tokens;
  if (added !== undefined && added !== null) {
    if (!Array.isArray(added)) throw new FormatError(file, "'added_tokens' must be a list");
    added.forEach((token, i) => {
      if (!isJsonObject(token) || !isId(token.id) || typeof token.content !== 'string') {
        throw new FormatError(
          file,
          `added_tokens[${i}] must be {id: a token id, content: a string, ...}, found ${briefJson(token)}`,
        );
      }
    });
  }
  const model = tokenizerJson.model as JsonObject;
  if (model.unk_token !== undefined && model.unk_token !== null && typeof model.unk_token !== 'string') {
    throw new FormatError(
      file,
      `model.unk_token must be a token string, found ${briefJson(model.unk_token)}`,
    );
  }
  const vocab = model.vocab;
  if (model.type === 'Unigram') {
    if (!Array.isArray(vocab))
      throw new FormatError(file, `model.vocab must be a list of [token, score], found ${briefJson(vocab)}`);
    vocab.forEach((entry, i) => {
      if (!Array.isArray(entry) || typeof entry[0] !== 'string' || typeof entry[1] !== 'number') {
        throw new FormatError(file, `model.vocab[${i}] must be [token, score], found ${briefJson(entry)}`);
      }
    });
  } else {
    if (!isJsonObject(vocab))
      throw new FormatError(file, `model.vocab must be an object {token: id}, found ${briefJson(vocab)}`);
    for (const [token, id] of Object.entries(vocab)) {
      if (!isId(id))
        throw new FormatError(
          file,
          `model.vocab[${briefJson(token)}] must be a token id, found ${briefJson(id)}`,
        );
    }
  }
  if (model.type === 'BPE' && model.merges !== undefined) {
    const merges = model.merges;
    if (!Array.isArray(merges))
      throw new FormatError(file, `model.merges must be a list, found ${briefJson(merges)}`);
    merges.forEach((merge, i) => {
      const pair = Array.isArray(merge) && merge.length === 2 && merge.every((m) => typeof m === 'string');
      if (!pair && typeof merge !== 'string') {
        throw new FormatError(
          file,
          `model.merges[${i}] must be "a b" or ["a", "b"], found ${briefJson(merge)}`,
        );
      }
    });
  }
}

/** A Hugging Face tokenizer with transformers' special-token and chat-template behaviour. */
export class Tokenizer {
  private readonly inner: HfTokenizer;
  private readonly files: SourceFiles;
  private readonly eosIds: number[];
  private readonly templates: Record<string, ChatTemplate>;
  /** BOS/EOS added by `encode` itself (flag-driven classes); null: the post-processor decides. */
  private readonly flags: { addBos: boolean; addEos: boolean } | null;
  /** The parsed tokenizer.json and tokenizer_config.json, kept to build `continuation` on first use. */
  private readonly json: JsonObject;
  private readonly config: JsonObject;
  /** The same tokenizer without a dummy prefix (built on first `encodeContinuation`). */
  private continuation: HfTokenizer | null = null;

  /** The folder the tokenizer was loaded from (named in errors). */
  readonly origin: string;
  /** Number of tokens, added tokens included (transformers' `len(tokenizer)`). */
  readonly vocabSize: number;
  /** Beginning-of-sequence token id, or null when the tokenizer has none. */
  readonly bosTokenId: number | null;
  /** Unknown-token id, or null. */
  readonly unkTokenId: number | null;
  /** Padding id: the configured `pad_token`, falling back to the first EOS id when there is none (null if neither). */
  readonly padTokenId: number | null;
  /** The special tokens as transformers' `special_tokens_map` (passed to chat templates). */
  readonly specialTokens: Readonly<Record<string, string | string[]>>;

  private constructor(tokenizerJson: JsonObject, config: JsonObject, files: SourceFiles, origin: string) {
    const tokenizerFile = join(origin, TOKENIZER_FILE);
    const configFile = join(origin, TOKENIZER_CONFIG_FILE);
    if (!isJsonObject(tokenizerJson.model) || typeof tokenizerJson.model.type !== 'string') {
      throw new FormatError(
        tokenizerFile,
        "missing 'model' object with a 'type' (not a tokenizers tokenizer.json)",
      );
    }
    if (!SUPPORTED_MODELS.includes(tokenizerJson.model.type)) {
      throw new FormatError(
        tokenizerFile,
        `tokenizer model type '${tokenizerJson.model.type}' is not supported (supported: ${SUPPORTED_MODELS.join(', ')})`,
      );
    }
    checkTokenizerJson(tokenizerJson, tokenizerFile);
    try {
      this.inner = new HfTokenizer(
        {
          added_tokens: [],
          normalizer: null,
          pre_tokenizer: null,
          post_processor: null,
          decoder: null,
          ...tokenizerJson,
        },
        config,
      );
      // Some parts are only used on first encode / decode: fail here, naming the file, not later.
      this.inner.decode(this.inner.encode(PROBE_TEXT, { add_special_tokens: true }).ids);
    } catch (error) {
      const message = error instanceof Error ? error.message : String(error);
      throw new FormatError(
        tokenizerFile,
        `cannot build the tokenizer: ${message.replace(/\s*\n\s*/g, ' ')}`,
      );
    }
    this.files = files;
    this.json = tokenizerJson;
    this.config = config;
    this.origin = origin;
    this.vocabSize = this.inner.get_vocab(true).size;

    const specialTokens: Record<string, string | string[]> = {};
    const idOf = (key: string): number | null => {
      const token = tokenContent(config[key], configFile, key);
      if (token === null) return null;
      specialTokens[key] = token;
      const id = this.inner.token_to_id(token);
      if (id === undefined)
        throw new FormatError(configFile, `${key} '${token}' is not in the vocabulary of ${TOKENIZER_FILE}`);
      return id;
    };
    const ids: Record<string, number | null> = {};
    for (const key of SPECIAL_TOKEN_KEYS) ids[key] = idOf(key);
    const additional = config.additional_special_tokens;
    if (Array.isArray(additional)) {
      specialTokens.additional_special_tokens = additional.map(
        (t, i) => tokenContent(t, configFile, `additional_special_tokens[${i}]`) ?? '',
      );
    }
    this.specialTokens = specialTokens;
    this.bosTokenId = ids.bos_token!;
    this.unkTokenId = ids.unk_token!;
    this.eosIds = ids.eos_token === null ? [] : [ids.eos_token!];
    this.padTokenId = ids.pad_token ?? this.eosIds[0] ?? null;

    const tokenizerClass = typeof config.tokenizer_class === 'string' ? config.tokenizer_class : '';
    if (FLAG_DRIVEN_CLASSES.test(tokenizerClass)) {
      const addBos = config.add_bos_token === undefined ? true : config.add_bos_token === true;
      const addEos = config.add_eos_token === true;
      if (addBos && this.bosTokenId === null)
        throw new FormatError(configFile, 'add_bos_token is true but there is no bos_token');
      if (addEos && this.eosIds.length === 0)
        throw new FormatError(configFile, 'add_eos_token is true but there is no eos_token');
      this.flags = { addBos, addEos };
    } else {
      this.flags = null;
    }

    this.templates = {};
    const jinjaSource = files.get(CHAT_TEMPLATE_FILE);
    const configured = chatTemplatesOf(config.chat_template, configFile);
    for (const [name, source] of Object.entries(configured))
      this.templates[name] = new ChatTemplate(source, configFile);
    if (jinjaSource !== undefined)
      this.templates.default = new ChatTemplate(jinjaSource, join(origin, CHAT_TEMPLATE_FILE));
  }

  /**
   * Load the tokenizer of the folder `dir`: `tokenizer.json` (required), `tokenizer_config.json`
   * (special tokens, flags, chat template), `special_tokens_map.json` (fills special tokens the
   * config lacks, as transformers does) and `chat_template.jinja` (takes precedence over the
   * config's template, as in recent transformers). Malformed files give a one-line FormatError.
   */
  static fromDir(dir: string, options: FromDirOptions = {}): Tokenizer {
    const files: SourceFiles = new Map();
    const read = (name: string, required: boolean): string | null => {
      const path = join(dir, name);
      if (!existsSync(path)) {
        if (required) throw new FormatError(path, 'file not found (a Hugging Face fast tokenizer is needed)');
        return null;
      }
      const text = readUtf8(path);
      files.set(name, text);
      return text;
    };
    const asObject = (name: string, text: string): JsonObject => {
      const value = parseJson(text, join(dir, name));
      if (!isJsonObject(value)) throw new FormatError(join(dir, name), 'expected a JSON object');
      return value;
    };
    const tokenizerJson = asObject(TOKENIZER_FILE, read(TOKENIZER_FILE, true)!);
    const configText = read(TOKENIZER_CONFIG_FILE, false);
    const config = configText === null ? {} : asObject(TOKENIZER_CONFIG_FILE, configText);
    const mapText = read(SPECIAL_TOKENS_MAP_FILE, false);
    if (mapText !== null) {
      const map = asObject(SPECIAL_TOKENS_MAP_FILE, mapText);
      for (const key of [...SPECIAL_TOKEN_KEYS, 'additional_special_tokens']) {
        if (!(key in config) && map[key] !== undefined) config[key] = map[key];
      }
    }
    read(CHAT_TEMPLATE_FILE, false);
    const tokenizer = new Tokenizer(tokenizerJson, config, files, dir);
    if (options.mergeGenerationConfig) {
      const path = join(dir, GENERATION_CONFIG_FILE);
      const generation = readOptionalJsonObject(path, 'a generation config object');
      if (generation) tokenizer.addEosTokenIds(tokenIdsOf(generation, path));
    }
    return tokenizer;
  }

  /**
   * A tokenizer from already-parsed tokenizer.json and tokenizer_config.json objects; `origin` is
   * the folder named in errors. `save` writes them back as JSON.
   */
  static fromObjects(tokenizerJson: JsonObject, config: JsonObject = {}, origin = '<memory>'): Tokenizer {
    const files: SourceFiles = new Map([
      [TOKENIZER_FILE, `${JSON.stringify(tokenizerJson, null, 2)}\n`],
      [TOKENIZER_CONFIG_FILE, `${JSON.stringify(config, null, 2)}\n`],
    ]);
    return new Tokenizer(tokenizerJson, { ...config }, files, origin);
  }

  /** End-of-sequence ids: the config's `eos_token`, plus any merged with `addEosTokenIds`. */
  get eosTokenIds(): readonly number[] {
    return [...this.eosIds];
  }

  /**
   * Add stop ids (e.g. generation_config.json's `eos_token_id`, which may list several) to
   * `eosTokenIds`; ids already present are skipped. `padTokenId` is not changed.
   */
  addEosTokenIds(ids: number | readonly number[]): void {
    for (const id of typeof ids === 'number' ? [ids] : ids) {
      if (!Number.isSafeInteger(id) || id < 0) throw new RangeError(`addEosTokenIds: invalid token id ${id}`);
      if (!this.eosIds.includes(id)) this.eosIds.push(id);
    }
  }

  /** Token ids of `text`, as transformers / the Rust tokenizers library give them. */
  encode(text: string, options: EncodeOptions = {}): number[] {
    const addSpecialTokens = options.addSpecialTokens ?? true;
    if (this.flags === null) return this.inner.encode(text, { add_special_tokens: addSpecialTokens }).ids;
    const ids = this.inner.encode(text, { add_special_tokens: false }).ids;
    if (!addSpecialTokens) return ids;
    if (this.flags.addBos) ids.unshift(this.bosTokenId!);
    if (this.flags.addEos) ids.push(this.eosIds[0]!);
    return ids;
  }

  /**
   * Token ids of `text` as the continuation of a sequence: no special tokens and no dummy prefix
   * (the `Prepend` normalizer, Metaspace's `prepend_scheme`, ByteLevel's `add_prefix_space`, which
   * only belong at the start of a text), so that `decode([...before, ...encodeContinuation(text)])`
   * is the text of `before` followed by `text`. E.g. SentencePiece-style tokenizers encode " a"
   * alone as `▁` `▁a`; as a continuation it is `▁a`.
   */
  encodeContinuation(text: string): number[] {
    if (this.continuation === null) {
      this.continuation = new HfTokenizer(
        withoutDummyPrefix({
          added_tokens: [],
          normalizer: null,
          pre_tokenizer: null,
          post_processor: null,
          decoder: null,
          ...this.json,
        }),
        this.config,
      );
    }
    return this.continuation.encode(text, { add_special_tokens: false }).ids;
  }

  /** The text of `ids` (ids outside the vocabulary are skipped, as in the Rust library). */
  decode(ids: readonly number[] | Int32Array, options: DecodeOptions = {}): string {
    const known: number[] = [];
    for (const id of ids) {
      if (!Number.isInteger(id)) throw new TypeError(`decode: token id ${id} is not an integer`);
      if (this.inner.id_to_token(id) !== undefined) known.push(id);
    }
    if (known.length === 0) return '';
    return this.inner.decode(known, { skip_special_tokens: options.skipSpecialTokens ?? false });
  }

  /** The token string of `id`, or undefined outside the vocabulary. */
  idToToken(id: number): string | undefined {
    return this.inner.id_to_token(id);
  }

  /** The id of the token string `token`, or undefined when it is not in the vocabulary. */
  tokenToId(token: string): number | undefined {
    return this.inner.token_to_id(token);
  }

  /** The default chat template's source, or null when the tokenizer has none. */
  get chatTemplate(): string | null {
    return this.templates.default?.source ?? null;
  }

  /** All chat templates by name ('default' for the plain one). */
  get chatTemplates(): Readonly<Record<string, string>> {
    return Object.fromEntries(Object.entries(this.templates).map(([name, t]) => [name, t.source]));
  }

  /**
   * Render `messages` with the chat template (see ChatTemplate for the variables). The result
   * usually starts with BOS already: encode it with `{addSpecialTokens: false}`, or use `encodeChat`.
   */
  applyChatTemplate(messages: readonly ChatMessage[], options: ApplyChatTemplateOptions = {}): string {
    let template: ChatTemplate | undefined;
    if (options.chatTemplate !== undefined) {
      template =
        this.templates[options.chatTemplate] ??
        new ChatTemplate(options.chatTemplate, 'the chatTemplate option');
    } else {
      // As transformers: a 'tool_use' template is picked when tools are given.
      template = (options.tools ? this.templates.tool_use : undefined) ?? this.templates.default;
      if (!template) {
        const named = Object.keys(this.templates);
        throw new FormatError(
          join(this.origin, TOKENIZER_CONFIG_FILE),
          named.length > 0
            ? `no default chat template (named templates: ${named.join(', ')}); pick one with the chatTemplate option`
            : 'the tokenizer has no chat template; pass one with the chatTemplate option',
        );
      }
    }
    return template.render(messages, this.specialTokens, options);
  }

  /** Token ids of the rendered chat: `encode(applyChatTemplate(...), {addSpecialTokens: false})`, as transformers does. */
  encodeChat(messages: readonly ChatMessage[], options: ApplyChatTemplateOptions = {}): number[] {
    return this.encode(this.applyChatTemplate(messages, options), { addSpecialTokens: false });
  }

  /**
   * Write the tokenizer files into `dir` (created if needed), each atomically: exact copies of the
   * files it was loaded from (tokenizer.json, tokenizer_config.json, and special_tokens_map.json /
   * chat_template.jinja when present).
   */
  save(dir: string): void {
    mkdirSync(dir, { recursive: true });
    if (!this.files.has(TOKENIZER_CONFIG_FILE)) this.files.set(TOKENIZER_CONFIG_FILE, '{}\n');
    for (const [name, text] of this.files) writeTextAtomic(join(dir, name), text);
  }
}
