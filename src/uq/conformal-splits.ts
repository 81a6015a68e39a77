/**
 * The conformal headline: how the abstention threshold's realised risk on unseen data compares with
 * alpha, over random calibration/test splits of one set of predictions (seeded).
 */
import { Rng } from '../tensor/index.ts';
import { abstentionOutcome, type ConformalOptions, conformalThreshold } from './conformal.ts';
import { binaryValues, checkSameLength, finiteValues } from './metrics/inputs.ts';
import { UqInputError } from './metrics/result.ts';
import type { Prediction } from './predict.ts';

/** Options of `conformalSplits`. */
export interface ConformalSplitOptions extends ConformalOptions {
  /** Random splits; default 20. */
  splits?: number;
  /** Share of the predictions used to calibrate (the rest is the test set); default 0.5. */
  calibrationFraction?: number;
  /** Seed of the split permutations; default 0. */
  seed?: number;
}

/** Mean and (population) standard deviation over the splits where a value is defined. */
export interface SpreadStat {
  mean: number | null;
  std: number | null;
  /** Splits that contributed (a selective risk is undefined when a split answers nothing). */
  count: number;
}

/** One split's threshold and its test outcome. */
export interface SplitOutcome {
  threshold: number | null;
  /** Realised risk on the test half: marginal 1{answered and wrong} mean, selective error among answered. */
  risk: number | null;
  coverage: number | null;
}

/** The headline: realised test risk and coverage over the splits, against alpha. */
export interface ConformalSplitSummary {
  guarantee: 'marginal' | 'selective';
  alpha: number;
  delta: number | null;
  splits: number;
  nCalibration: number;
  nTest: number;
  risk: SpreadStat;
  coverage: SpreadStat;
  /** Share of splits whose realised risk exceeds alpha (selective: should be about <= delta). */
  violations: number;
  perSplit: SplitOutcome[];
}

function spread(values: readonly (number | null)[]): SpreadStat {
  const xs = values.filter((v): v is number => v !== null);
  if (xs.length === 0) return { mean: null, std: null, count: 0 };
  const mean = xs.reduce((s, v) => s + v, 0) / xs.length;
  const variance = xs.reduce((s, v) => s + (v - mean) ** 2, 0) / xs.length;
  return { mean, std: Math.sqrt(variance), count: xs.length };
}

/** A seeded Fisher-Yates permutation of 0..n-1. */
function permutation(n: number, rng: Rng): number[] {
  const p = Array.from({ length: n }, (_, i) => i);
  for (let i = n - 1; i > 0; i--) {
    const j = Math.floor(rng.uniform() * (i + 1));
    [p[i], p[j]] = [p[j]!, p[i]!];
  }
  return p;
}

/**
 * Split the predictions at random `splits` times (seeded), choose the threshold on the calibration
 * part with `conformalThreshold`, and measure the risk the guarantee is about on the test part.
 * Marginal risk control promises a mean realised risk <= alpha; selective promises risk <= alpha in
 * at least 1 - delta of the splits (`violations` is the share above alpha).
 */
export function conformalSplits(
  confidence: ArrayLike<number>,
  correct: ArrayLike<boolean | number>,
  options: ConformalSplitOptions,
): ConformalSplitSummary {
  checkSameLength(confidence, correct, 'conformalSplits');
  const c = finiteValues(confidence, 'conformalSplits confidence');
  const y = binaryValues(correct, 'conformalSplits correct');
  const splits = options.splits ?? 20;
  const fraction = options.calibrationFraction ?? 0.5;
  if (!Number.isInteger(splits) || splits < 1)
    throw new UqInputError(`conformalSplits splits: expected an integer >= 1, found ${splits}`);
  if (!(fraction > 0 && fraction < 1))
    throw new UqInputError(
      `conformalSplits calibrationFraction: expected a number in (0, 1), found ${fraction}`,
    );
  const n = c.length;
  const nCalibration = Math.round(n * fraction);
  if (nCalibration < 1 || n - nCalibration < 1) {
    throw new UqInputError(
      `conformalSplits: ${n} predictions leave no calibration or no test part at fraction ${fraction}`,
    );
  }
  const rng = new Rng(options.seed ?? 0);
  const guarantee = options.guarantee ?? 'marginal';
  const perSplit: SplitOutcome[] = [];
  let delta: number | null = null;
  for (let s = 0; s < splits; s++) {
    const p = permutation(n, rng);
    const cal = p.slice(0, nCalibration);
    const test = p.slice(nCalibration);
    const chosen = conformalThreshold(
      cal.map((i) => c[i]!),
      cal.map((i) => y[i]!),
      options,
    );
    delta = chosen.delta;
    const outcome = abstentionOutcome(
      test.map((i) => c[i]!),
      test.map((i) => y[i]!),
      chosen.threshold,
    );
    perSplit.push({
      threshold: chosen.threshold,
      risk: guarantee === 'marginal' ? outcome.risk : outcome.selectiveRisk,
      coverage: outcome.coverage,
    });
  }
  const risk = spread(perSplit.map((o) => o.risk));
  const violated = perSplit.filter((o) => o.risk !== null && o.risk > options.alpha).length;
  return {
    guarantee,
    alpha: options.alpha,
    delta,
    splits,
    nCalibration,
    nTest: n - nCalibration,
    risk,
    coverage: spread(perSplit.map((o) => o.coverage)),
    violations: violated / splits,
    perSplit,
  };
}

/** `conformalSplits` of graded predictions (`attune eval`'s): their confidence and correctness. */
export function conformalSplitsOfPredictions(
  predictions: readonly Pick<Prediction, 'confidence' | 'correct'>[],
  options: ConformalSplitOptions,
): ConformalSplitSummary {
  return conformalSplits(
    predictions.map((p) => p.confidence),
    predictions.map((p) => p.correct),
    options,
  );
}
