/**
 * Selection helpers for sparse fine-tuning: the n largest scores (ties by lower position) in O(len)
 * average time (quickselect on a copy), and k distinct random positions.
 */
import type { Rng } from '../tensor/index.ts';

/** The value of rank `n` (1-based) from the top of `a` (reorders `a`). */
function nthLargest(a: Float64Array, n: number): number {
  let lo = 0;
  let hi = a.length - 1;
  const target = n - 1;
  while (lo < hi) {
    const pivot = a[(lo + hi) >>> 1]!;
    let i = lo;
    let j = hi;
    while (i <= j) {
      while (a[i]! > pivot) i++;
      while (a[j]! < pivot) j--;
      if (i <= j) {
        const t = a[i]!;
        a[i] = a[j]!;
        a[j] = t;
        i++;
        j--;
      }
    }
    if (target <= j) hi = j;
    else if (target >= i) lo = i;
    else return a[target]!;
  }
  return a[target]!;
}

/**
 * Positions of the `n` largest `scores` (NaN counts as -Infinity), skipping positions where
 * `exclude[i]` is set; ties go to the lower position. Returned in ascending position order.
 */
export function largestPositions(
  scores: ArrayLike<number>,
  n: number,
  exclude: Uint8Array | null = null,
): Int32Array {
  const m = scores.length;
  const copy = new Float64Array(m);
  let count = 0;
  for (let i = 0; i < m; i++) {
    if (exclude?.[i]) continue;
    const s = scores[i]!;
    copy[count++] = Number.isNaN(s) ? Number.NEGATIVE_INFINITY : s;
  }
  const take = Math.min(n, count);
  const out = new Int32Array(take);
  if (take === 0) return out;
  const threshold = nthLargest(copy.subarray(0, count), take);
  let above = 0;
  for (let i = 0; i < m; i++) if (!exclude?.[i] && scores[i]! > threshold) above++;
  let ties = take - above;
  let o = 0;
  for (let i = 0; i < m && o < take; i++) {
    if (exclude?.[i]) continue;
    const s = Number.isNaN(scores[i]!) ? Number.NEGATIVE_INFINITY : scores[i]!;
    if (s > threshold) out[o++] = i;
    else if (s === threshold && ties > 0) {
      out[o++] = i;
      ties--;
    }
  }
  return out;
}

/** `k` distinct positions in [0, n), drawn uniformly with `rng`, ascending. */
export function randomPositions(n: number, k: number, rng: Rng): Int32Array {
  if (k > n) throw new RangeError(`randomPositions: cannot draw ${k} distinct positions out of ${n}`);
  const out = new Int32Array(k);
  if (2 * k > n) {
    const all = Int32Array.from({ length: n }, (_, i) => i);
    for (let i = 0; i < k; i++) {
      const j = i + rng.int(n - i);
      const t = all[i]!;
      all[i] = all[j]!;
      all[j] = t;
    }
    out.set(all.subarray(0, k));
  } else {
    const taken = new Uint8Array(n);
    let o = 0;
    while (o < k) {
      const i = rng.int(n);
      if (taken[i]) continue;
      taken[i] = 1;
      out[o++] = i;
    }
  }
  return out.sort();
}
