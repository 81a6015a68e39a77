/**
 * Grading a generated answer against a reference. Texts are normalised as in SQuAD's evaluation:
 * lower-cased, punctuation removed, the articles a/an/the removed, whitespace collapsed.
 *   exact     normalised answer == normalised reference
 *   contains  the normalised reference occurs in the normalised answer (as whole words)
 *   rougeL    ROUGE-L F1 over normalised words >= 0.5
 */
export type GradeMetric = 'exact' | 'contains' | 'rougeL';

export const GRADE_METRICS: readonly GradeMetric[] = ['exact', 'contains', 'rougeL'];

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

/** Whether `answer` is correct for `reference` under `metric`. */
export function grade(answer: string, reference: string, metric: GradeMetric): boolean {
  const a = normalizeAnswer(answer);
  const r = normalizeAnswer(reference);
  switch (metric) {
    case 'exact':
      return a === r;
    case 'contains':
      return r.length > 0 && ` ${a} `.includes(` ${r} `);
    case 'rougeL':
      return rougeL(answer, reference) >= 0.5;
  }
}
