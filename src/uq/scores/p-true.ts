/**
 * P(True) (Kadavath et al. 2022, "Language Models (Mostly) Know What They Know"; LM-Polygraph's
 * PTrue with its PromptCalculator): the model reads its own answer in
 *   Question: {q}\n Possible answer:{a}\n Is the possible answer:\n (A) True\n (B) False\n The possible answer is:
 * and the score is -log p("True") of the next token (one extra forward pass; a chat record's
 * prompt is sent as one user message through the chat template). LM-Polygraph reads the raw
 * logit of the token; the log-softmax used here is the log-probability it names. Where the
 * tokenizer splits "True" into several tokens (LM-Polygraph refuses such a tokenizer), the score is
 * -log p of the whole continuation: the sum over its tokens, teacher-forced.
 */
import { UsageError } from '../../errors.ts';
import type { Tokenizer } from '../../io/index.ts';
import { fromArray, noGrad, scope, slice } from '../../tensor/index.ts';
import { type ExtraPassContext, registerExtraPassScore } from './registry.ts';

/** The P(True) prompt of question `q` and answer `a` (LM-Polygraph's text, spaces included). */
export function pTruePrompt(question: string, answer: string): string {
  return `Question: ${question}\n Possible answer:${answer}\n Is the possible answer:\n (A) True\n (B) False\n The possible answer is:`;
}

/** The token ids of "True" as a continuation (one token for most BPE vocabularies). */
export function trueTokenIds(tokenizer: Tokenizer): number[] {
  const ids = tokenizer.encodeContinuation('True');
  if (ids.length === 0) throw new UsageError('p_true: the tokenizer encodes "True" as no tokens');
  return ids;
}

/** -log softmax(logits)[tokenId]: the uncertainty of P(True) from the next-token logits. */
export function pTrueFromLogits(logits: ArrayLike<number>, tokenId: number): number {
  let max = -Infinity;
  for (let i = 0; i < logits.length; i++) if (logits[i]! > max) max = logits[i]!;
  let sum = 0;
  for (let i = 0; i < logits.length; i++) sum += Math.exp(logits[i]! - max);
  return -(logits[tokenId]! - max - Math.log(sum));
}

/** -log p(`continuation` | `promptIds`): the sum of pTrueFromLogits over its tokens (one forward pass). */
export function continuationNll(
  ctx: Pick<ExtraPassContext, 'model'>,
  promptIds: readonly number[],
  continuation: readonly number[],
): number {
  const ids = [...promptIds, ...continuation];
  const P = promptIds.length;
  const V = ctx.model.config.vocabSize;
  const logits = noGrad(() =>
    scope(() => {
      const hidden = ctx.model.forwardHidden(
        fromArray(Int32Array.from(ids), [1, ids.length], { dtype: 'i32' }),
      );
      // the positions predicting each continuation token: P - 1 .. T - 2
      const rows = ctx.model.logits(slice(hidden, 1, P - 1, ids.length - 1));
      return Float64Array.from(rows.data as Float32Array);
    }),
  );
  return continuation.reduce((s, id, i) => s + pTrueFromLogits(logits.subarray(i * V, (i + 1) * V), id), 0);
}

registerExtraPassScore({
  name: 'p_true',
  description:
    '-log p("True") after "Question: q / Possible answer: a / Is the possible answer: (A) True (B) False / The possible answer is:" (one extra pass)',
  computeExtra(ctx) {
    const text = pTruePrompt(ctx.question, ctx.answer);
    const ids = ctx.messages
      ? ctx.tokenizer.encodeChat([{ role: 'user', content: text }], {
          addGenerationPrompt: true,
          chatTemplate: ctx.chatTemplate,
        })
      : ctx.tokenizer.encode(text);
    return continuationNll(ctx, ids, trueTokenIds(ctx.tokenizer));
  },
});
