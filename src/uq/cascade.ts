/**
 * Cascades ("Language Model Cascades: Token-level uncertainty and beyond", METHODS.md §1): the
 * small model answers; the large one is asked when the small model's confidence s(x) is low.
 * Deferral rules (confidence, higher = keep the small answer):
 *   chow_sum        sum_t l_t
 *   chow_average    mean_t l_t
 *   chow_quantile_a quantile_a(l_t) for a in {0, 0.1, ..., 1}
 *   post_hoc_mlp    a small MLP on the quantile vector fitted on a held-out split, with one of two
 *                   targets: `better` (default, METHODS.md §1) = 1{q_large > q_small} by logistic
 *                   loss, confidence -P(large better); `diff` = q_large - q_small by squared loss
 *                   (the expected quality gain of deferring), confidence -predicted gain
 * Quality is exact match (0/1) or graded (ROUGE-L F of the answer vs the gold, in [0, 1]); the
 * curves average it either way.
 * Deferral curve: quality vs deferral rate, deferring the lowest-confidence examples first (ties
 * averaged); AUC-DF is the trapezoid area over rate in [0, 1]. Random deferral is the straight line
 * between the two models' qualities; the oracle defers exactly where the large model is better.
 */
import { Linear, Module } from '../nn/index.ts';
import {
  backward,
  fromArray,
  mean,
  mul,
  Rng,
  scope,
  sigmoid,
  softplus,
  sub,
  type Tensor,
  tanh,
} from '../tensor/index.ts';
import { AdamW } from '../train/optim/index.ts';
import { rougeL } from './grade.ts';
import { quantile } from './scores.ts';

/** One example as the cascade sees it. */
export interface CascadeExample {
  /** Small model's answer-token log-probs. */
  logprobs: readonly number[];
  /** Quality of the small and large answers in [0, 1] (exact: 1 = correct; rougeL: graded). */
  smallQuality: number;
  largeQuality: number;
}

export const QUANTILE_GRID = [0, 0.1, 0.2, 0.3, 0.4, 0.5, 0.6, 0.7, 0.8, 0.9, 1] as const;

/** The quantile feature vector of an example's log-probs (zeros for an empty answer). */
export function quantileFeatures(logprobs: readonly number[]): number[] {
  return QUANTILE_GRID.map((a) => (logprobs.length === 0 ? 0 : quantile(logprobs, a)));
}

export interface DeferralCurve {
  /** Deferral rates 0, 1/N, ..., 1. */
  rates: number[];
  quality: number[];
  aucDf: number;
}

/**
 * Quality of the cascade at every deferral count k = 0..N when the k lowest-confidence examples go
 * to the large model (ties in confidence share the expected quality).
 */
export function deferralCurve(
  confidence: readonly number[],
  examples: readonly CascadeExample[],
): DeferralCurve {
  const n = examples.length;
  const order = examples.map((_, i) => i).sort((a, b) => confidence[a]! - confidence[b]!);
  const gain = order.map((i) => examples[i]!.largeQuality - examples[i]!.smallQuality);
  // average the gain within tie groups (expected value under random tie-breaking)
  for (let i = 0; i < n; ) {
    let j = i;
    while (j + 1 < n && confidence[order[j + 1]!] === confidence[order[i]!]) j++;
    const avg = gain.slice(i, j + 1).reduce((s, g) => s + g, 0) / (j - i + 1);
    for (let k = i; k <= j; k++) gain[k] = avg;
    i = j + 1;
  }
  const base = examples.reduce((s, e) => s + e.smallQuality, 0);
  const rates = [0];
  const quality = [n > 0 ? base / n : 0];
  let cur = base;
  for (let k = 1; k <= n; k++) {
    cur += gain[k - 1]!;
    rates.push(k / n);
    quality.push(cur / n);
  }
  let auc = 0;
  for (let k = 1; k < rates.length; k++)
    auc += ((rates[k]! - rates[k - 1]!) * (quality[k]! + quality[k - 1]!)) / 2;
  return { rates, quality, aucDf: auc };
}

