/**
 * Grading a generated answer against a reference: a registry of graders (`--metric` of eval).
 * Texts are normalised as in SQuAD's evaluation: lower-cased, punctuation removed, the articles
 * a/an/the removed, whitespace collapsed.
 *   exact     normalised answer == normalised reference
 *   contains  the normalised reference occurs in the normalised answer (as whole words)
 *   rougeL    ROUGE-L F1 over normalised words >= 0.5
 * A new grader is one `registerGrader` call (here or in a file of its own).
 */
import { z } from 'zod';
import { Registry, type RegistryEntry } from '../config/registry.ts';

/** A registered grader. */
export interface Grader extends RegistryEntry {
  /** Whether `answer` is correct for `reference`. */
  isCorrect(answer: string, reference: string): boolean;
}

/** Every grader `--metric` can name. */
export const graders = new Registry<Grader>('grader', 'metric');

/** Register a grader (no options today). */
export function registerGrader(grader: Omit<Grader, 'options'>): void {
  graders.register({ ...grader, options: z.object({}) });
}

/** A grader name ('exact', 'contains', 'rougeL', or a plug-in's). */
export type GradeMetric = string;

/** SQuAD-style normalisation. */
export function normalizeAnswer(text: string): string {
  return text
    .toLowerCase()
    .replace(/[\p{P}\p{S}]/gu, ' ')
    .replace(/\b(a|an|the)\b/g, ' ')
    .replace(/\s+/g, ' ')
    .trim();
}

/** Length of the longest common subsequence of two word lists. */
function lcs(a: readonly string[], b: readonly string[]): number {
  const row = new Array<number>(b.length + 1).fill(0);
  for (let i = 1; i <= a.length; i++) {
    let prev = 0;
    for (let j = 1; j <= b.length; j++) {
      const cur = row[j]!;
      row[j] = a[i - 1] === b[j - 1] ? prev + 1 : Math.max(row[j]!, row[j - 1]!);
      prev = cur;
    }
  }
  return row[b.length]!;
}

/** ROUGE-L F1 of two texts over normalised words (0 when either is empty). */
export function rougeL(answer: string, reference: string): number {
  const a = normalizeAnswer(answer).split(' ').filter(Boolean);
  const r = normalizeAnswer(reference).split(' ').filter(Boolean);
  if (a.length === 0 || r.length === 0) return 0;
  const l = lcs(a, r);
  if (l === 0) return 0;
  const p = l / a.length;
  const rec = l / r.length;
  return (2 * p * rec) / (p + rec);
}

registerGrader({
  name: 'exact',
  description: 'normalised answer equals the normalised reference',
  isCorrect: (answer, reference) => normalizeAnswer(answer) === normalizeAnswer(reference),
});
registerGrader({
  name: 'contains',
  description: 'the normalised reference occurs in the normalised answer as whole words',
  isCorrect(answer, reference) {
    const r = normalizeAnswer(reference);
    return r.length > 0 && ` ${normalizeAnswer(answer)} `.includes(` ${r} `);
  },
});
registerGrader({
  name: 'rougeL',
  description: 'ROUGE-L F1 over normalised words >= 0.5',
  isCorrect: (answer, reference) => rougeL(answer, reference) >= 0.5,
});

/** The registered grader names, in registration order. */
export const GRADE_METRICS: readonly string[] = graders.list().map((g) => g.name);

/** Whether `answer` is correct for `reference` under the grader `metric`. */
export function grade(answer: string, reference: string, metric: GradeMetric): boolean {
  return graders.get(metric).isCorrect(answer, reference);
}
