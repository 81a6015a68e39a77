/**
 * Sparsification of task vectors Δ = θ - base, as mergekit's sparsify.py (with Attune's options):
 *
 * - magnitude (TIES): keep the top k = floor(density * n) entries by |Δ|.
 * - magnitude_outliers (breadcrumbs): rank by |Δ|, remove the top n_top = floor(gamma * n), keep the
 *   next floor(density * n); when the two overlap n_top shrinks (mergekit's rule), so exactly
 *   floor(density * n) entries are kept.
 * - random (DARE): keep each entry with probability density (seeded, per tensor and model).
 *
 * `density >= 1` leaves the task vector untouched (mergekit returns it as is, so breadcrumbs with
 * density 1 removes no outliers either). Ties in |Δ| are broken by position, so counts are exact
 * (mergekit's argsort breaks them arbitrarily). `scope` chooses what n is: the tensor (mergekit),
 * each row (breadcrumbs paper), or the whole model (TIES paper; the cuts come from a prior pass).
 *
 * Dropped entries are written as θ_j = base_j (Δ_j = 0 exactly); the rescale of the survivors is
 * returned as a factor applied when the task vectors are combined: `l1` keeps the tensor's L1 norm
 * (mergekit's rescale), `inverse_density` divides by density (paper / PEFT: keeps E[Δ]), `none`.
 */
import type { Rng } from '../tensor/index.ts';
import type { Rescale, Sparsification } from './methods.ts';
import { cutFromSorted, RadixRankSelector, type RankCut } from './select.ts';

/** The band of ranks kept: ranks [start, end) by descending |Δ|. */
export interface RankBand {
  start: number;
  end: number;
}

/** What a sparsification keeps of n entries (magnitude and magnitude_outliers). */
export function rankBand(
  method: 'magnitude' | 'magnitude_outliers',
  n: number,
  density: number,
  gamma: number,
): RankBand {
  const target = Math.floor(density * n);
  if (method === 'magnitude') return { start: 0, end: target };
  let top = Math.floor(gamma * n);
  const bottom = n - target - top;
  if (bottom < 0) top += bottom;
  return { start: top, end: top + target };
}

/** Options of `sparsifyTaskVector`. */
export interface SparsifyOptions {
  method: Sparsification;
  density: number;
  /** breadcrumbs: fraction of the largest entries removed. */
  gamma?: number;
  rescale: Rescale;
  /** 'tensor' (default) or 'row' (rows of `rowLength` entries); global scope passes `cuts`. */
  scope?: 'tensor' | 'row';
  rowLength?: number;
  /** random: the generator of the drops. */
  rng?: Rng;
  /** Model-wide cuts (scope global), shared across the tensors of one model in file order. */
  cuts?: { start: RankCut; end: RankCut };
}

/** What `sparsifyTaskVector` did. */
export interface SparsifyResult {
  /** Entries kept. */
  kept: number;
  /** Factor applied to the kept Δ entries when combining. */
  scale: number;
}

/** |θ_j - base_j| rounded to f32 (the magnitude every ranking uses). */
function magnitude(theta: Float32Array, base: Float32Array | null, j: number): number {
  return Math.fround(Math.abs(base ? theta[j]! - base[j]! : theta[j]!));
}

function l1(theta: Float32Array, base: Float32Array | null): number {
  let sum = 0;
  for (let j = 0; j < theta.length; j++) sum += Math.abs(base ? theta[j]! - base[j]! : theta[j]!);
  return sum;
}

/** Drop (Δ_j := 0) every entry of [from, to) outside the band the cuts describe; returns the count kept. */
function applyCuts(
  theta: Float32Array,
  base: Float32Array | null,
  from: number,
  to: number,
  start: RankCut,
  end: RankCut,
): number {
  let kept = 0;
  for (let j = from; j < to; j++) {
    const a = magnitude(theta, base, j);
    const inEnd = end.takes(a);
    const inStart = start.takes(a);
    if (inEnd && !inStart) kept++;
    else theta[j] = base ? base[j]! : 0;
  }
  return kept;
}

/** Exact cuts of one segment by radix selection (two passes over the segment). */
function segmentCuts(
  theta: Float32Array,
  base: Float32Array | null,
  from: number,
  to: number,
  band: RankBand,
): [RankCut, RankCut] {
  const selector = new RadixRankSelector([band.start, band.end]);
  for (let j = from; j < to; j++) selector.addHigh(magnitude(theta, base, j));
  selector.finishHigh();
  if (selector.needsLow) for (let j = from; j < to; j++) selector.addLow(magnitude(theta, base, j));
  const [start, end] = selector.cuts();
  return [start!, end!];
}

/**
 * Sparsify the task vector θ - base in place (θ entries dropped become base's; `base` null means θ
 * is the task vector itself). See the file comment for the rules.
 */
export function sparsifyTaskVector(
  theta: Float32Array,
  base: Float32Array | null,
  options: SparsifyOptions,
): SparsifyResult {
  const n = theta.length;
  const density = options.density;
  if (density >= 1) return { kept: n, scale: 1 };
  const before = options.rescale === 'l1' ? l1(theta, base) : 0;
  let kept = 0;
  if (options.method === 'random') {
    const rng = options.rng;
    if (!rng) throw new TypeError('sparsifyTaskVector: random drops need an rng');
    for (let j = 0; j < n; j++) {
      if (rng.uniform() < density) kept++;
      else theta[j] = base ? base[j]! : 0;
    }
  } else if (options.cuts) {
    kept = applyCuts(theta, base, 0, n, options.cuts.start, options.cuts.end);
  } else if ((options.scope ?? 'tensor') === 'row') {
    const rowLength = options.rowLength && options.rowLength > 0 ? options.rowLength : n;
    const scratch = new Float32Array(rowLength);
    for (let from = 0; from < n; from += rowLength) {
      const to = Math.min(n, from + rowLength);
      const row = scratch.subarray(0, to - from);
      for (let j = from; j < to; j++) row[j - from] = magnitude(theta, base, j);
      row.sort();
      const band = rankBand(options.method, to - from, density, options.gamma ?? 0);
      kept += applyCuts(theta, base, from, to, cutFromSorted(row, band.start), cutFromSorted(row, band.end));
    }
  } else {
    const band = rankBand(options.method, n, density, options.gamma ?? 0);
    const [start, end] = segmentCuts(theta, base, 0, n, band);
    kept = applyCuts(theta, base, 0, n, start, end);
  }
  let scale = 1;
  if (options.rescale === 'inverse_density') scale = 1 / density;
  else if (options.rescale === 'l1') {
    const after = l1(theta, base);
    if (before >= 1e-7 && after >= 1e-7) scale = before / after;
  }
  return { kept, scale };
}
