/**
 * STAR's dynamic uncertainty mix ("Constraint LoRA with Dynamic Active Learning", METHODS.md §1):
 * `U = lambda_i U_adapted + (1 - lambda_i) U_base` with `lambda_i = 0.1 (i + 1)` (capped at 1) at
 * query iteration i (0 = the first query round), both uncertainties min-max normalised over the
 * candidates; and the top-k selection (topKIndices) every strategy's scores go through.
 */

/** (v - min) / (max - min) over `values`; every value 0 when they are all equal (no information). */
export function minMaxNormalise(values: ArrayLike<number>): Float64Array {
  let lo = Infinity;
  let hi = -Infinity;
  for (let i = 0; i < values.length; i++) {
    lo = Math.min(lo, values[i]!);
    hi = Math.max(hi, values[i]!);
  }
  const out = new Float64Array(values.length);
  if (!(hi > lo)) return out;
  for (let i = 0; i < values.length; i++) out[i] = (values[i]! - lo) / (hi - lo);
  return out;
}

/** lambda_i = 0.1 (iter + 1), capped at 1. */
export function starLambda(iter: number): number {
  return Math.min(1, 0.1 * (iter + 1));
}

/** U = lambda U_adapted~ + (1 - lambda) U_base~ with ~ the min-max normalisation over the candidates. */
export function starMix(base: ArrayLike<number>, adapted: ArrayLike<number>, iter: number): Float64Array {
  if (base.length !== adapted.length)
    throw new Error(`starMix: ${base.length} base and ${adapted.length} adapted uncertainties`);
  const l = starLambda(iter);
  const b = minMaxNormalise(base);
  const a = minMaxNormalise(adapted);
  return b.map((v, i) => l * a[i]! + (1 - l) * v);
}

/** Indices of the `k` largest scores; ties go to the earlier index (pool order), so the pick is deterministic. */
export function topKIndices(scores: ArrayLike<number>, k: number): number[] {
  const order = Array.from({ length: scores.length }, (_, i) => i);
  order.sort((i, j) => scores[j]! - scores[i]! || i - j);
  return order.slice(0, k);
}
