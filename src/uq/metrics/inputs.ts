/**
 * Input checks shared by the metrics and calibrators, and the tie-aware ordering every ranking
 * metric uses (tied scores are averaged over their tie group: the expected value under random
 * tie-breaking, METHODS.md section 1).
 */
import { UqInputError } from './result.ts';

/** `values` as finite f64 numbers; NaN or an infinity is a UqInputError naming `what` and the index. */
export function finiteValues(values: ArrayLike<number>, what: string): Float64Array {
  const out = new Float64Array(values.length);
  for (let i = 0; i < values.length; i++) {
    const v = values[i]!;
    if (typeof v !== 'number' || !Number.isFinite(v)) {
      throw new UqInputError(`${what}[${i}]: expected a finite number, found ${String(v)}`);
    }
    out[i] = v;
  }
  return out;
}

/** Confidences as f64, each in [0, 1]; anything else is a UqInputError. */
export function probabilityValues(values: ArrayLike<number>, what: string): Float64Array {
  const out = finiteValues(values, what);
  for (let i = 0; i < out.length; i++) {
    if (out[i]! < 0 || out[i]! > 1) {
      throw new UqInputError(`${what}[${i}]: expected a probability in [0, 1], found ${out[i]}`);
    }
  }
  return out;
}

/**
 * Binary labels as 0/1: `true`/`false` or the numbers 1/0. Anything else is a UqInputError
 * (a metric does not guess what 0.7 "correct" means).
 */
export function binaryValues(values: ArrayLike<boolean | number>, what: string): Uint8Array {
  const out = new Uint8Array(values.length);
  for (let i = 0; i < values.length; i++) {
    const v = values[i];
    if (v === true || v === 1) out[i] = 1;
    else if (v === false || v === 0) out[i] = 0;
    else throw new UqInputError(`${what}[${i}]: expected true/false or 1/0, found ${String(v)}`);
  }
  return out;
}

/** Throw a UqInputError unless `a` and `b` have the same length. */
export function checkSameLength(a: ArrayLike<unknown>, b: ArrayLike<unknown>, what: string): void {
  if (a.length !== b.length) {
    throw new UqInputError(`${what}: the two inputs differ in length (${a.length} vs ${b.length})`);
  }
}

/** Indices 0..n-1 sorted by `scores` ascending (a stable sort: tie order is irrelevant to the callers). */
export function ascendingOrder(scores: Float64Array): number[] {
  const order = Array.from({ length: scores.length }, (_, i) => i);
  order.sort((a, b) => scores[a]! - scores[b]!);
  return order;
}

/**
 * Expected cumulative sums of `values` taken in ascending order of `scores`, ties broken at random:
 * entry k-1 is E[sum of the values of the k lowest-scored items]. Inside a tie group of size g
 * starting after b items, taking k - b of its members adds (k - b) x (the group's mean value).
 */
export function expectedCumulativeSums(scores: Float64Array, values: ArrayLike<number>): Float64Array {
  const n = scores.length;
  const order = ascendingOrder(scores);
  const sums = new Float64Array(n);
  let before = 0; // sum of the values of all items in earlier groups
  let start = 0;
  while (start < n) {
    let end = start + 1;
    while (end < n && scores[order[end]!] === scores[order[start]!]) end++;
    let groupSum = 0;
    for (let j = start; j < end; j++) groupSum += values[order[j]!]!;
    const groupMean = groupSum / (end - start);
    for (let k = start + 1; k <= end; k++) sums[k - 1] = before + (k - start) * groupMean;
    before += groupSum;
    start = end;
  }
  return sums;
}
