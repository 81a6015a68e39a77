/**
 * Every metric of `attune uq metrics` for one set of predictions: binary correctness plus either an
 * uncertainty (higher = less sure) or a confidence in [0, 1].
 */
import './builtin.ts';
import { DEFAULT_BINS } from './calibration.ts';
import { binaryValues, probabilityValues } from './inputs.ts';
import { uqMetrics } from './registry.ts';
import { type MetricResult, UqInputError } from './result.ts';

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

/** The registered metric names, in the order they are printed (the registry's; plug-ins last). */
export function predictionMetricNames(): string[] {
  return uqMetrics.list().map((m) => m.name);
}

/** The built-in metric names (computed from the registry when this module loads). */
export const PREDICTION_METRIC_NAMES: readonly string[] = predictionMetricNames();

/** A metric name. */
export type PredictionMetricName = string;

/** The built-in metrics, typed for direct access (`m.auroc`); plug-ins are in `values`. */
export type BuiltinMetricName = 'auroc' | 'aupr' | 'prr' | 'aurc' | 'auarc' | 'ece' | 'mce' | 'brier' | 'nll';

/**
 * The metrics (null where undefined), the number of predictions, the bin count and, per null
 * metric, the reason in `notes`. AUROC and AUPR detect wrong answers (positive = wrong, score =
 * uncertainty). `values` holds every registered metric; the built-ins are also top-level fields.
 */
export type PredictionMetrics = {
  n: number;
  bins: number;
  score: 'uncertainty' | 'confidence';
  values: Record<string, number | null>;
  notes: Partial<Record<string, string>>;
} & Record<BuiltinMetricName, number | null>;

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
  const notes: Partial<Record<PredictionMetricName, string>> = {};
  const values = {} as Record<PredictionMetricName, number | null>;
  for (const metric of uqMetrics.list()) {
    const r: MetricResult =
      metric.needs === 'calibration' && confidence === null
        ? { value: null, reason: NEEDS_CONFIDENCE }
        : metric.compute({ correct, uncertainty, confidence, bins });
    values[metric.name] = r.value;
    if (r.value === null) notes[metric.name] = r.reason;
  }
  return {
    ...(values as Record<BuiltinMetricName, number | null>),
    n: correct.length,
    bins,
    score: confidence ? 'confidence' : 'uncertainty',
    values,
    notes,
  };
}
