/**
 * Selective prediction: keep the answers the model is surest of (lowest uncertainty first) and
 * measure what is kept. Ties in the uncertainty are averaged over their tie group (the expected
 * value under random tie-breaking), so the metrics do not depend on input order.
 */
import { binaryValues, checkSameLength, expectedCumulativeSums, finiteValues } from './inputs.ts';
import {
  EMPTY_INPUT_REASON,
  type MetricResult,
  metricUndefined,
  metricValue,
  UqInputError,
} from './result.ts';

/** One point of a risk-coverage curve: keep the `coverage` fraction surest answers; `risk` is their error rate. */
export interface RiskCoveragePoint {
  coverage: number;
  risk: number;
}

function selectiveInputs(
  uncertainty: ArrayLike<number>,
  correct: ArrayLike<boolean | number>,
  what: string,
): { u: Float64Array; errors: Float64Array } {
  checkSameLength(uncertainty, correct, what);
  const u = finiteValues(uncertainty, `${what} uncertainty`);
  const c = binaryValues(correct, `${what} correct`);
  const errors = new Float64Array(c.length);
  for (let i = 0; i < c.length; i++) errors[i] = 1 - c[i]!;
  return { u, errors };
}

/** Mean over k = 1..N of (sum of the first k values) / k. */
function meanOfRunningMeans(sums: Float64Array): number {
  let total = 0;
  for (let k = 1; k <= sums.length; k++) total += sums[k - 1]! / k;
  return total / sums.length;
}

/**
 * The risk-coverage curve: for k = 1..N, keep the k answers with the lowest uncertainty; the point
 * is (k/N, expected error rate of those k). Ties are broken at random in expectation. Empty input
 * gives no points. The mean of the risks is `aurc`.
 */
export function riskCoverageCurve(
  uncertainty: ArrayLike<number>,
  correct: ArrayLike<boolean | number>,
): RiskCoveragePoint[] {
  const { u, errors } = selectiveInputs(uncertainty, correct, 'riskCoverageCurve');
  const n = u.length;
  const sums = expectedCumulativeSums(u, errors);
  const points: RiskCoveragePoint[] = [];
  for (let k = 1; k <= n; k++) points.push({ coverage: k / n, risk: sums[k - 1]! / k });
  return points;
}

/**
 * Area under the risk-coverage curve: the mean over k = 1..N of the error rate of the k answers
 * with the lowest uncertainty (lower is better; ties averaged). Undefined only for empty input.
 */
export function aurc(uncertainty: ArrayLike<number>, correct: ArrayLike<boolean | number>): MetricResult {
  const { u, errors } = selectiveInputs(uncertainty, correct, 'aurc');
  const n = u.length;
  if (n === 0) return metricUndefined(EMPTY_INPUT_REASON);
  return metricValue(meanOfRunningMeans(expectedCumulativeSums(u, errors)));
}

/**
 * Area under the accuracy-rejection curve: the mean over k = 1..N of the accuracy of the k answers
 * with the lowest uncertainty (higher is better; ties averaged; equals 1 - AURC). Undefined only
 * for empty input.
 */
export function auarc(uncertainty: ArrayLike<number>, correct: ArrayLike<boolean | number>): MetricResult {
  const { u, errors } = selectiveInputs(uncertainty, correct, 'auarc');
  const n = u.length;
  if (n === 0) return metricUndefined(EMPTY_INPUT_REASON);
  const correctValues = errors.map((e) => 1 - e);
  return metricValue(meanOfRunningMeans(expectedCumulativeSums(u, correctValues)));
}

/**
 * Prediction-rejection ratio (LM-Polygraph). Quality q is min-max normalised to [0, 1]; ranking by
 * uncertainty ascending, PR-AUC = mean over kept counts k = 1..N of the mean quality of the k kept
 * (ties averaged). PRR = (AUC(U) - AUC(random)) / (AUC(oracle) - AUC(random)) where the oracle keeps
 * the highest quality first and AUC(random) = mean(q) exactly. 1 = oracle ranking, 0 = random,
 * negative = worse than random (-1 for the reversed oracle on binary quality). For binary
 * correctness pass q = correct (true/1). Undefined (null) for an empty input or when all qualities
 * are equal.
 */
export function prr(uncertainty: ArrayLike<number>, quality: ArrayLike<number | boolean>): MetricResult {
  checkSameLength(uncertainty, quality, 'prr');
  const u = finiteValues(uncertainty, 'prr uncertainty');
  const raw = new Float64Array(quality.length);
  for (let i = 0; i < quality.length; i++) {
    const q = quality[i];
    if (typeof q === 'boolean') raw[i] = q ? 1 : 0;
    else if (typeof q === 'number' && Number.isFinite(q)) raw[i] = q;
    else throw new UqInputError(`prr quality[${i}]: expected a finite number or boolean, found ${String(q)}`);
  }
  const n = u.length;
  if (n === 0) return metricUndefined(EMPTY_INPUT_REASON);
  let lo = Number.POSITIVE_INFINITY;
  let hi = Number.NEGATIVE_INFINITY;
  for (const q of raw) {
    lo = Math.min(lo, q);
    hi = Math.max(hi, q);
  }
  if (hi === lo) return metricUndefined('all qualities are equal: no ranking can beat random');
  const q = raw.map((v) => (v - lo) / (hi - lo));
  let qSum = 0;
  for (const v of q) qSum += v;
  const random = qSum / n;
  const byUncertainty = meanOfRunningMeans(expectedCumulativeSums(u, q));
  const byOracle = meanOfRunningMeans(
    expectedCumulativeSums(
      q.map((v) => -v),
      q,
    ),
  );
  return metricValue((byUncertainty - random) / (byOracle - random));
}
