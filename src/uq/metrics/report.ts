/**
 * Every metric of `attune uq metrics` for one set of predictions: binary correctness plus either an
 * uncertainty (higher = less sure) or a confidence in [0, 1].
 */
import { brier, DEFAULT_BINS, ece, mce, nll } from './calibration.ts';
import { binaryValues, probabilityValues } from './inputs.ts';
import { aupr, auroc } from './ranking.ts';
import { type MetricResult, UqInputError } from './result.ts';
import { auarc, aurc, prr } from './selective.ts';

/** Predictions to evaluate: give exactly one of `uncertainty` and `confidence`. */
export interface PredictionMetricsInput {
  /** Whether each answer was correct. */
  correct: ArrayLike<boolean | number>;
  /** Uncertainty per answer (higher = less sure): ranking metrics only. */
  uncertainty?: ArrayLike<number>;
  /** Confidence per answer in [0, 1]: ranking metrics on 1 - confidence, plus ECE, MCE, Brier, NLL. */
  confidence?: ArrayLike<number>;
  /** Equal-width bins for ECE and MCE; default 15. */
  bins?: number;
}

/** The metric names of a PredictionMetrics object, in the order they are printed. */
export const PREDICTION_METRIC_NAMES = [
  'auroc',
  'aupr',
  'prr',
  'aurc',
  'auarc',
  'ece',
  'mce',
  'brier',
  'nll',
] as const;

/** One of PREDICTION_METRIC_NAMES. */
export type PredictionMetricName = (typeof PREDICTION_METRIC_NAMES)[number];

/**
 * The metrics (null where undefined), the number of predictions, the bin count and, per null
 * metric, the reason in `notes`. AUROC and AUPR detect wrong answers (positive = wrong, score =
 * uncertainty).
 */
export type PredictionMetrics = { n: number; bins: number; score: 'uncertainty' | 'confidence' } & Record<
  PredictionMetricName,
  number | null
> & { notes: Partial<Record<PredictionMetricName, string>> };

const NEEDS_CONFIDENCE = 'needs confidences in [0, 1]; an uncertainty score is not a probability';

/**
 * Compute every metric of `attune uq metrics`. With `uncertainty`: auroc, aupr (of detecting wrong
 * answers), prr (quality = correctness), aurc, auarc; ece, mce, brier and nll are null. With
 * `confidence`: the same ranking metrics on u = 1 - confidence, plus ece and mce (equal-width bins),
 * brier and nll.
 */
export function predictionMetrics(input: PredictionMetricsInput): PredictionMetrics {
  const given = [input.uncertainty, input.confidence].filter((x) => x !== undefined).length;
  if (given !== 1)
    throw new UqInputError('predictionMetrics: give exactly one of uncertainty and confidence');
  const correct = binaryValues(input.correct, 'correct');
  const bins = input.bins ?? DEFAULT_BINS;
  const confidence =
    input.confidence === undefined ? null : probabilityValues(input.confidence, 'confidence');
  // Rank by -confidence: the same order as 1 - confidence, without rounding distinct confidences
  // near 0 into ties.
  const uncertainty = confidence ? confidence.map((c) => -c) : input.uncertainty!;
  const wrong = correct.map((c) => 1 - c);
  const results: Record<PredictionMetricName, MetricResult> = {
    auroc: auroc(uncertainty, wrong),
    aupr: aupr(uncertainty, wrong),
    prr: prr(uncertainty, correct),
    aurc: aurc(uncertainty, correct),
    auarc: auarc(uncertainty, correct),
    ece: confidence ? ece(confidence, correct, { bins }) : { value: null, reason: NEEDS_CONFIDENCE },
    mce: confidence ? mce(confidence, correct, { bins }) : { value: null, reason: NEEDS_CONFIDENCE },
    brier: confidence ? brier(confidence, correct) : { value: null, reason: NEEDS_CONFIDENCE },
    nll: confidence ? nll(confidence, correct) : { value: null, reason: NEEDS_CONFIDENCE },
  };
  const notes: Partial<Record<PredictionMetricName, string>> = {};
  const values = {} as Record<PredictionMetricName, number | null>;
  for (const name of PREDICTION_METRIC_NAMES) {
    const r = results[name];
    values[name] = r.value;
    if (r.value === null) notes[name] = r.reason;
  }
  return {
    n: correct.length,
    bins,
    score: confidence ? 'confidence' : 'uncertainty',
    ...values,
    notes,
  };
}
