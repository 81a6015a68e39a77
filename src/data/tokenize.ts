/**
 * Records -> token ids and labels. `labels` is aligned with `inputIds` (the Hugging Face
 * convention): labels[t] = inputIds[t] where token t is trained and -100 (IGNORE_INDEX) elsewhere;
 * the loss shifts them (the token at t is predicted from the tokens before it), so the label of
 * position 0 never counts.
 *
 * Masking rules (`trainOn`; 'completion' and 'assistant' are the same setting, "the response part",
 * named as each shape calls it, so that one value serves files that mix shapes; the default):
 * - text: every token is trained, whatever `trainOn` says. Special tokens are the tokenizer's
 *   (e.g. BOS from its post-processor or `add_bos_token`); EOS is appended unless `appendEos` is
 *   false or the tokenizer already ended the sequence with an EOS id.
 * - prompt/completion: the text `prompt + completion` (concatenated as is: put any separating space
 *   or newline in the data) is tokenised with the tokenizer's special tokens, plus EOS as for text.
 *   The prompt's tokens are those of `encode(prompt)` that begin `encode(prompt + completion)` (as in
 *   Stanford Alpaca's and TRL's preprocessing); they are masked, everything after (completion + EOS) is
 *   trained. When a token straddles the boundary (a BPE merge across it), it is trained.
 *   `trainOn: 'all'` trains every token.
 * - alpaca: the prompt is the Stanford Alpaca template (ALPACA_PROMPT_WITH_INPUT when `input` is
 *   non-empty, else ALPACA_PROMPT_NO_INPUT, exactly as in tatsu-lab/stanford_alpaca) and the
 *   completion is `output`; then as prompt/completion.
 * - messages: rendered with the tokenizer's chat template (or the `chatTemplate` option; a tokenizer
 *   without one is an error naming the record); assistant turns are trained (content plus the
 *   template's end-of-turn marker, see chat.ts), everything else (system, user, tool turns, the
 *   assistant headers) is masked; `trainOn: 'all'` trains every token. No EOS is appended: the
 *   template ends each turn.
 *
 * `maxLength` caps the token count with the `truncation` policy: 'right' (default) keeps the first
 * maxLength tokens, 'left' keeps the last ones (the start, BOS included, is dropped, so the response
 * survives), 'error' rejects the record. A record with no trained token at positions >= 1 (after
 * truncation, or a conversation without an assistant turn) is rejected. Rejected records follow
 * `onBadRecord` in `tokenizeRecords`.
 */
import { ConfigError, DataError } from '../errors.ts';
import type { Tokenizer } from '../io/tokenizer.ts';
import { type TokenSpan, tokenizeChat } from './chat.ts';
import { checkOnBadRecord, type DataRecord, type OnBadRecord, type SkippedRecord } from './jsonl.ts';

/** The label of a token that is not trained. */
export const IGNORE_INDEX = -100;

/** Stanford Alpaca's prompt for records with an input (`{instruction}`, `{input}` substituted). */
export const ALPACA_PROMPT_WITH_INPUT =
  'Below is an instruction that describes a task, paired with an input that provides further context. ' +
  'Write a response that appropriately completes the request.\n\n' +
  '### Instruction:\n{instruction}\n\n### Input:\n{input}\n\n### Response:';

/** Stanford Alpaca's prompt for records without an input (`{instruction}` substituted). */
export const ALPACA_PROMPT_NO_INPUT =
  'Below is an instruction that describes a task. ' +
  'Write a response that appropriately completes the request.\n\n' +
  '### Instruction:\n{instruction}\n\n### Response:';

/** Which tokens are trained: the response part of each shape (default), or all. */
export type TrainOn = 'completion' | 'assistant' | 'all';

/** What to do with a record longer than `maxLength`. */
export type Truncation = 'right' | 'left' | 'error';

export interface TokenizeOptions {
  /** 'completion' / 'assistant' (the same: the response part, default) or 'all'. */
  trainOn?: TrainOn;
  /** Maximum tokens per example (default: no limit); an integer >= 2. */
  maxLength?: number;
  /** Policy for longer records: 'right' (default, keep the start), 'left' (keep the end), 'error'. */
  truncation?: Truncation;
  /** Append EOS to text, prompt/completion and alpaca records (default true). */
  appendEos?: boolean;
  /** Chat template for {messages} records: a named template of the tokenizer or a source. */
  chatTemplate?: string;
  /** For `tokenizeRecords`: 'error' (default) throws the first bad record's DataError; 'skip' lists it. */
  onBadRecord?: OnBadRecord;
}

