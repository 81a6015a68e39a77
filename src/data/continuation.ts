/**
 * Tokens of a text that follows a context (a completion after its prompt, an assistant turn after
 * the conversation so far), so that the context's tokens are exactly those inference encodes for
 * the context alone and the text's tokens decode to the text.
 *
 * Tokenising `context + text` as one string is not enough: a BPE merge across the boundary (on
 * tinystories-656k, "...found" + " a small" gives the token `found▁a▁`, while the prompt alone
 * ends `f` `ound`) trains the model on a context it never sees at inference. So the joint encoding
 * is used only when it starts with the context's own tokens; otherwise the text is encoded on its
 * own as a continuation (no special tokens, no dummy prefix: `Tokenizer.encodeContinuation`) and
 * the record is counted as merged across the boundary.
 */
import type { Tokenizer } from '../io/tokenizer.ts';

/** The tokens of a text after a context, and whether the tokenizer merged across the boundary. */
export interface Continuation {
  ids: number[];
  /** The joint encoding did not start with the context's tokens (the text was encoded on its own). */
  merged: boolean;
  /** When merged: the first token of the joint encoding that differs, e.g. `found▁a▁`. */
  mergedToken?: string;
}

/** Length of the longest common prefix of two token sequences. */
function commonPrefixLength(a: readonly number[], b: readonly number[]): number {
  const n = Math.min(a.length, b.length);
  let i = 0;
  while (i < n && a[i] === b[i]) i++;
  return i;
}

/**
 * Tokens of `text` following `context`, whose tokens (without special tokens) are `contextIds`:
 * what `encode(context + text)` adds after `contextIds` when it starts with them, else
 * `encodeContinuation(text)` (merged). Both ways `decode([...contextIds, ...ids])` reads
 * `context + text`.
 */
export function continuationIds(
  tokenizer: Tokenizer,
  context: string,
  contextIds: readonly number[],
  text: string,
): Continuation {
  if (text === '') return { ids: [], merged: false };
  const joint = tokenizer.encode(context + text, { addSpecialTokens: false });
  const agree = commonPrefixLength(joint, contextIds);
  if (agree === contextIds.length) return { ids: joint.slice(agree), merged: false };
  const mergedToken = joint[agree] === undefined ? undefined : tokenizer.idToToken(joint[agree]);
  return { ids: tokenizer.encodeContinuation(text), merged: true, mergedToken };
}
