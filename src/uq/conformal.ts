/**
 * Guaranteed abstention: a confidence threshold t (answer when confidence >= t, abstain below) chosen
 * on calibration data so that a risk stays below alpha on exchangeable test data.
 *   marginal   conformal risk control (Angelopoulos et al. 2022) of the loss 1{answered and wrong}:
 *              the smallest t with (n/(n+1)) R_n(t) + 1/(n+1) <= alpha, so E[loss] <= alpha.
 *   selective  Learn-then-Test (Angelopoulos et al. 2021): the error among answered questions is
 *              <= alpha with probability >= 1 - delta. Each t is a null "error among answered > alpha"
 *              tested with the binomial tail p-value; thresholds are tested from high to low and the
 *              scan stops at the first one not rejected (fixed-sequence testing, no multiplicity cost).
 * When no threshold passes, the answer is to abstain on everything (`threshold: null`).
 */
import { binaryValues, checkSameLength, finiteValues } from './metrics/inputs.ts';
import { UqInputError } from './metrics/result.ts';

/** Which risk the threshold controls. */
export type ConformalGuarantee = 'marginal' | 'selective';

/** The guarantees, in the order docs list them. */
export const CONFORMAL_GUARANTEES: readonly ConformalGuarantee[] = ['marginal', 'selective'];

/** Options of `conformalThreshold`. */
export interface ConformalOptions {
  /** The risk level in (0, 1). */
  alpha: number;
  /** Default 'marginal'. */
  guarantee?: ConformalGuarantee;
  /** For 'selective': the failure probability in (0, 1); default 0.1. */
  delta?: number;
}

/** What a threshold does on a set of labelled confidences. */
export interface AbstentionOutcome {
  n: number;
  /** Questions answered (confidence >= threshold). */
  answered: number;
  /** answered / n (null when n = 0). */
  coverage: number | null;
  /** Mean of 1{answered and wrong} over all n (null when n = 0). */
  risk: number | null;
  /** Wrong among answered / answered (null when nothing is answered). */
  selectiveRisk: number | null;
}

/** A chosen threshold and what it does on the calibration data. */
export interface ConformalResult {
  guarantee: ConformalGuarantee;
  alpha: number;
  /** Only for 'selective'. */
  delta: number | null;
  /** Answer when confidence >= threshold; null = no threshold passes: abstain on everything. */
  threshold: number | null;
  /** The calibration outcome at the threshold. */
  calibration: AbstentionOutcome;
  /**
   * marginal: the conformal bound (n R_n(t) + 1) / (n + 1) at the threshold; selective: the
   * Clopper-Pearson upper (1 - delta) bound on the error among answered. Null when abstaining on all.
   */
  bound: number | null;
  /** Set when abstaining on everything: why. */
  note: string | null;
}

function checkLevel(value: number, name: string): void {
  if (!(value > 0 && value < 1))
    throw new UqInputError(`conformal ${name}: expected a number in (0, 1), found ${value}`);
}

/** Apply `threshold` (null = abstain on everything) to labelled confidences. */
export function abstentionOutcome(
  confidence: ArrayLike<number>,
  correct: ArrayLike<boolean | number>,
  threshold: number | null,
): AbstentionOutcome {
  checkSameLength(confidence, correct, 'abstentionOutcome');
  const c = finiteValues(confidence, 'abstentionOutcome confidence');
  const y = binaryValues(correct, 'abstentionOutcome correct');
  const n = c.length;
  let answered = 0;
  let wrong = 0;
  for (let i = 0; i < n; i++) {
    if (threshold === null || !(c[i]! >= threshold)) continue;
    answered++;
    if (y[i] === 0) wrong++;
  }
  return {
    n,
    answered,
    coverage: n > 0 ? answered / n : null,
    risk: n > 0 ? wrong / n : null,
    selectiveRisk: answered > 0 ? wrong / answered : null,
  };
}

/**
 * P(Binomial(k, p) <= e): the binomial lower tail, summed in log space (exact for any k; p in [0, 1]).
 */
export function binomialCdf(e: number, k: number, p: number): number {
  if (!Number.isInteger(k) || k < 0 || !Number.isInteger(e)) {
    throw new UqInputError(`binomialCdf: expected integers k >= 0 and e, found e=${e}, k=${k}`);
  }
  if (e < 0) return 0;
  if (e >= k) return 1;
  if (p <= 0) return 1;
  if (p >= 1) return 0;
  // log of C(k, j) p^j (1-p)^(k-j), term by term; then log-sum-exp
  const logRatio = Math.log(p) - Math.log1p(-p);
  let logTerm = k * Math.log1p(-p);
  const logs: number[] = [logTerm];
  for (let j = 0; j < e; j++) {
    logTerm += Math.log((k - j) / (j + 1)) + logRatio;
    logs.push(logTerm);
  }
  const max = Math.max(...logs);
  let sum = 0;
  for (const l of logs) sum += Math.exp(l - max);
  return Math.min(1, Math.exp(max + Math.log(sum)));
}

