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
 * - prompt/completion: the text is `prompt + completion` (concatenated as is: put any separating
 *   space or newline in the data). The prompt's tokens are exactly `encode(prompt)`, special tokens
 *   (BOS) included, as inference encodes it (`generate`, `eval`); the completion's tokens follow
 *   them (continuation.ts: those of `encode(prompt + completion)` after the prompt's when they
 *   agree, else the completion encoded on its own without special tokens or dummy prefix, when the
 *   tokenizer merges across the boundary), so they decode to the completion; then EOS as for text.
 *   The prompt is masked, completion + EOS trained; `trainOn: 'all'` trains every token (same ids).
 *   Records merged across the boundary are counted in `tokenizeRecords`' `boundaryMerges`.
 * - alpaca: the prompt is the Stanford Alpaca template (ALPACA_PROMPT_WITH_INPUT when `input` is
 *   non-empty, else ALPACA_PROMPT_NO_INPUT, exactly as in tatsu-lab/stanford_alpaca) and the
 *   completion is `output`; then as prompt/completion.
 * - messages: rendered with the tokenizer's chat template (or the `chatTemplate` option; a tokenizer
 *   without one is an error naming the record); assistant turns are trained (content plus the
 *   template's end-of-turn marker, see chat.ts), everything else (system, user, tool turns, the
 *   assistant headers) is masked; `trainOn: 'all'` trains every token. No EOS is appended: the
 *   template ends each turn. Each turn's context is tokenised as inference encodes it (chat.ts).
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
import { continuationIds } from './continuation.ts';
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
  /** Weight of the example's pair in a preference loss (preference.ts `weight`; absent = 1). */
  weight?: number;
  /**
   * Per position (aligned with labels): the loss weight of the label there, from the record's
   * `weight`, its assistant messages' `weight` and its `token_weights` (multiplied); absent when the
   * record sets none (all 1).
   */
  tokenWeights?: Float32Array;
}

/** Records whose text the tokenizer merged across the prompt/response boundary. */
export interface BoundaryMerges {
  /** How many kept records. */
  count: number;
  /** The first of them. */
  file: string;
  line: number;
  /** Its token across the boundary in the joint encoding (e.g. `found▁a▁`), when known. */
  token?: string;
}

export interface TokenizeResult {
  examples: TokenizedExample[];
  skipped: SkippedRecord[];
  /** Null when no kept record was merged across its boundary. */
  boundaryMerges: BoundaryMerges | null;
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

/** Ids and trained spans of a record, before truncation. */
function sequenceOf(
  record: DataRecord,
  tokenizer: Tokenizer,
  options: ResolvedOptions,
): { ids: number[]; spans: TokenSpan[]; spanWeights?: number[]; merged: boolean; mergedToken?: string } {
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
    const promptIds = tokenizer.encode(prompt);
    const promptText = tokenizer.encode(prompt, { addSpecialTokens: false });
    const completionIds = continuationIds(tokenizer, prompt, promptText, completion);
    const ids = withEos([...promptIds, ...completionIds.ids]);
    const start = options.trainOn === 'all' ? 0 : promptIds.length;
    return { ...completionIds, ids, spans: [[start, ids.length] as const] };
  };
  switch (record.shape) {
    case 'text': {
      const ids = withEos(tokenizer.encode(record.text));
      return { ids, spans: [[0, ids.length]], merged: false };
    }
    case 'prompt_completion':
      return promptCompletion(record.prompt, record.completion);
    case 'alpaca':
      return promptCompletion(alpacaPrompt(record.instruction, record.input), record.output);
    case 'messages': {
      const all = options.trainOn === 'all';
      const chat = tokenizeChat(tokenizer, record, { chatTemplate: options.chatTemplate, spans: !all });
      const messageWeight = (i: number) => {
        const w = record.messages[i]!.weight;
        return typeof w === 'number' ? w : 1;
      };
      return {
        ids: chat.ids,
        spans: all ? [[0, chat.ids.length]] : chat.assistantSpans,
        ...(all ? {} : { spanWeights: chat.assistantMessages.map(messageWeight) }),
        merged: chat.merged,
        mergedToken: chat.mergedToken,
      };
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
  return tokenizeResolved(record, tokenizer, resolveOptions(options)).example;
}

function tokenizeResolved(
  record: DataRecord,
  tokenizer: Tokenizer,
  options: ResolvedOptions,
): { example: TokenizedExample; merged: boolean; mergedToken?: string } {
  const { ids, spans, spanWeights, merged, mergedToken } = sequenceOf(record, tokenizer, options);
  const fail = (reason: string): never => {
    throw new DataError(record.file, record.line, reason);
  };
  const total = ids.length;
  let labels = new Int32Array(total).fill(IGNORE_INDEX);
  for (const [start, end] of spans) for (let t = start; t < end; t++) labels[t] = ids[t]!;
  let tokenWeights = weightsOf(record, labels, spans, spanWeights, fail);
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
    tokenWeights = tokenWeights?.slice(from, from + maxLength);
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
  return {
    example: {
      inputIds,
      labels,
      file: record.file,
      line: record.line,
      truncatedTokens,
      ...(tokenWeights ? { tokenWeights } : {}),
    },
    merged,
    mergedToken,
  };
}

/**
 * The per-position loss weights of a record (before truncation), or undefined when it sets none:
 * the product of its `weight`, the `weight` of the assistant message each span comes from, and its
 * `token_weights` — one per trained token at positions >= 1 (the tokens the loss scores), in order.
 */
function weightsOf(
  record: DataRecord,
  labels: Int32Array,
  spans: readonly TokenSpan[],
  spanWeights: readonly number[] | undefined,
  fail: (reason: string) => never,
): Float32Array | undefined {
  const perSpan = spanWeights?.some((w) => w !== 1) ? spanWeights : undefined;
  if (record.weight === undefined && record.tokenWeights === undefined && !perSpan) return undefined;
  const weights = new Float32Array(labels.length).fill(1);
  if (perSpan)
    spans.forEach(([start, end], i) => {
      weights.fill(perSpan[i]!, start, end);
    });
  if (record.weight !== undefined) for (let t = 0; t < weights.length; t++) weights[t]! *= record.weight;
  if (record.tokenWeights !== undefined) {
    const trained: number[] = [];
    for (let t = 1; t < labels.length; t++) if (labels[t] !== IGNORE_INDEX) trained.push(t);
    if (record.tokenWeights.length !== trained.length)
      fail(
        `field 'token_weights' has ${record.tokenWeights.length} weights, but the record has ${trained.length} trained tokens (one weight per trained token, in order)`,
      );
    trained.forEach((t, i) => {
      weights[t]! *= record.tokenWeights![i]!;
    });
  }
  return weights;
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
  let boundaryMerges: BoundaryMerges | null = null;
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
      const { example, merged, mergedToken } = tokenizeResolved(record, tokenizer, resolved);
      examples.push(example);
      if (merged) {
        boundaryMerges ??= { count: 0, file: record.file, line: record.line, token: mergedToken };
        boundaryMerges.count++;
      }
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
  return { examples, skipped, boundaryMerges };
}

/** Length of the `file:line: ` prefix of a DataError's message. */
function prefixLength(error: DataError): number {
  return `${error.file}:${error.line}: `.length;
}
