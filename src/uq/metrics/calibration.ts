/**
 * Calibration metrics of confidences c in [0, 1] against binary correctness y: ECE and MCE over
 * bins (equal-width by default, 15 bins; equal-mass as an option), Brier score and NLL, and the
 * data of a reliability diagram.
 */
import { ascendingOrder, binaryValues, checkSameLength, probabilityValues } from './inputs.ts';
import {
  EMPTY_INPUT_REASON,
  type MetricResult,
  metricUndefined,
  metricValue,
  UqInputError,
} from './result.ts';

/** How confidences are grouped into bins. */
export type BinScheme = 'equal-width' | 'equal-mass';

/** Binning of ECE, MCE and the reliability diagram. */
export interface BinningOptions {
  /** Number of bins (an integer >= 1); default 15. */
  bins?: number;
  /** `equal-width` (default): bins (lo, hi] of width 1/bins, the first [0, hi]. `equal-mass`: see `binConfidences`. */
  scheme?: BinScheme;
}

/** One bin: its bounds, how many predictions fell in it, their accuracy and mean confidence (null when empty). */
export interface CalibrationBin {
  lo: number;
  hi: number;
  count: number;
  accuracy: number | null;
  confidence: number | null;
}

/** ECE or MCE with the bins it was computed from. */
export type BinnedMetricResult = MetricResult & {
  scheme: BinScheme;
  /** The requested bin count (equal-mass may fill fewer bins, see `binConfidences`). */
  binCount: number;
  bins: CalibrationBin[];
};

/** Default number of calibration bins. */
export const DEFAULT_BINS = 15;

/** NLL clips probabilities to [NLL_EPSILON, 1 - NLL_EPSILON]. */
export const NLL_EPSILON = 1e-12;

function resolveBinning(options: BinningOptions): { bins: number; scheme: BinScheme } {
  const bins = options.bins ?? DEFAULT_BINS;
  const scheme = options.scheme ?? 'equal-width';
  if (!Number.isInteger(bins) || bins < 1) {
    throw new UqInputError(`bins: expected an integer >= 1, found ${bins}`);
  }
  if (scheme !== 'equal-width' && scheme !== 'equal-mass') {
    throw new UqInputError(`scheme: expected 'equal-width' or 'equal-mass', found '${String(scheme)}'`);
  }
  return { bins, scheme };
}

/** The equal-width bin of confidence c: b with b/B < c <= (b+1)/B, and bin 0 for c = 0. */
function equalWidthIndex(c: number, bins: number): number {
  let b = Math.min(bins - 1, Math.max(0, Math.ceil(c * bins) - 1));
  // Edges are b/bins exactly (correctly rounded division), so 0.7 lands in (0.6, 0.7] for 10 bins.
  while (b > 0 && c <= b / bins) b--;
  while (b < bins - 1 && c > (b + 1) / bins) b++;
  return b;
}

/**
 * Group confidences into bins. Equal-width: `bins` bins ((b-1)/B, b/B], the first [0, 1/B], all
 * listed, empty ones with null accuracy and confidence. Equal-mass: sort by confidence; the item at
 * sorted position i (0-based) of N would go to bin floor(i B / N); a group of tied confidences stays
 * together in the bin of its middle position (ties share a bin). Only non-empty bins are listed, so
 * ties can leave fewer than `bins`; lo and hi are then the smallest and largest confidence in the bin.
 */
export function binConfidences(
  confidences: ArrayLike<number>,
  correct: ArrayLike<boolean | number>,
  options: BinningOptions = {},
): CalibrationBin[] {
  checkSameLength(confidences, correct, 'binConfidences');
  const c = probabilityValues(confidences, 'confidences');
  const y = binaryValues(correct, 'correct');
  const { bins, scheme } = resolveBinning(options);
  const n = c.length;
  const index = new Int32Array(n);
  if (scheme === 'equal-width') {
    for (let i = 0; i < n; i++) index[i] = equalWidthIndex(c[i]!, bins);
  } else {
    const order = ascendingOrder(c);
    let start = 0;
    while (start < n) {
      let end = start + 1;
      while (end < n && c[order[end]!] === c[order[start]!]) end++;
      // Middle position (start + end - 1) / 2, times bins / n, floored, in integer arithmetic.
      const b = Math.floor(((start + end - 1) * bins) / (2 * n));
      for (let j = start; j < end; j++) index[order[j]!] = b;
      start = end;
    }
  }
  const count = new Float64Array(bins);
  const confidenceSum = new Float64Array(bins);
  const correctSum = new Float64Array(bins);
  const lo = new Float64Array(bins).fill(Number.POSITIVE_INFINITY);
  const hi = new Float64Array(bins).fill(Number.NEGATIVE_INFINITY);
  for (let i = 0; i < n; i++) {
    const b = index[i]!;
    count[b]!++;
    confidenceSum[b]! += c[i]!;
    correctSum[b]! += y[i]!;
    lo[b] = Math.min(lo[b]!, c[i]!);
    hi[b] = Math.max(hi[b]!, c[i]!);
  }
  const out: CalibrationBin[] = [];
  for (let b = 0; b < bins; b++) {
    const k = count[b]!;
    if (scheme === 'equal-mass' && k === 0) continue;
    out.push({
      lo: scheme === 'equal-width' ? b / bins : lo[b]!,
      hi: scheme === 'equal-width' ? (b + 1) / bins : hi[b]!,
      count: k,
      accuracy: k > 0 ? correctSum[b]! / k : null,
      confidence: k > 0 ? confidenceSum[b]! / k : null,
    });
  }
  return out;
}