/**
 * The Clopper-Pearson upper confidence bound at level 1 - delta on a binomial rate after e
 * failures in k trials: the p with P(Binomial(k, p) <= e) = delta (1 when e = k), by bisection.
 */
export function clopperPearsonUpper(e: number, k: number, delta: number): number {
  checkLevel(delta, 'delta');
  if (k === 0 || e >= k) return 1;
  let lo = e / k;
  let hi = 1;
  for (let i = 0; i < 200 && hi - lo > 1e-15; i++) {
    const mid = (lo + hi) / 2;
    if (binomialCdf(e, k, mid) > delta) lo = mid;
    else hi = mid;
  }
  return hi;
}

/** Indices grouped by distinct confidence, highest confidence first. */
function groupsDescending(c: ArrayLike<number>): { value: number; members: number[] }[] {
  const order = Array.from({ length: c.length }, (_, i) => i).sort((i, j) => c[j]! - c[i]!);
  const groups: { value: number; members: number[] }[] = [];
  for (const i of order) {
    const last = groups[groups.length - 1];
    if (last && last.value === c[i]) last.members.push(i);
    else groups.push({ value: c[i]!, members: [i] });
  }
  return groups;
}

/**
 * Choose the abstention threshold on calibration data (see the file comment for both guarantees).
 * Candidate thresholds are the distinct confidences, so tied confidences are answered or abstained
 * together. marginal: the smallest candidate t with (sum_i 1{c_i >= t, wrong_i} + 1) / (n + 1) <=
 * alpha (the loss is monotone in t, so every larger t passes too). selective: going down the
 * candidates from the highest, t passes while the binomial p-value P(Bin(k_t, alpha) <= e_t) <= delta
 * (k_t answered, e_t wrong among them); the last one that passes is chosen. No passing candidate
 * (e.g. alpha < 1/(n+1) for marginal) gives threshold null: abstain on everything, with a note.
 */
export function conformalThreshold(
  confidence: ArrayLike<number>,
  correct: ArrayLike<boolean | number>,
  options: ConformalOptions,
): ConformalResult {
  checkSameLength(confidence, correct, 'conformalThreshold');
  const c = finiteValues(confidence, 'conformalThreshold confidence');
  const y = binaryValues(correct, 'conformalThreshold correct');
  const guarantee = options.guarantee ?? 'marginal';
  if (!CONFORMAL_GUARANTEES.includes(guarantee)) {
    throw new UqInputError(
      `conformal guarantee: expected ${CONFORMAL_GUARANTEES.join(' or ')}, found ${String(guarantee)}`,
    );
  }
  const alpha = options.alpha;
  checkLevel(alpha, 'alpha');
  const delta = guarantee === 'selective' ? (options.delta ?? 0.1) : null;
  if (delta !== null) checkLevel(delta, 'delta');
  const n = c.length;
  if (n === 0) throw new UqInputError('conformalThreshold: no calibration predictions');
  const groups = groupsDescending(c);
  let threshold: number | null = null;
  let bound: number | null = null;
  // running counts of answered and wrong while t moves down through the groups
  let answered = 0;
  let wrong = 0;
  for (const group of groups) {
    answered += group.members.length;
    for (const i of group.members) if (y[i] === 0) wrong++;
    if (guarantee === 'marginal') {
      const adjusted = (wrong + 1) / (n + 1);
      if (adjusted > alpha) break; // the loss only grows as t goes down
      threshold = group.value;
      bound = adjusted;
    } else {
      if (binomialCdf(wrong, answered, alpha) > delta!) break; // fixed sequence: stop at the first failure
      threshold = group.value;
      bound = clopperPearsonUpper(wrong, answered, delta!);
    }
  }
  let note: string | null = null;
  if (threshold === null) {
    note =
      guarantee === 'marginal'
        ? `no threshold satisfies alpha = ${alpha} on ${n} calibration predictions (even answering only the most confident gives a bound above alpha${alpha < 1 / (n + 1) ? `; alpha < 1/(n+1) = ${(1 / (n + 1)).toPrecision(4)} cannot be met at this n` : ''}): abstain on every question`
        : `no threshold bounds the error among answered at alpha = ${alpha} with probability ${1 - delta!} on ${n} calibration predictions (the most confident group already fails the binomial test): abstain on every question`;
  }
  return {
    guarantee,
    alpha,
    delta,
    threshold,
    calibration: abstentionOutcome(c, y, threshold),
    bound,
    note,
  };
}
