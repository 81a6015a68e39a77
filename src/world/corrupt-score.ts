/**
 * Scoring a curation of a noisy set against its ground truth: how many corrupted records it caught
 * (removed or corrected), how many clean ones it lost, and how many corrections restored the
 * world's answer. Malformed lines are counted apart (any reader catches them).
 */
import type { CurationAction } from '../uq/clear.ts';
import { auroc } from '../uq/metrics/ranking.ts';
import type { CorruptionTruth } from './corrupt.ts';

/** One curation decision, by input line. */
export interface LineDecision {
  line: number;
  action: CurationAction;
  /** The corrected response (action 'correct'). */
  corrected?: string;
  /** The response's confidence (null or absent when it was not judged). */
  confidence?: number | null;
}

/** How a curation did on a noisy set. */
export interface CurationScore {
  clean: number;
  corrupted: number;
  malformed: number;
  /** Corrupted records removed or corrected. */
  caught: number;
  /** Clean records removed or corrected (to anything). */
  cleanTouched: number;
  /** Corrected records whose new answer is the world's answer. */
  correctionsRight: number;
  corrections: number;
  /** Malformed lines removed. */
  malformedRemoved: number;
  /** caught / (caught + cleanTouched); null when nothing was touched. */
  precision: number | null;
  /** caught / corrupted; null without corrupted records. */
  recall: number | null;
  /** Records left wrong after curation (corrupted kept, or corrected to a wrong answer) over the records left. */
  residualNoise: number | null;
  /**
   * AUROC of 1 - confidence for telling corrupted from clean records (judged ones only), whatever
   * the cut: 0.5 is chance. Null without confidences or without both kinds.
   */
  detectionAuroc: number | null;
}

/**
 * Score `decisions` (one per line of the noisy file; a line without one counts as kept) against
 * `truth`.
 */
export function scoreCuration(
  truth: readonly CorruptionTruth[],
  decisions: readonly LineDecision[],
): CurationScore {
  const byLine = new Map(decisions.map((d) => [d.line, d]));
  let clean = 0;
  let corrupted = 0;
  let malformed = 0;
  let caught = 0;
  let cleanTouched = 0;
  let correctionsRight = 0;
  let corrections = 0;
  let malformedRemoved = 0;
  let left = 0;
  let leftWrong = 0;
  const doubt: number[] = [];
  const isCorrupted: boolean[] = [];
  for (const t of truth) {
    const d = byLine.get(t.line) ?? { line: t.line, action: 'keep' as const };
    if (t.status === 'malformed') {
      malformed++;
      if (d.action === 'remove') malformedRemoved++;
      continue;
    }
    if (t.status === 'clean') clean++;
    else corrupted++;
    if (typeof d.confidence === 'number') {
      doubt.push(1 - d.confidence);
      isCorrupted.push(t.status === 'corrupted');
    }
    const touched = d.action !== 'keep';
    if (t.status === 'corrupted' && touched) caught++;
    if (t.status === 'clean' && touched) cleanTouched++;
    if (d.action === 'correct') {
      corrections++;
      if (d.corrected?.trim() === t.answer) correctionsRight++;
    }
    if (d.action === 'remove') continue;
    left++;
    const answerLeft =
      d.action === 'correct' ? d.corrected?.trim() : t.status === 'clean' ? t.answer : t.given;
    if (answerLeft !== t.answer) leftWrong++;
  }
  return {
    clean,
    corrupted,
    malformed,
    caught,
    cleanTouched,
    correctionsRight,
    corrections,
    malformedRemoved,
    precision: caught + cleanTouched > 0 ? caught / (caught + cleanTouched) : null,
    recall: corrupted > 0 ? caught / corrupted : null,
    residualNoise: left > 0 ? leftWrong / left : null,
    detectionAuroc: auroc(doubt, isCorrupted).value,
  };
}