function binnedResult(
  confidences: ArrayLike<number>,
  correct: ArrayLike<boolean | number>,
  options: BinningOptions,
  reduce: (bins: CalibrationBin[], n: number) => number,
): BinnedMetricResult {
  const bins = binConfidences(confidences, correct, options);
  const { bins: binCount, scheme } = resolveBinning(options);
  if (confidences.length === 0) return { value: null, reason: EMPTY_INPUT_REASON, scheme, binCount, bins };
  return { value: reduce(bins, confidences.length), scheme, binCount, bins };
}

/**
 * Expected calibration error: sum over bins of (n_b / N) |accuracy_b - mean confidence_b|, with the
 * bins (see `binConfidences`; default 15 equal-width). Undefined (null) for empty input.
 */
export function ece(
  confidences: ArrayLike<number>,
  correct: ArrayLike<boolean | number>,
  options: BinningOptions = {},
): BinnedMetricResult {
  return binnedResult(confidences, correct, options, (bins, n) => {
    let total = 0;
    for (const b of bins) if (b.count > 0) total += (b.count / n) * Math.abs(b.accuracy! - b.confidence!);
    return total;
  });
}

/**
 * Maximum calibration error: the largest |accuracy_b - mean confidence_b| over non-empty bins, with
 * the bins. Undefined (null) for empty input.
 */
export function mce(
  confidences: ArrayLike<number>,
  correct: ArrayLike<boolean | number>,
  options: BinningOptions = {},
): BinnedMetricResult {
  return binnedResult(confidences, correct, options, (bins) => {
    let worst = 0;
    for (const b of bins) if (b.count > 0) worst = Math.max(worst, Math.abs(b.accuracy! - b.confidence!));
    return worst;
  });
}

/** Brier score: mean (c - y)^2 over predictions (lower is better). Undefined (null) for empty input. */
export function brier(confidences: ArrayLike<number>, correct: ArrayLike<boolean | number>): MetricResult {
  checkSameLength(confidences, correct, 'brier');
  const c = probabilityValues(confidences, 'confidences');
  const y = binaryValues(correct, 'correct');
  if (c.length === 0) return metricUndefined(EMPTY_INPUT_REASON);
  let total = 0;
  for (let i = 0; i < c.length; i++) total += (c[i]! - y[i]!) ** 2;
  return metricValue(total / c.length);
}

/**
 * Negative log-likelihood of the correctness labels: mean of -[y log c + (1 - y) log(1 - c)] in nats,
 * with c clipped to [1e-12, 1 - 1e-12] so a confident mistake costs about 27.6, not infinity.
 * Undefined (null) for empty input.
 */
export function nll(confidences: ArrayLike<number>, correct: ArrayLike<boolean | number>): MetricResult {
  checkSameLength(confidences, correct, 'nll');
  const c = probabilityValues(confidences, 'confidences');
  const y = binaryValues(correct, 'correct');
  if (c.length === 0) return metricUndefined(EMPTY_INPUT_REASON);
  let total = 0;
  for (let i = 0; i < c.length; i++) {
    const p = Math.min(1 - NLL_EPSILON, Math.max(NLL_EPSILON, c[i]!));
    total -= y[i] ? Math.log(p) : Math.log1p(-p);
  }
  return metricValue(total / c.length);
}

/** One bar of a reliability diagram: a calibration bin with its gap and share of the predictions. */
export interface ReliabilityBin extends CalibrationBin {
  /** accuracy - confidence (negative = overconfident); null for an empty bin. */
  gap: number | null;
  /** count / N. */
  fraction: number;
}

/** What a reliability diagram draws, plus the summary numbers printed beside it. */
export interface ReliabilityDiagram {
  scheme: BinScheme;
  binCount: number;
  n: number;
  /** Overall accuracy and mean confidence (null for empty input). */
  accuracy: number | null;
  confidence: number | null;
  ece: number | null;
  mce: number | null;
  bins: ReliabilityBin[];
}

/**
 * The data of a reliability diagram (accuracy vs. confidence per bin, with counts), binned as for
 * `ece`, with overall accuracy, mean confidence, ECE and MCE.
 */
export function reliabilityDiagram(
  confidences: ArrayLike<number>,
  correct: ArrayLike<boolean | number>,
  options: BinningOptions = {},
): ReliabilityDiagram {
  const { bins: binCount, scheme } = resolveBinning(options);
  const calibration = ece(confidences, correct, options);
  const n = confidences.length;
  let confidenceSum = 0;
  let correctSum = 0;
  for (let i = 0; i < n; i++) {
    confidenceSum += confidences[i]!;
    correctSum += Number(correct[i]);
  }
  return {
    scheme,
    binCount,
    n,
    accuracy: n > 0 ? correctSum / n : null,
    confidence: n > 0 ? confidenceSum / n : null,
    ece: calibration.value,
    mce: mce(confidences, correct, options).value,
    bins: calibration.bins.map((b) => ({
      ...b,
      gap: b.count > 0 ? b.accuracy! - b.confidence! : null,
      fraction: n > 0 ? b.count / n : 0,
    })),
  };
}
