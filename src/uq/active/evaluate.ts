/** Exact-match accuracy of a model's greedy one-line answers on `{prompt, answer}` records (a round's eval). */
import { graders } from '../grade.ts';
import type { EvalRecord } from '../predict.ts';
import { greedyAnswers, type ScoringModel } from './score.ts';

/** Fraction of `records` whose greedy answer matches the reference under the `exact` grader. */
export function greedyAccuracy(
  m: ScoringModel,
  records: readonly EvalRecord[],
  maxNewTokens: number,
): number {
  const items = records.map((r, i) => {
    if (typeof r.prompt !== 'string') throw new Error(`active eval: record ${i + 1} has no prompt`);
    return { id: String(i), prompt: r.prompt };
  });
  const answers = greedyAnswers(m, items, maxNewTokens);
  const exact = graders.get('exact');
  let right = 0;
  answers.forEach((a, i) => {
    if (exact.isCorrect(m.tokenizer.decode(a.answerIds), records[i]!.answer)) right++;
  });
  return records.length === 0 ? 0 : right / records.length;
}
