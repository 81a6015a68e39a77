/**
 * Token spans of the assistant turns of a conversation, found by rendering it incrementally with
 * the chat template and tokenising the prefixes, so that the boundaries are those of the tokens
 * the model actually sees:
 *
 * - the conversation is rendered whole (`addGenerationPrompt: false`) and tokenised without extra
 *   special tokens (the template writes BOS itself, as in transformers);
 * - for each assistant message i, the span starts where the rendering of messages[0..i) with the
 *   generation prompt ends (the assistant header, e.g. `<|im_start|>assistant\n`, is context) and
 *   ends where the rendering of messages[0..i] ends, trailing whitespace left out (so for ChatML the
 *   content and `<|im_end|>` are trained, the newline after it is not), unless a token straddles
 *   that point: then the trailing whitespace is trained too;
 * - both prefixes must be prefixes of the whole rendering (as text), and their tokens prefixes of
 *   the whole token sequence; a template or tokenizer for which this fails (a template that renders
 *   earlier turns differently once later ones exist, or a token that straddles the boundary) is
 *   reported as a bad record with a clear reason rather than masked approximately.
 */
import { DataError } from '../errors.ts';
import type { ChatMessage } from '../io/chat-template.ts';
import type { Tokenizer } from '../io/tokenizer.ts';
import type { MessagesRecord } from './jsonl.ts';

/** Half-open token range [start, end) that is trained. */
export type TokenSpan = readonly [start: number, end: number];

export interface ChatTokens {
  ids: number[];
  /** Token spans of the assistant turns (empty when the conversation has none). */
  assistantSpans: TokenSpan[];
}

export interface ChatRenderOptions {
  /** A named template of the tokenizer or a template source (default: its default template). */
  chatTemplate?: string;
  /** Compute the assistant spans (false: only the ids, for `trainOn: 'all'`). */
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
  const encode = (text: string): number[] => tokenizer.encode(text, { addSpecialTokens: false });

  const full = render(record.messages, false);
  const ids = encode(full);
  const assistantSpans: TokenSpan[] = [];
  if (!options.spans) return { ids, assistantSpans };

  /** Tokens of `full` up to character `end` when they are a prefix of `ids`, else the first differing token. */
  const tokensUpTo = (end: number): { count: number } | { mismatchAt: number } => {
    const prefix = encode(full.slice(0, end));
    for (let i = 0; i < prefix.length; i++) if (prefix[i] !== ids[i]) return { mismatchAt: i };
    return { count: prefix.length };
  };
  /** Tokens up to the first of `ends` whose tokens are a prefix of `ids`; a DataError when none is. */
  const exactTokensUpTo = (ends: readonly number[], what: string): number => {
    let mismatchAt = 0;
    for (const end of ends) {
      const result = tokensUpTo(end);
      if ('count' in result) return result.count;
      mismatchAt = result.mismatchAt;
    }
    return fail(
      `the tokens of the conversation up to ${what} are not a prefix of the tokens of the whole conversation ` +
        `(a token straddles the boundary, at token ${mismatchAt}), so the assistant tokens cannot be masked exactly; ` +
        `write the data as {prompt, completion} records`,
    );
  };

  record.messages.forEach((message, index) => {
    if (message.role !== 'assistant') return;
    const before = render(record.messages.slice(0, index), true);
    const through = render(record.messages.slice(0, index + 1), false);
    const notPrefix = (what: string): string =>
      `the chat template is not prefix-stable: the rendering of ${what} is not a prefix of the rendering of the ` +
      `whole conversation, so the assistant tokens cannot be located; write the data as {prompt, completion} records`;
    if (!full.startsWith(before)) fail(notPrefix(`messages[0..${index}) with the generation prompt`));
    if (!full.startsWith(through)) fail(notPrefix(`messages[0..${index}]`));
    const trimmedEnd = Math.max(before.length, through.trimEnd().length);
    const start = exactTokensUpTo([before.length], `the start of messages[${index}] (assistant)`);
    const end = exactTokensUpTo(
      trimmedEnd < through.length ? [trimmedEnd, through.length] : [through.length],
      `the end of messages[${index}] (assistant)`,
    );
    if (end > start) assistantSpans.push([start, end]);
  });
  return { ids, assistantSpans };
}