/** One training example. */
export interface TokenizedExample {
  inputIds: Int32Array;
  /** Aligned with inputIds; IGNORE_INDEX where not trained. */
  labels: Int32Array;
  /** The record it came from. */
  file: string;
  line: number;
  /** Tokens cut off by truncation (0 when none). */
  truncatedTokens: number;
}

export interface TokenizeResult {
  examples: TokenizedExample[];
  skipped: SkippedRecord[];
}

interface ResolvedOptions {
  trainOn: TrainOn;
  maxLength: number | null;
  truncation: Truncation;
  appendEos: boolean;
  chatTemplate: string | undefined;
}

/** Validated options with defaults; ConfigError naming the option otherwise. */
function resolveOptions(options: TokenizeOptions): ResolvedOptions {
  const oneOf = <T extends string>(name: string, value: unknown, allowed: readonly T[], fallback: T): T => {
    if (value === undefined) return fallback;
    if (allowed.includes(value as T)) return value as T;
    throw new ConfigError(
      `option '${name}' must be one of ${allowed.map((a) => `'${a}'`).join(', ')}, found ${JSON.stringify(value)}`,
    );
  };
  const maxLength = options.maxLength;
  if (maxLength !== undefined && (!Number.isSafeInteger(maxLength) || maxLength < 2)) {
    throw new ConfigError(`option 'maxLength' must be an integer >= 2, found ${JSON.stringify(maxLength)}`);
  }
  if (options.appendEos !== undefined && typeof options.appendEos !== 'boolean') {
    throw new ConfigError(
      `option 'appendEos' must be true or false, found ${JSON.stringify(options.appendEos)}`,
    );
  }
  if (options.chatTemplate !== undefined && typeof options.chatTemplate !== 'string') {
    throw new ConfigError(`option 'chatTemplate' must be a string, found ${typeof options.chatTemplate}`);
  }
  return {
    trainOn: oneOf('trainOn', options.trainOn, ['completion', 'assistant', 'all'], 'completion'),
    maxLength: maxLength ?? null,
    truncation: oneOf('truncation', options.truncation, ['right', 'left', 'error'], 'right'),
    appendEos: options.appendEos ?? true,
    chatTemplate: options.chatTemplate,
  };
}

/** The Stanford Alpaca prompt of an instruction and input (the no-input variant when `input` is ''). */
export function alpacaPrompt(instruction: string, input: string): string {
  const template = input !== '' ? ALPACA_PROMPT_WITH_INPUT : ALPACA_PROMPT_NO_INPUT;
  return template.replace('{instruction}', () => instruction).replace('{input}', () => input);
}

/** Length of the longest common prefix of two token sequences. */
function commonPrefixLength(a: readonly number[], b: readonly number[]): number {
  const n = Math.min(a.length, b.length);
  let i = 0;
  while (i < n && a[i] === b[i]) i++;
  return i;
}

/** Ids and trained spans of a record, before truncation. */
function sequenceOf(
  record: DataRecord,
  tokenizer: Tokenizer,
  options: ResolvedOptions,
): { ids: number[]; spans: TokenSpan[] } {
  const withEos = (ids: number[]): number[] => {
    if (!options.appendEos) return ids;
    const eos = tokenizer.eosTokenIds;
    if (eos.length === 0) {
      throw new ConfigError(
        `the tokenizer of ${tokenizer.origin} has no eos_token to append; set the option appendEos to false`,
      );
    }
    if (ids.length === 0 || !eos.includes(ids[ids.length - 1]!)) ids.push(eos[0]!);
    return ids;
  };
  const promptCompletion = (prompt: string, completion: string) => {
    const ids = withEos(tokenizer.encode(prompt + completion));
    if (options.trainOn === 'all') return { ids, spans: [[0, ids.length] as const] };
    const boundary = commonPrefixLength(tokenizer.encode(prompt), ids);
    return { ids, spans: [[boundary, ids.length] as const] };
  };
  switch (record.shape) {
    case 'text': {
      const ids = withEos(tokenizer.encode(record.text));
      return { ids, spans: [[0, ids.length]] };
    }
    case 'prompt_completion':
      return promptCompletion(record.prompt, record.completion);
    case 'alpaca':
      return promptCompletion(alpacaPrompt(record.instruction, record.input), record.output);
    case 'messages': {
      const all = options.trainOn === 'all';
      const chat = tokenizeChat(tokenizer, record, { chatTemplate: options.chatTemplate, spans: !all });
      return { ids: chat.ids, spans: all ? [[0, chat.ids.length]] : chat.assistantSpans };
    }
  }
}

