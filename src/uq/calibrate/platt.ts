/**
 * Platt scaling: a logistic regression of correctness on one scalar score,
 * p(correct | s) = 1 / (1 + exp(-(a s + b))). Fitted by Newton's method (IRLS) with a small ridge.
 */
import { binaryValues, checkSameLength, finiteValues } from '../metrics/inputs.ts';
import { UqInputError } from '../metrics/result.ts';
import { CALIBRATOR_FORMAT_VERSION, type CalibratorJSON } from './format.ts';

/** Platt scaling as JSON: p = sigmoid(a * score + b). */
export type PlattCalibratorJSON = CalibratorJSON<'platt', { a: number; b: number }>;

/** Options of `fitPlatt`. */
export interface PlattFitOptions {
  /** Ridge penalty (lambda / 2)(a'^2 + b'^2) on the standardised coefficients; default 1e-4. */
  ridge?: number;
  /** Newton iterations at most; default 100. */
  maxIterations?: number;
}

function sigmoid(z: number): number {
  if (z >= 0) return 1 / (1 + Math.exp(-z));
  const e = Math.exp(z);
  return e / (1 + e);
}

/** log(1 + exp(z)) without overflow. */
function softplus(z: number): number {
  return z > 0 ? z + Math.log1p(Math.exp(-z)) : Math.log1p(Math.exp(z));
}

/** A fitted Platt scaling: `apply(score)` = sigmoid(a * score + b), a confidence in [0, 1]. */
export class PlattCalibrator {
  readonly type = 'platt' as const;

  /** p = sigmoid(a * score + b); `a` and `b` must be finite (a < 0 when the score is an uncertainty). */
  constructor(
    readonly a: number,
    readonly b: number,
  ) {
    if (!Number.isFinite(a) || !Number.isFinite(b)) {
      throw new UqInputError(`platt: expected finite a and b, found a=${a}, b=${b}`);
    }
  }

  /** The calibrated confidence of one score. */
  apply(score: number): number {
    return sigmoid(this.a * score + this.b);
  }

  /** `{type: 'platt', version, params: {a, b}}`. */
  toJSON(): PlattCalibratorJSON {
    return { type: 'platt', version: CALIBRATOR_FORMAT_VERSION, params: { a: this.a, b: this.b } };
  }
}

/**
 * Fit Platt scaling of `correct` on `scores` (either direction: a comes out negative for an
 * uncertainty). The score is standardised (s' = (s - mean) / sd) and (a', b') minimise
 * mean log-loss + (ridge / 2)(a'^2 + b'^2) by Newton's method with a backtracking line search
 * (IRLS); then a = a' / sd and b = b' - a' mean / sd. The ridge (default 1e-4) keeps the fit finite
 * when the classes are separable or only one is present; it is negligible otherwise. A constant
 * score gives a = 0 and b = the (ridged) log-odds of being correct.
 */
export function fitPlatt(
  scores: ArrayLike<number>,
  correct: ArrayLike<boolean | number>,
  options: PlattFitOptions = {},
): PlattCalibrator {
  checkSameLength(scores, correct, 'fitPlatt');
  const s = finiteValues(scores, 'fitPlatt scores');
  const y = binaryValues(correct, 'fitPlatt correct');
  const n = s.length;
  if (n === 0) throw new UqInputError('fitPlatt: no scores to fit');
  const ridge = options.ridge ?? 1e-4;
  const maxIterations = options.maxIterations ?? 100;
  if (!(ridge > 0 && Number.isFinite(ridge)))
    throw new UqInputError(`fitPlatt ridge: expected > 0, found ${ridge}`);
  let mean = 0;
  for (const v of s) mean += v;
  mean /= n;
  let variance = 0;
  for (const v of s) variance += (v - mean) ** 2;
  const sd = Math.sqrt(variance / n);
  const x = s.map((v) => (sd > 0 ? (v - mean) / sd : 0));
  const objective = (a: number, b: number): number => {
    let total = 0;
    for (let i = 0; i < n; i++) {
      const z = a * x[i]! + b;
      total += softplus(z) - y[i]! * z;
    }
    return total / n + (ridge / 2) * (a * a + b * b);
  };
  let a = 0;
  let b = 0;
  let current = objective(a, b);
  for (let iteration = 0; iteration < maxIterations; iteration++) {
    let ga = 0;
    let gb = 0;
    let haa = 0;
    let hab = 0;
    let hbb = 0;
    for (let i = 0; i < n; i++) {
      const p = sigmoid(a * x[i]! + b);
      const r = p - y[i]!;
      const w = p * (1 - p);
      ga += r * x[i]!;
      gb += r;
      haa += w * x[i]! * x[i]!;
      hab += w * x[i]!;
      hbb += w;
    }
    ga = ga / n + ridge * a;
    gb = gb / n + ridge * b;
    haa = haa / n + ridge;
    hab /= n;
    hbb = hbb / n + ridge;
    if (Math.max(Math.abs(ga), Math.abs(gb)) < 1e-12) break;
    const det = haa * hbb - hab * hab;
    const da = -(hbb * ga - hab * gb) / det;
    const db = -(haa * gb - hab * ga) / det;
    let step = 1;
    let next = objective(a + da, b + db);
    while (next > current && step > 1e-10) {
      step /= 2;
      next = objective(a + step * da, b + step * db);
    }
    if (next > current) break;
    a += step * da;
    b += step * db;
    const improvement = current - next;
    current = next;
    if (improvement <= 1e-15 * Math.max(1, Math.abs(current))) break;
  }
  if (sd === 0) return new PlattCalibrator(0, b);
  return new PlattCalibrator(a / sd, b - (a * mean) / sd);
}