/** Random deferral: AUC of the straight line between small-only and large-only quality. */
export function randomAucDf(examples: readonly CascadeExample[]): number {
  const n = Math.max(1, examples.length);
  const qs = examples.reduce((s, e) => s + e.smallQuality, 0) / n;
  const ql = examples.reduce((s, e) => s + e.largeQuality, 0) / n;
  return (qs + ql) / 2;
}

/** Oracle deferral: defer first where the large model gains most. */
export function oracleCurve(examples: readonly CascadeExample[]): DeferralCurve {
  return deferralCurve(
    examples.map((e) => e.smallQuality - e.largeQuality),
    examples,
  );
}

class QuantileMlp extends Module {
  readonly hidden: Linear;
  readonly out: Linear;
  constructor(rng: Rng) {
    super();
    this.hidden = this.registerModule('hidden', new Linear(QUANTILE_GRID.length, 16, { rng }));
    this.out = this.registerModule('out', new Linear(16, 1, { rng }));
  }
  forward(x: Tensor): Tensor {
    return this.out.forward(tanh(this.hidden.forward(x)));
  }
}

/** What the post-hoc MLP is fitted to predict (METHODS.md §1; default `better`). */
export type PostHocTarget = 'better' | 'diff';

/** The post-hoc targets, default first. */
export const POST_HOC_TARGETS: readonly PostHocTarget[] = ['better', 'diff'];

/** The post-hoc MLP's regression target of one example under `target`. */
export function postHocTargetValue(e: CascadeExample, target: PostHocTarget): number {
  if (target === 'diff') return e.largeQuality - e.smallQuality;
  return e.largeQuality > e.smallQuality ? 1 : 0;
}

/**
 * A fitted post-hoc deferral rule. `deferralScore` is higher where deferring pays more: P(large
 * better) for the `better` target, the predicted quality gain q_large - q_small for `diff`.
 */
export interface PostHocRule {
  target: PostHocTarget;
  deferralScore(logprobs: readonly number[]): number;
}

/**
 * Fit the post-hoc MLP with AdamW on `train`: logistic loss on 1{q_large > q_small} (`better`,
 * the default) or squared loss on q_large - q_small (`diff`).
 */
export function fitPostHocRule(
  train: readonly CascadeExample[],
  options: { seed?: number; steps?: number; target?: PostHocTarget } = {},
): PostHocRule {
  const target = options.target ?? 'better';
  const rng = new Rng(options.seed ?? 0);
  const model = new QuantileMlp(rng);
  const feats = train.map((e) => quantileFeatures(e.logprobs));
  const x = fromArray(feats.flat(), [train.length, QUANTILE_GRID.length], { track: false });
  const y = fromArray(
    train.map((e) => postHocTargetValue(e, target)),
    [train.length, 1],
    { track: false },
  );
  const optimizer = new AdamW(model.parameters(), { lr: 0.02, weightDecay: 0 });
  for (let step = 0; step < (options.steps ?? 300); step++) {
    scope(() => {
      const z = model.forward(x);
      const loss =
        target === 'diff'
          ? // squared error of the predicted gain
            mean(mul(sub(z, y), sub(z, y)))
          : // binary cross-entropy with logits: softplus(z) - y z
            mean(sub(softplus(z), mul(y, z)));
      backward(loss);
    });
    optimizer.step();
    optimizer.zeroGrad();
  }
  return {
    target,
    deferralScore(logprobs) {
      return scope(() => {
        const z = model.forward(fromArray(quantileFeatures(logprobs), [1, QUANTILE_GRID.length]));
        return target === 'diff' ? z.item() : sigmoid(z).item();
      });
    },
  };
}

/** A deferral curve as reported: quality at each deferral rate. */
export interface ReportedCurve {
  rates: number[];
  quality: number[];
}

export interface CascadeReport {
  n: number;
  /** Mean quality of the small / large model alone (accuracy under exact match). */
  small_accuracy: number;
  large_accuracy: number;
  random_auc_df: number;
  oracle_auc_df: number;
  /** The two reference curves: random deferral (the straight line) and the oracle. */
  random_curve: ReportedCurve;
  oracle_curve: ReportedCurve;
  post_hoc_target: PostHocTarget;
  methods: Record<string, { auc_df: number; curve: ReportedCurve }>;
}

