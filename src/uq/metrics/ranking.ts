/**
 * Detection metrics: how well a score separates positives from negatives. For uncertainty, the
 * positive class is a wrong answer and the score is the uncertainty (higher = less sure), so a good
 * uncertainty gives AUROC near 1.
 */
import { ascendingOrder, binaryValues, checkSameLength, finiteValues } from './inputs.ts';
import { EMPTY_INPUT_REASON, type MetricResult, metricUndefined, metricValue } from './result.ts';

/**
 * Area under the ROC curve of `scores` for detecting `positives` (true/1 = positive): the
 * probability that a random positive scores higher than a random negative, a tie counting 1/2
 * (Mann-Whitney U from average ranks). Undefined (null) for an empty input or when only one class
 * is present.
 */
export function auroc(scores: ArrayLike<number>, positives: ArrayLike<boolean | number>): MetricResult {
  checkSameLength(scores, positives, 'auroc');
  const s = finiteValues(scores, 'auroc scores');
  const pos = binaryValues(positives, 'auroc positives');
  const n = s.length;
  if (n === 0) return metricUndefined(EMPTY_INPUT_REASON);
  let nPos = 0;
  for (let i = 0; i < n; i++) nPos += pos[i]!;
  const nNeg = n - nPos;
  if (nPos === 0) return metricUndefined('only one class: no positives');
  if (nNeg === 0) return metricUndefined('only one class: no negatives');
  const order = ascendingOrder(s);
  let positiveRankSum = 0;
  let start = 0;
  while (start < n) {
    let end = start + 1;
    while (end < n && s[order[end]!] === s[order[start]!]) end++;
    const averageRank = (start + 1 + end) / 2; // ranks start+1 .. end, 1-based
    for (let j = start; j < end; j++) if (pos[order[j]!]) positiveRankSum += averageRank;
    start = end;
  }
  return metricValue((positiveRankSum - (nPos * (nPos + 1)) / 2) / (nPos * nNeg));
}

/**
 * Average precision of `scores` for detecting `positives`, as scikit-learn's
 * `average_precision_score`: thresholds at the distinct score values from high to low,
 * AP = sum over thresholds of (R_t - R_prev) x P_t, where P_t and R_t count every item scoring at
 * least t (a tie group enters all at once). Undefined (null) for an empty input or no positives
 * (scikit-learn warns and returns 0 there); all positives give 1.
 */
export function aupr(scores: ArrayLike<number>, positives: ArrayLike<boolean | number>): MetricResult {
  checkSameLength(scores, positives, 'aupr');
  const s = finiteValues(scores, 'aupr scores');
  const pos = binaryValues(positives, 'aupr positives');
  const n = s.length;
  if (n === 0) return metricUndefined(EMPTY_INPUT_REASON);
  let nPos = 0;
  for (let i = 0; i < n; i++) nPos += pos[i]!;
  if (nPos === 0) return metricUndefined('no positives: average precision needs at least one');
  const order = ascendingOrder(s).reverse();
  let truePositives = 0;
  let taken = 0;
  let previousRecall = 0;
  let ap = 0;
  let start = 0;
  while (start < n) {
    let end = start + 1;
    while (end < n && s[order[end]!] === s[order[start]!]) end++;
    for (let j = start; j < end; j++) truePositives += pos[order[j]!]!;
    taken = end;
    const recall = truePositives / nPos;
    ap += (recall - previousRecall) * (truePositives / taken);
    previousRecall = recall;
    start = end;
  }
  return metricValue(ap);
}
