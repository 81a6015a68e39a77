/**
 * The world's arithmetic family written as steps: "What is 7 plus 5 minus 3?" answered
 * "7 plus 5 is 12. 12 minus 3 is 9. The answer is 9." — two operations (plus / minus), operands
 * 1..20, every intermediate and final result non-negative, seeded. The step delimiter is ". "
 * (`STEP_DELIMITER` ends each step). Used by step-level preference search (rounds kind `mcts`):
 * the search sees only the outcome (`gradeStepped`: is the final answer right); `checkSteps`
 * grades each step's arithmetic, for docs and tests only.
 */
import { Rng } from '../tensor/rng.ts';
import { finalAnswerOf } from '../train/rounds/rewards.ts';
import { qaPrompt } from './templates.ts';

/** What ends a step (the search splits generated text after it). */
export const STEP_DELIMITER = '.';

/** One stepped arithmetic question. */
export interface SteppedQuestion {
  /** The QA prompt ("Q: What is 7 plus 5 minus 3?\nA:"). */
  prompt: string;
  /** The final answer ("9"). */
  answer: string;
  /** The worked solution, one step per sentence. */
  solution: string;
  /** The expression ("7 plus 5 minus 3"). */
  entity: string;
}

type Op = 'plus' | 'minus';
const apply = (a: number, op: Op, b: number) => (op === 'plus' ? a + b : a - b);

/**
 * `count` distinct stepped questions drawn by `seed` (a op b op c; operands 1..20; an operand
 * that would make a result negative is redrawn).
 */
export function renderSteppedArithmetic(seed: number, count: number): SteppedQuestion[] {
  if (!Number.isInteger(count) || count < 1)
    throw new RangeError(`renderSteppedArithmetic: count: expected a positive integer, found ${count}`);
  const rng = new Rng(seed);
  const seen = new Set<string>();
  const out: SteppedQuestion[] = [];
  // 20^3 * 4 combinations; a cap keeps a too-large count from looping forever
  for (let tries = 0; out.length < count && tries < count * 50; tries++) {
    const ops: Op[] = [rng.uniform() < 0.5 ? 'plus' : 'minus', rng.uniform() < 0.5 ? 'plus' : 'minus'];
    const [a, b, c] = [1 + rng.int(20), 1 + rng.int(20), 1 + rng.int(20)];
    const first = apply(a, ops[0]!, b);
    const final = apply(first, ops[1]!, c);
    if (first < 0 || final < 0) continue;
    const entity = `${a} ${ops[0]} ${b} ${ops[1]} ${c}`;
    if (seen.has(entity)) continue;
    seen.add(entity);
    out.push({
      prompt: qaPrompt(`What is ${entity}?`),
      answer: String(final),
      solution: `${a} ${ops[0]} ${b} is ${first}. ${first} ${ops[1]} ${c} is ${final}. The answer is ${final}.`,
      entity,
    });
  }
  if (out.length < count)
    throw new RangeError(`renderSteppedArithmetic: found only ${out.length} distinct questions of ${count}`);
  return out;
}

/**
 * Split a stepped answer into its steps: each step is the text up to and including `delimiter`
 * (trimmed); text after the last delimiter is a final, unterminated step. Empty steps are dropped.
 */
export function splitSteps(text: string, delimiter = STEP_DELIMITER): string[] {
  if (delimiter === '') throw new RangeError('splitSteps: the delimiter must not be empty');
  const steps: string[] = [];
  let start = 0;
  for (let at = text.indexOf(delimiter); at >= 0; at = text.indexOf(delimiter, start)) {
    steps.push(text.slice(start, at + delimiter.length).trim());
    start = at + delimiter.length;
  }
  steps.push(text.slice(start).trim());
  return steps.filter((s) => s !== '' && s !== delimiter);
}

/** The outcome signal: whether the response's final answer (after the last "answer is") equals the question's. */
export function gradeStepped(question: Pick<SteppedQuestion, 'answer'>, response: string): boolean {
  return finalAnswerOf(response) === question.answer;
}

/**
 * Per-step arithmetic checks (docs and tests only; the search never sees them): each step of the
 * form "X plus|minus Y is Z." is true when Z = X op Y; any other step (e.g. "The answer is 9.")
 * is null (not checkable).
 */
export function checkSteps(response: string): (boolean | null)[] {
  return splitSteps(response.split('\n')[0]!).map((step) => {
    const m = /^(\d+) (plus|minus) (\d+) is (-?\d+)\.?$/.exec(step);
    if (!m) return null;
    return apply(Number(m[1]), m[2] as Op, Number(m[3])) === Number(m[4]);
  });
}

/** SFT records teaching the stepped format: `{prompt, completion: " " + solution}`. */
export function steppedSftRecords(
  questions: readonly SteppedQuestion[],
): { prompt: string; completion: string }[] {
  return questions.map((q) => ({ prompt: q.prompt, completion: ` ${q.solution}` }));
}
