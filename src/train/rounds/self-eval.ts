/**
 * The policy's self-evaluation of a step, as the released MCTS-DPO code computes it
 * (github.com/YuxiXie/MCTS-DPO, mcts_rl/algorithms/mcts/mcts/search_config.py `get_values`, prompt
 * HINTED_EVAL_PROMPT of mcts_rl/configs/constants.py): the policy is shown the question, the gold
 * answer as the example answer and the answer so far, asked whether the proposed solution is heading
 * the right way with "(A) incorrect (B) correct", and decodes 4 tokens greedily after "The answer
 * is"; the confidence is the probability mass of the "correct" tokens (B, correct, Correct) at the
 * first decoded token that is an option word (0 when none is, or when the prompt does not fit the
 * model). The search mixes it into a node's value (mcts.ts, `selfEvalTerm`).
 */
import { AttuneError } from '../../errors.ts';
import type { Tokenizer } from '../../io/index.ts';
import { generateBatch, type LoadedModel, nextTokenLogProbs } from '../../models/index.ts';

/**
 * The released code's hinted evaluation prompt: `question` (the round prompt without a trailing
 * answer cue line such as "A:"), `gold` the gold answer (our prompts carry no worked solution, so
 * the example answer is "The answer is <gold>.", as the released code writes it without one), and
 * `proposed` the answer so far (its steps after one space each, as the search's prefixes).
 */
export function selfEvalPrompt(question: string, gold: string, proposed: string): string {
  const lines = question.trimEnd().split('\n');
  // the released code cuts the prompt before its assistant cue ("ANSWER:"); ours end in a cue line like "A:"
  if (lines.length > 1 && /^\s*\S{1,12}:\s*$/.test(lines.at(-1)!)) lines.pop();
  return [
    `${lines.join('\n')}\nEXAMPLE ANSWER: The answer is ${gold}.`,
    '',
    `PROPOSED SOLUTION:${proposed}`,
    '',
    'QUESTION: Evaluate if the proposed solution is logically heading in the correct direction based on the example answer.',
    'Answer Choices:\n(A) incorrect\n(B) correct',
    '',
    'ANSWER: The answer is',
  ].join('\n');
}

/** The decoded tokens that count as the option the model answers with (first pass, then second). */
const OPTION_WORDS = [
  ['A', 'B', 'correct', 'wrong', 'incorrect'],
  ['Cor', 'In', 'A', 'B', 'correct', 'wrong', 'incorrect'],
] as const;

/** Texts whose (last) token is a "correct" answer, as the released code lists them. */
const CORRECT_TEXTS = ['B', 'correct', 'Correct', '(B', ' B', ' correct', ' Correct'];

/**
 * The token ids that say "correct": the last token of each of CORRECT_TEXTS, kept only when that
 * token is itself the word (B, correct, Correct): a word the tokenizer spells in pieces has no
 * single token to answer with, and its last piece is not an answer.
 */
export function correctTokenIds(tokenizer: Tokenizer): number[] {
  const ids = new Set<number>();
  for (const text of CORRECT_TEXTS) {
    const id = tokenizer.encodeContinuation(text).at(-1);
    if (id !== undefined && ['B', 'correct', 'Correct'].includes(tokenizer.decode([id]).trim())) ids.add(id);
  }
  if (ids.size === 0)
    throw new AttuneError(
      'mcts self-evaluation: the tokenizer has no token for "B" or "correct" (expected at least one, found none)',
    );
  return [...ids];
}

/** Index of the first decoded token that is an option word (the released code's two passes), or -1. */
export function optionPosition(tokenTexts: readonly string[]): number {
  for (const words of OPTION_WORDS) {
    const at = tokenTexts.findIndex((t) => (words as readonly string[]).includes(t.trim()));
    if (at >= 0) return at;
  }
  return -1;
}

/** Confidence of each eval prompt (see the file comment): p of the "correct" ids at the option position. */
export function selfEvalConfidences(policy: LoadedModel, prompts: readonly string[]): number[] {
  const tokenizer = policy.tokenizer;
  if (!tokenizer) throw new AttuneError('mcts self-evaluation: the policy has no tokenizer');
  const correct = correctTokenIds(tokenizer);
  const limit = policy.model.config.maxPositionEmbeddings;
  const encoded = prompts.map((p) => tokenizer.encode(p));
  // the released code scores a prompt that does not fit the model as 0 ('N/A')
  const fits = encoded.map((ids) => ids.length + 4 <= limit);
  const asked = encoded.filter((_, i) => fits[i]).map((promptIds) => ({ promptIds }));
  const decoded =
    asked.length === 0
      ? []
      : generateBatch(policy.model, asked, {
          temperature: 0,
          maxNewTokens: 4,
          eosTokenIds: policy.eosTokenIds,
        });
  let next = 0;
  return encoded.map((ids, i) => {
    if (!fits[i]) return 0;
    const generated = decoded[next++]!.generatedIds;
    const at = optionPosition(generated.map((id) => tokenizer.decode([id])));
    if (at < 0) return 0;
    const logp = nextTokenLogProbs(policy.model, [...ids, ...generated.slice(0, at)]);
    return correct.reduce((s, id) => s + Math.exp(logp[id]!), 0);
  });
}
