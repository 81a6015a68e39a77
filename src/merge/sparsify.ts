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
import type { Rescale } from './parameters.ts';
import { cutFromSorted, RadixRankSelector, type RankCut } from './select.ts';

/** How task vectors are sparsified (mergekit's SparsificationMethod). */
export type Sparsification = 'magnitude' | 'random' | 'magnitude_outliers';

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

/** |θ_j - base_j| of every entry, rounded to f32 (the magnitudes every ranking uses), into `into`. */
function magnitudes(theta: Float32Array, base: Float32Array | null, into: Float32Array): Float32Array {
  const n = theta.length;
  if (base) for (let j = 0; j < n; j++) into[j] = Math.abs(theta[j]! - base[j]!);
  else for (let j = 0; j < n; j++) into[j] = Math.abs(theta[j]!);
  return into;
}

/**
 * Drop (Δ_j := 0) every entry of [from, to) outside the band the cuts describe; returns the count
 * kept and the L1 norm of the kept magnitudes.
 */
function applyCuts(
  theta: Float32Array,
  base: Float32Array | null,
  mags: Float32Array,
  from: number,
  to: number,
  start: RankCut,
  end: RankCut,
): { kept: number; l1: number } {
  let kept = 0;
  let l1 = 0;
  // RankCut.takes inlined (hot loop): entries above the value, then ties in position order
  const startValue = start.value;
  const endValue = end.value;
  let startTies = start.tiesLeft;
  let endTies = end.tiesLeft;
  for (let j = from; j < to; j++) {
    const a = mags[j]!;
    let inEnd = a > endValue;
    if (!inEnd && a === endValue && endTies > 0) {
      endTies--;
      inEnd = true;
    }
    let inStart = a > startValue;
    if (!inStart && a === startValue && startTies > 0) {
      startTies--;
      inStart = true;
    }
    if (inEnd && !inStart) {
      kept++;
      l1 += a;
    } else theta[j] = base ? base[j]! : 0;
  }
  start.tiesLeft = startTies;
  end.tiesLeft = endTies;
  return { kept, l1 };
}

/** Exact cuts of a whole tensor by radix selection (two counting passes over the magnitudes' bits). */
function tensorCuts(mags: Float32Array, band: RankBand): [RankCut, RankCut] {
  const bits = new Uint32Array(mags.buffer, mags.byteOffset, mags.length);
  const selector = new RadixRankSelector([band.start, band.end]);
  selector.addHighBits(bits);
  selector.finishHigh();
  if (selector.needsLow) selector.addLowBits(bits);
  const [start, end] = selector.cuts();
  return [start!, end!];
}

/**
 * Sparsify the task vector θ - base in place (θ entries dropped become base's; `base` null means θ
 * is the task vector itself). See the file comment for the rules. `scratch` (at least θ's length)
 * holds the magnitudes of the magnitude-based methods; without it one is allocated.
 */
export function sparsifyTaskVector(
  theta: Float32Array,
  base: Float32Array | null,
  options: SparsifyOptions,
  scratch?: Float32Array,
): SparsifyResult {
  const n = theta.length;
  const density = options.density;
  if (density >= 1) return { kept: n, scale: 1 };
  let before = 0;
  let after = 0;
  let kept = 0;
  if (options.method === 'random') {
    const rng = options.rng;
    if (!rng) throw new TypeError('sparsifyTaskVector: random drops need an rng');
    for (let j = 0; j < n; j++) {
      const a = Math.abs(base ? theta[j]! - base[j]! : theta[j]!);
      before += a;
      if (rng.uniform() < density) {
        kept++;
        after += a;
      } else theta[j] = base ? base[j]! : 0;
    }
  } else {
    const mags = magnitudes(
      theta,
      base,
      scratch && scratch.length >= n ? scratch.subarray(0, n) : new Float32Array(n),
    );
    for (let j = 0; j < n; j++) before += mags[j]!;
    let result: { kept: number; l1: number };
    if (options.cuts) {
      result = applyCuts(theta, base, mags, 0, n, options.cuts.start, options.cuts.end);
    } else if ((options.scope ?? 'tensor') === 'row') {
      const rowLength = options.rowLength && options.rowLength > 0 ? options.rowLength : n;
      const sorted = new Float32Array(rowLength);
      result = { kept: 0, l1: 0 };
      for (let from = 0; from < n; from += rowLength) {
        const to = Math.min(n, from + rowLength);
        const row = sorted.subarray(0, to - from);
        row.set(mags.subarray(from, to));
        row.sort();
        const band = rankBand(options.method, to - from, density, options.gamma ?? 0);
        const r = applyCuts(
          theta,
          base,
          mags,
          from,
          to,
          cutFromSorted(row, band.start),
          cutFromSorted(row, band.end),
        );
        result.kept += r.kept;
        result.l1 += r.l1;
      }
    } else {
      const [start, end] = tensorCuts(mags, rankBand(options.method, n, density, options.gamma ?? 0));
      result = applyCuts(theta, base, mags, 0, n, start, end);
    }
    kept = result.kept;
    after = result.l1;
  }
  let scale = 1;
  if (options.rescale === 'inverse_density') scale = 1 / density;
  else if (options.rescale === 'l1' && before >= 1e-7 && after >= 1e-7) scale = before / after;
  return { kept, scale };
}