/** Deferral curves and AUC-DF of every rule on `test` (the MLP is fitted on `heldOut`). */
export function evaluateCascade(
  heldOut: readonly CascadeExample[],
  test: readonly CascadeExample[],
  options: { seed?: number; target?: PostHocTarget } = {},
): CascadeReport {
  const rule = fitPostHocRule(heldOut, options);
  const confidences: Record<string, number[]> = {
    chow_sum: test.map((e) => e.logprobs.reduce((s, v) => s + v, 0)),
    chow_average: test.map((e) =>
      e.logprobs.length ? e.logprobs.reduce((s, v) => s + v, 0) / e.logprobs.length : 0,
    ),
  };
  for (const a of QUANTILE_GRID) {
    confidences[`chow_quantile_${a}`] = test.map((e) => (e.logprobs.length ? quantile(e.logprobs, a) : 0));
  }
  confidences.post_hoc_mlp = test.map((e) => -rule.deferralScore(e.logprobs));
  const methods: CascadeReport['methods'] = {};
  for (const [name, conf] of Object.entries(confidences)) {
    const c = deferralCurve(conf, test);
    methods[name] = { auc_df: c.aucDf, curve: { rates: c.rates, quality: c.quality } };
  }
  const n = Math.max(1, test.length);
  const small = test.reduce((s, e) => s + e.smallQuality, 0) / n;
  const large = test.reduce((s, e) => s + e.largeQuality, 0) / n;
  const oracle = oracleCurve(test);
  return {
    n: test.length,
    small_accuracy: small,
    large_accuracy: large,
    random_auc_df: randomAucDf(test),
    oracle_auc_df: oracle.aucDf,
    random_curve: { rates: [0, 1], quality: [small, large] },
    oracle_curve: { rates: oracle.rates, quality: oracle.quality },
    post_hoc_target: rule.target,
    methods,
  };
}

/** How an answer's quality is measured: exact match (0/1) or graded ROUGE-L F vs the gold. */
export type CascadeQuality = 'exact' | 'rougeL';

/** The quality measures, default first. */
export const CASCADE_QUALITIES: readonly CascadeQuality[] = ['exact', 'rougeL'];

/** A graded prediction as the cascade reads it. */
export interface CascadePrediction {
  logprobs: number[];
  correct: boolean;
  answer: string;
  reference: string;
  /** Record fields; `answerable: false` marks a question with no right answer (quality 0). */
  extra?: Record<string, unknown>;
}

/**
 * The quality of one prediction: `exact` is its graded correctness (1/0); `rougeL` the ROUGE-L F
 * of the answer vs the reference (0 for an unanswerable record, as eval grades it wrong).
 */
export function answerQuality(p: CascadePrediction, quality: CascadeQuality): number {
  if (quality === 'exact') return p.correct ? 1 : 0;
  if (p.extra?.answerable === false) return 0;
  return rougeL(p.answer, p.reference);
}

/** Cascade examples from the two models' graded predictions of the same records (same order). */
export function cascadeExamples(
  small: readonly CascadePrediction[],
  large: readonly CascadePrediction[],
  quality: CascadeQuality = 'exact',
): CascadeExample[] {
  if (small.length !== large.length)
    throw new RangeError(`cascade: ${small.length} small predictions vs ${large.length} large`);
  return small.map((s, i) => ({
    logprobs: s.logprobs,
    smallQuality: answerQuality(s, quality),
    largeQuality: answerQuality(large[i]!, quality),
  }));
}

/** Split examples into a held-out half (to fit the post-hoc rule) and a test half, seeded. */
export function splitHeldOut(
  examples: readonly CascadeExample[],
  seed: number,
): { heldOut: CascadeExample[]; test: CascadeExample[] } {
  const order = new Rng(seed).shuffle(examples.map((_, i) => i));
  const half = Math.floor(examples.length / 2);
  return {
    heldOut: order.slice(0, half).map((i) => examples[i]!),
    test: order.slice(half).map((i) => examples[i]!),
  };
}
