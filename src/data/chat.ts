/**
 * Token ids of a conversation and the spans of its assistant turns, built turn by turn so that
 * each assistant turn is trained on exactly the context that inference encodes for it
 * (`encodeChat(messages[0..i), {addGenerationPrompt: true})`, as `generate --chat` and `eval` do):
 *
 * - the conversation is rendered whole (`addGenerationPrompt: false`); the template writes BOS
 *   itself, so nothing is tokenised with extra special tokens (as in transformers);
 * - for each assistant message i, the text up to the end of the rendering of messages[0..i) with
 *   the generation prompt (the assistant header, e.g. `<|im_start|>assistant\n`, is context) is
 *   appended, then the text up to the end of the rendering of messages[0..i] (the turn: content and
 *   end-of-turn marker), then after the last turn the rest; each piece is tokenised as a
 *   continuation of the tokens before it (continuation.ts), so a BPE merge across a boundary
 *   never changes the tokens before it; such a merge is reported (`merged`);
 * - the turn's tokens are trained except trailing ones that decode to whitespace only (for ChatML
 *   the content and `<|im_end|>` are trained, the newline after it is not; a token such as `.\n`
 *   that straddles the end is trained);
 * - each prefix rendering must be a prefix of the whole rendering; a template for which this
 *   fails (one that renders earlier turns differently once later ones exist) is reported as a bad
 *   record with a clear reason rather than masked approximately.
 */
import { DataError } from '../errors.ts';
import type { ChatMessage } from '../io/chat-template.ts';
import type { Tokenizer } from '../io/tokenizer.ts';
import { continuationIds } from './continuation.ts';
import type { MessagesRecord } from './jsonl.ts';

/** Half-open token range [start, end) that is trained. */
export type TokenSpan = readonly [start: number, end: number];

export interface ChatTokens {
  ids: number[];
  /** Token spans of the assistant turns (empty when the conversation has none, or without `spans`). */
  assistantSpans: TokenSpan[];
  /** Per assistant span: the index of its message in `record.messages`. */
  assistantMessages: number[];
  /** The tokenizer merged text across a turn boundary (the pieces were tokenised separately). */
  merged: boolean;
  /** When merged: the first token of the joint encoding across a boundary. */
  mergedToken?: string;
}

export interface ChatRenderOptions {
  /** A named template of the tokenizer or a template source (default: its default template). */
  chatTemplate?: string;
  /** Return the assistant spans (false: only the ids, for `trainOn: 'all'`). */
  spans: boolean;
}

/**
 * Throws a DataError naming `record` unless `tokenizer` can render conversations (it has a chat
 * template, or `chatTemplate` gives one).
 */
export function requireChatTemplate(
  tokenizer: Tokenizer,
  record: MessagesRecord,
  chatTemplate: string | undefined,
): void {
  if (chatTemplate !== undefined || tokenizer.chatTemplate !== null) return;
  const named = Object.keys(tokenizer.chatTemplates);
  throw new DataError(
    record.file,
    record.line,
    `a {messages} record needs a chat template, but the tokenizer of ${tokenizer.origin} has ${
      named.length > 0
        ? `no default one (named: ${named.join(', ')}; pick one with the chatTemplate option)`
        : 'none'
    }; use a tokenizer with a chat template, or write the data as {prompt, completion} records`,
  );
}

/**
 * Render and tokenise the conversation of `record` and locate its assistant turns (see the file
 * comment). Throws a DataError naming the record when the template fails or is not prefix-stable.
 */
export function tokenizeChat(
  tokenizer: Tokenizer,
  record: MessagesRecord,
  options: ChatRenderOptions,
): ChatTokens {
  requireChatTemplate(tokenizer, record, options.chatTemplate);
  const fail = (reason: string): never => {
    throw new DataError(record.file, record.line, reason);
  };
  const render = (messages: readonly ChatMessage[], addGenerationPrompt: boolean): string => {
    try {
      return tokenizer.applyChatTemplate(messages, {
        addGenerationPrompt,
        chatTemplate: options.chatTemplate,
      });
    } catch (error) {
      const message = error instanceof Error ? error.message : String(error);
      return fail(`the chat template cannot render this conversation: ${message.replace(/\s*\n\s*/g, ' ')}`);
    }
  };
  const full = render(record.messages, false);
  const ids: number[] = [];
  let covered = 0;
  let merged = false;
  let mergedToken: string | undefined;
  /** Append the tokens of full[covered..end) as a continuation of what `ids` holds; their start index. */
  const append = (end: number): number => {
    const from = ids.length;
    if (end <= covered) return from;
    const next = continuationIds(tokenizer, full.slice(0, covered), ids, full.slice(covered, end));
    if (next.merged && !merged) mergedToken = next.mergedToken;
    merged ||= next.merged;
    ids.push(...next.ids);
    covered = end;
    return from;
  };
  const assistantSpans: TokenSpan[] = [];
  const assistantMessages: number[] = [];
  record.messages.forEach((message, index) => {
    if (message.role !== 'assistant') return;
    const before = render(record.messages.slice(0, index), true);
    const through = render(record.messages.slice(0, index + 1), false);
    const notPrefix = (what: string): string =>
      `the chat template is not prefix-stable: the rendering of ${what} is not a prefix of the rendering of the ` +
      `whole conversation, so the assistant tokens cannot be located; write the data as {prompt, completion} records`;
    if (!full.startsWith(before)) fail(notPrefix(`messages[0..${index}) with the generation prompt`));
    if (!full.startsWith(through)) fail(notPrefix(`messages[0..${index}]`));
    if (before.length < covered) fail(notPrefix(`messages[0..${index}) with the generation prompt`));
    // The context as inference encodes it (`encodeChat` with the generation prompt), then the turn.
    append(before.length);
    const start = append(through.length);
    let end = ids.length;
    // Trailing whitespace-only tokens (the newline after <|im_end|>) are context, not response.
    while (end > start && tokenizer.decode([ids[end - 1]!]).trim() === '') end--;
    if (options.spans && end > start) {
      assistantSpans.push([start, end]);
      assistantMessages.push(index);
    }
  });
  append(full.length);
  return { ids, assistantSpans, assistantMessages, merged, mergedToken };
}
