/**
 * The summary `attune eval` reports for a set of graded predictions: accuracy; for every score
 * (an uncertainty) the AUROC and AUPR of detecting wrong answers (positive = wrong), PRR and AURC;
 * for the confidence (exp mean log-prob, or a calibrator's output) ECE, MCE, Brier and NLL; with a
 * calibrator, the same of the raw confidence under `uncalibrated`.
 */
import { predictionMetrics } from './metrics/report.ts';
import type { Prediction } from './predict.ts';

export interface ScoreSummary {
  auroc: number | null;
  aupr: number | null;
  prr: number | null;
  aurc: number | null;
}

export interface EvalSummary {
  n: number;
  accuracy: number | null;
  /** Detection quality of each uncertainty score. */
  scores: Record<string, ScoreSummary>;
  /** Calibration of the confidence. */
  confidence: {
    ece: number | null;
    mce: number | null;
    brier: number | null;
    nll: number | null;
    auroc: number | null;
    bins: number;
  };
  /**
   * Per score, how many predictions have no value (null / NaN, e.g. an unparseable verbalised
   * confidence); that score's metrics are over the others. Only scores with some missing appear.
   */
  missing?: Record<string, number>;
  /** Why a metric is null (keyed `score.metric`). */
  notes: Record<string, string>;
  /** With a calibrator: the same calibration metrics of the raw confidence. */
  uncalibrated?: { confidence: EvalSummary['confidence'] };
}

function confidenceMetrics(
  correct: boolean[],
  confidence: number[],
  bins: number | undefined,
  notes: Record<string, string>,
  prefix: string,
): EvalSummary['confidence'] {
  const c = predictionMetrics({ correct, confidence, bins });
  for (const [k, v] of Object.entries(c.notes)) if (v !== undefined) notes[`${prefix}.${k}`] = v;
  return { ece: c.ece, mce: c.mce, brier: c.brier, nll: c.nll, auroc: c.auroc, bins: c.bins };
}

/** Summarise graded predictions (all share the same score names). */
export function summarizePredictions(
  predictions: readonly Prediction[],
  options: { bins?: number } = {},
): EvalSummary {
  const n = predictions.length;
  const correct = predictions.map((p) => p.correct);
  const notes: Record<string, string> = {};
  const scores: Record<string, ScoreSummary> = {};
  const names = n > 0 ? Object.keys(predictions[0]!.scores) : [];
  const missing: Record<string, number> = {};
  for (const name of names) {
    const kept = predictions.filter((p) => Number.isFinite(p.scores[name]));
    if (kept.length < n) missing[name] = n - kept.length;
    const m = predictionMetrics({
      correct: kept.map((p) => p.correct),
      uncertainty: kept.map((p) => p.scores[name]!),
    });
    scores[name] = { auroc: m.auroc, aupr: m.aupr, prr: m.prr, aurc: m.aurc };
    for (const [k, v] of Object.entries(m.notes))
      if (v !== undefined && k in scores[name]!) notes[`${name}.${k}`] = v;
  }
  const confidence = confidenceMetrics(
    correct,
    predictions.map((p) => p.confidence),
    options.bins,
    notes,
    'confidence',
  );
  const calibrated = n > 0 && predictions.every((p) => p.uncalibratedConfidence !== undefined);
  return {
    n,
    accuracy: n > 0 ? correct.filter(Boolean).length / n : null,
    scores,
    confidence,
    ...(Object.keys(missing).length > 0 ? { missing } : {}),
    notes,
    ...(calibrated
      ? {
          uncalibrated: {
            confidence: confidenceMetrics(
              correct,
              predictions.map((p) => p.uncalibratedConfidence!),
              options.bins,
              notes,
              'uncalibrated.confidence',
            ),
          },
        }
      : {}),
  };
}
