/**
 * Isotonic regression of correctness on a score by pool-adjacent-violators: the best (least-squares)
 * monotone step function, as scikit-learn's IsotonicRegression with out_of_bounds='clip'.
 */
import { binaryValues, checkSameLength, finiteValues } from '../metrics/inputs.ts';
import { UqInputError } from '../metrics/result.ts';
import { CALIBRATOR_FORMAT_VERSION, type CalibratorJSON } from './format.ts';

/** Isotonic regression as JSON: knots x (strictly increasing) and values y in [0, 1], monotone. */
export type IsotonicCalibratorJSON = CalibratorJSON<
  'isotonic',
  { x: number[]; y: number[]; increasing: boolean }
>;

/** Options of `fitIsotonic`. */
export interface IsotonicFitOptions {
  /** Confidence rises with the score (default true); false for an uncertainty score. */
  increasing?: boolean;
}

/**
 * A fitted isotonic map given by knots (x_k, y_k), x strictly increasing, y monotone: linear
 * interpolation between knots, clamped to the end values outside [x_0, x_last].
 */
export class IsotonicCalibrator {
  readonly type = 'isotonic' as const;
  readonly x: readonly number[];
  readonly y: readonly number[];

  /** Knots (validated: same length >= 1, finite, x strictly increasing, y in [0, 1] and monotone as `increasing` says). */
  constructor(
    x: readonly number[],
    y: readonly number[],
    readonly increasing = true,
  ) {
    if (x.length === 0 || x.length !== y.length) {
      throw new UqInputError(
        `isotonic: expected x and y of the same length >= 1, found ${x.length} and ${y.length}`,
      );
    }
    for (let k = 0; k < x.length; k++) {
      if (typeof x[k] !== 'number' || !Number.isFinite(x[k])) {
        throw new UqInputError(`isotonic: x[${k}] is not a finite number (${String(x[k])})`);
      }
      if (typeof y[k] !== 'number' || !(y[k]! >= 0 && y[k]! <= 1)) {
        throw new UqInputError(`isotonic: y[${k}] is not a probability in [0, 1] (${String(y[k])})`);
      }
      if (k > 0 && !(x[k]! > x[k - 1]!)) {
        throw new UqInputError(
          `isotonic: x must be strictly increasing, but x[${k}] = ${x[k]} <= x[${k - 1}] = ${x[k - 1]}`,
        );
      }
      if (k > 0 && (increasing ? y[k]! < y[k - 1]! : y[k]! > y[k - 1]!)) {
        throw new UqInputError(
          `isotonic: y must be ${increasing ? 'non-decreasing' : 'non-increasing'}, but y[${k}] = ${y[k]} and y[${k - 1}] = ${y[k - 1]}`,
        );
      }
    }
    this.x = [...x];
    this.y = [...y];
  }

  /** The calibrated confidence of one score (interpolated between knots, clamped outside them). */
  apply(score: number): number {
    const { x, y } = this;
    const last = x.length - 1;
    if (Number.isNaN(score)) return Number.NaN;
    if (score <= x[0]!) return y[0]!;
    if (score >= x[last]!) return y[last]!;
    let lo = 0; // x[lo] < score < x[hi] holds after the checks above
    let hi = last;
    while (hi - lo > 1) {
      const mid = (lo + hi) >> 1;
      if (x[mid]! <= score) lo = mid;
      else hi = mid;
    }
    const t = (score - x[lo]!) / (x[hi]! - x[lo]!);
    return y[lo]! + t * (y[hi]! - y[lo]!);
  }

  /** `{type: 'isotonic', version, params: {x, y, increasing}}`. */
  toJSON(): IsotonicCalibratorJSON {
    return {
      type: 'isotonic',
      version: CALIBRATOR_FORMAT_VERSION,
      params: { x: [...this.x], y: [...this.y], increasing: this.increasing },
    };
  }
}

/** A run of pooled points: total weight, total of y, and the smallest and largest score in it. */
interface Block {
  weight: number;
  sum: number;
  xMin: number;
  xMax: number;
}

/**
 * Fit isotonic regression of `correct` on `scores` (non-decreasing by default; `increasing: false`
 * for an uncertainty). Tied scores are first pooled into one point (their mean correctness, weighted
 * by their count), then pool-adjacent-violators merges neighbouring blocks while their means are out
 * of order (equal neighbours are merged too). Each block becomes knots at its smallest and largest
 * score; between blocks `apply` interpolates linearly and outside the fitted range it clamps
 * (scikit-learn's `out_of_bounds='clip'`).
 */
export function fitIsotonic(
  scores: ArrayLike<number>,
  correct: ArrayLike<boolean | number>,
  options: IsotonicFitOptions = {},
): IsotonicCalibrator {
  checkSameLength(scores, correct, 'fitIsotonic');
  const s = finiteValues(scores, 'fitIsotonic scores');
  const y = binaryValues(correct, 'fitIsotonic correct');
  const n = s.length;
  if (n === 0) throw new UqInputError('fitIsotonic: no scores to fit');
  const increasing = options.increasing ?? true;
  const order = Array.from({ length: n }, (_, i) => i).sort((i, j) => s[i]! - s[j]!);
  // Distinct scores, ascending, each with its count and number correct.
  const points: Block[] = [];
  for (const i of order) {
    const top = points[points.length - 1];
    if (top && top.xMax === s[i]) {
      top.weight++;
      top.sum += y[i]!;
    } else points.push({ weight: 1, sum: y[i]!, xMin: s[i]!, xMax: s[i]! });
  }
  // PAV runs in the direction in which the fit must be non-decreasing.
  if (!increasing) points.reverse();
  const blocks: Block[] = [];
  for (const point of points) {
    let block = { ...point };
    while (blocks.length > 0) {
      const previous = blocks[blocks.length - 1]!;
      if (previous.sum / previous.weight < block.sum / block.weight) break;
      blocks.pop();
      block = {
        weight: previous.weight + block.weight,
        sum: previous.sum + block.sum,
        xMin: Math.min(previous.xMin, block.xMin),
        xMax: Math.max(previous.xMax, block.xMax),
      };
    }
    blocks.push(block);
  }
  if (!increasing) blocks.reverse();
  const knotsX: number[] = [];
  const knotsY: number[] = [];
  for (const block of blocks) {
    const value = block.sum / block.weight;
    knotsX.push(block.xMin);
    knotsY.push(value);
    if (block.xMax > block.xMin) {
      knotsX.push(block.xMax);
      knotsY.push(value);
    }
  }
  return new IsotonicCalibrator(knotsX, knotsY, increasing);
}
