/**
 * CLEAR curation decisions ("Automated Data Curation for Robust Language Model Fine-Tuning"): from
 * the BSDetector confidence of each record's response and of the model's own answer,
 *
 *   correct  the model's answer differs from the response, its confidence exceeds the correction
 *            threshold (0.8) and the response's confidence: the response becomes the model's answer
 *   remove   otherwise, when the response's confidence is below the cut (the median confidence of
 *            the judged records, or a given threshold)
 *   keep     otherwise
 *
 * Correction is checked first: a record the model confidently rectifies is kept, corrected, rather
 * than thrown away (the paper's auto-correct before auto-filter). Records that cannot be judged
 * (malformed, or with nothing to judge) get their action from the caller.
 */
import { UsageError } from '../errors.ts';
import { normalisedAgreement } from './bsdetector.ts';

/** What curation does with a record. */
export type CurationAction = 'keep' | 'remove' | 'correct';

/** Where the filter cuts: the median of the judged confidences, or a fixed threshold. */
export type CurationFilter = 'median' | number;

/** Settings of the decisions. */
export interface ClearOptions {
  /** Remove responses whose confidence is below this cut (default 'median'). */
  filter?: CurationFilter;
  /** Correct only when the model's answer's confidence exceeds this (default 0.8). */
  correctThreshold?: number;
}

/** The measurements a decision is made from. */
export interface JudgedResponse {
  response: string;
  confidence: number;
  modelAnswer: string;
  modelConfidence: number;
}

/** A decision and why it was made. */
export interface CurationDecision {
  action: CurationAction;
  why: string;
  /** The corrected response (action 'correct' only): the model's answer. */
  corrected?: string;
}

/** The default correction threshold of METHODS.md. */
export const CLEAR_CORRECT_THRESHOLD = 0.8;

/** The median of `values` (mean of the middle two for an even count); NaN when empty. */
export function median(values: readonly number[]): number {
  if (values.length === 0) return Number.NaN;
  const sorted = [...values].sort((a, b) => a - b);
  const mid = sorted.length >> 1;
  return sorted.length % 2 === 1 ? sorted[mid]! : (sorted[mid - 1]! + sorted[mid]!) / 2;
}

/** The cut of `filter` over `confidences`. */
export function filterCut(filter: CurationFilter, confidences: readonly number[]): number {
  if (filter === 'median') return median(confidences);
  if (!Number.isFinite(filter) || filter < 0 || filter > 1)
    throw new UsageError(`CLEAR: the filter threshold must be 'median' or a number in 0..1, found ${filter}`);
  return filter;
}

const fmt = (x: number): string => x.toFixed(3);

/** Decide every judged record (see the file comment); returns the decisions and the cut used. */
export function decideCuration(
  judged: readonly JudgedResponse[],
  options: ClearOptions = {},
): { decisions: CurationDecision[]; cut: number } {
  const threshold = options.correctThreshold ?? CLEAR_CORRECT_THRESHOLD;
  if (!Number.isFinite(threshold) || threshold < 0 || threshold > 1)
    throw new UsageError(`CLEAR: the correction threshold must be in 0..1, found ${threshold}`);
  const cut = filterCut(
    options.filter ?? 'median',
    judged.map((j) => j.confidence),
  );
  const decisions = judged.map((j): CurationDecision => {
    const differs = !normalisedAgreement(j.modelAnswer, j.response) && j.modelAnswer.trim() !== '';
    if (differs && j.modelConfidence > threshold && j.modelConfidence > j.confidence) {
      return {
        action: 'correct',
        why: `model answer '${j.modelAnswer.trim()}' has confidence ${fmt(j.modelConfidence)} > ${fmt(threshold)} and > the response's ${fmt(j.confidence)}`,
        corrected: j.modelAnswer.trim(),
      };
    }
    if (j.confidence < cut)
      return { action: 'remove', why: `confidence ${fmt(j.confidence)} < cut ${fmt(cut)}` };
    return { action: 'keep', why: `confidence ${fmt(j.confidence)} >= cut ${fmt(cut)}` };
  });
  return { decisions, cut };
}