/**
 * Tokenise one record into inputIds and labels (rules in the file comment). Throws a DataError
 * naming the record's file and line when it cannot be used (no trained token, too long under
 * `truncation: 'error'`, a chat template that fails), a ConfigError for invalid options.
 */
export function tokenizeRecord(
  record: DataRecord,
  tokenizer: Tokenizer,
  options: TokenizeOptions = {},
): TokenizedExample {
  return tokenizeResolved(record, tokenizer, resolveOptions(options));
}

function tokenizeResolved(
  record: DataRecord,
  tokenizer: Tokenizer,
  options: ResolvedOptions,
): TokenizedExample {
  const { ids, spans } = sequenceOf(record, tokenizer, options);
  const fail = (reason: string): never => {
    throw new DataError(record.file, record.line, reason);
  };
  const total = ids.length;
  let labels = new Int32Array(total).fill(IGNORE_INDEX);
  for (const [start, end] of spans) for (let t = start; t < end; t++) labels[t] = ids[t]!;
  let inputIds = Int32Array.from(ids);
  let truncatedTokens = 0;
  const maxLength = options.maxLength;
  if (maxLength !== null && total > maxLength) {
    if (options.truncation === 'error') {
      fail(`the record has ${total} tokens, more than maxLength ${maxLength} (truncation: 'error')`);
    }
    const from = options.truncation === 'left' ? total - maxLength : 0;
    inputIds = inputIds.slice(from, from + maxLength);
    labels = labels.slice(from, from + maxLength);
    truncatedTokens = total - maxLength;
  }
  let trained = 0;
  for (let t = 1; t < labels.length; t++) if (labels[t] !== IGNORE_INDEX) trained++;
  if (trained === 0) {
    if (truncatedTokens > 0) {
      fail(
        `no trained tokens left after truncating ${total} tokens to maxLength ${maxLength} ` +
          `(truncation: '${options.truncation}'); raise maxLength or shorten the record`,
      );
    }
    if (record.shape === 'messages' && !record.messages.some((m) => m.role === 'assistant')) {
      fail('no trained tokens: the conversation has no assistant message');
    }
    fail(`no trained tokens (${total} tokens, none of them after the first is trained)`);
  }
  return { inputIds, labels, file: record.file, line: record.line, truncatedTokens };
}

/**
 * Tokenise `records`. With `onBadRecord: 'error'` (default) the first unusable record throws its
 * DataError; with 'skip' it is listed in `skipped` and left out. A {messages} record when the
 * tokenizer has no chat template is always an error (it is a setup problem, not a bad record), as
 * are invalid options (ConfigError).
 */
export function tokenizeRecords(
  records: readonly DataRecord[],
  tokenizer: Tokenizer,
  options: TokenizeOptions = {},
): TokenizeResult {
  const resolved = resolveOptions(options);
  const onBadRecord = checkOnBadRecord(options.onBadRecord);
  const examples: TokenizedExample[] = [];
  const skipped: SkippedRecord[] = [];
  const firstChat = records.find((r) => r.shape === 'messages');
  if (
    firstChat?.shape === 'messages' &&
    resolved.chatTemplate === undefined &&
    tokenizer.chatTemplate === null
  ) {
    // Same error as tokenizing the record would give, raised whatever onBadRecord says.
    tokenizeResolved(firstChat, tokenizer, resolved);
  }
  for (const record of records) {
    try {
      examples.push(tokenizeResolved(record, tokenizer, resolved));
    } catch (error) {
      if (onBadRecord === 'skip' && error instanceof DataError) {
        skipped.push({
          file: error.file,
          line: error.line,
          reason: error.message.slice(prefixLength(error)),
        });
      } else {
        throw error;
      }
    }
  }
  return { examples, skipped };
}

/** Length of the `file:line: ` prefix of a DataError's message. */
function prefixLength(error: DataError): number {
  return `${error.file}:${error.line}: `.length;
}
