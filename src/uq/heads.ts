/**
 * Learned uncertainty heads: small linear heads on a frozen model's answer features (the mean final
 * hidden state of prompt + answer, standardised), fitted on held-out graded answers. All f64, with
 * analytic gradients (checked against finite differences in the tests) and full-batch Adam.
 *
 * - evidential (Sensoy et al. 2018; "Flexible Visual Recognition by Evidential Modeling of
 *   Confusion and Ignorance"), over K = 2 answer classes (correct, wrong): z = W x + b,
 *   evidence e = softplus(z), alpha = e + 1, S = sum alpha, expected p = alpha / S, vacuity K / S.
 *   Loss per answer: sum_j (y_j - p_j)^2 + p_j (1 - p_j) / (S + 1)  +  lambda_t KL(Dir(alpha~) || Dir(1)),
 *   alpha~ = y + (1 - y) alpha (the true class's evidence removed), lambda_t = min(1, t / anneal).
 *   Score: vacuity K / S (ignorance: little evidence for any class).
 * - deup (Lahlou et al., "DEUP: Direct Epistemic Uncertainty Prediction"): a regressor e^(x) of the
 *   main model's out-of-sample loss, here the 0/1 error 1 - correct of its greedy answer on held-out
 *   data (squared loss, so e^ estimates P(wrong | x)); the aleatoric estimate a(x) = 1 - confidence
 *   (the error the model's own predictive distribution expects, confidence = exp mean log-prob).
 *   Score: e^(x) - a(x).
 * - bayescap (Upadhyay et al., "BayesCap: Bayesian Identity Cap"): a cap on the frozen model's output
 *   y = confidence that reconstructs it and predicts a distribution around it: mu = y + w_mu . x + b_mu
 *   (identity at initialisation), log sigma^2 = w_s . x + b_s; loss per answer
 *   lambda_id (mu - y)^2 + 0.5 ((t - mu)^2 / sigma^2 + log sigma^2), t = correct in {0, 1}
 *   (the generalised Gaussian of the paper with beta = 2). Score: sigma.
 */

/** The head kinds. */
export const HEAD_KINDS = ['evidential', 'deup', 'bayescap'] as const;
export type HeadKind = (typeof HEAD_KINDS)[number];

/** What a head is fitted on per answer. */
export interface HeadExample {
  /** Answer features (the mean hidden state), raw (the head standardises them). */
  features: ArrayLike<number>;
  /** Whether the greedy answer was graded correct. */
  correct: boolean;
  /** exp(mean log-prob) of the answer tokens, in (0, 1]. */
  confidence: number;
}

/** Fitting options. */
export interface HeadFitOptions {
  /** Adam steps over the whole batch (default 300). */
  steps?: number;
  /** Adam learning rate (default 0.01). */
  lr?: number;
  /** L2 penalty on the weights (not biases), default 1e-3. */
  l2?: number;
  /** evidential: steps over which the KL weight grows linearly to 1 (default steps / 2). */
  anneal?: number;
  /** bayescap: weight of the identity term (default 1). */
  identityWeight?: number;
}

/** A fitted head: standardisation and the weights of its outputs (rows of W, one bias each). */
export interface Head {
  kind: HeadKind;
  /** Feature dimension d. */
  dim: number;
  featureMean: Float64Array;
  featureStd: Float64Array;
  /** [outputs, d] row-major. evidential: (correct, wrong); deup: (error); bayescap: (mu, log var). */
  weight: Float64Array;
  bias: Float64Array;
  /** Training options used (recorded in the head file). */
  options: Required<HeadFitOptions>;
  /** The final mean training loss. */
  loss: number;
}

/** Outputs of each kind. */
export function headOutputs(kind: HeadKind): number {
  return kind === 'deup' ? 1 : 2;
}

const softplus = (z: number) => (z > 30 ? z : Math.log1p(Math.exp(z)));
const sigmoid = (z: number) => 1 / (1 + Math.exp(-z));

/** ln Gamma(x), x > 0 (Lanczos, g = 7, n = 9; |error| < 1e-13 relative). */
export function lnGamma(x: number): number {
  if (x < 0.5) return Math.log(Math.PI / Math.abs(Math.sin(Math.PI * x))) - lnGamma(1 - x);
  const c = [
    0.99999999999980993, 676.5203681218851, -1259.1392167224028, 771.32342877765313, -176.61502916214059,
    12.507343278686905, -0.13857109526572012, 9.9843695780195716e-6, 1.5056327351493116e-7,
  ];
  const y = x - 1;
  let a = c[0]!;
  const t = y + 7.5;
  for (let i = 1; i < 9; i++) a += c[i]! / (y + i);
  return 0.5 * Math.log(2 * Math.PI) + (y + 0.5) * Math.log(t) - t + Math.log(a);
}

/** digamma psi(x), x > 0 (recurrence to x >= 12, then the asymptotic series). */
export function digamma(x: number): number {
  let r = 0;
  while (x < 12) {
    r -= 1 / x;
    x += 1;
  }
  const f = 1 / (x * x);
  return r + Math.log(x) - 0.5 / x - f * (1 / 12 - f * (1 / 120 - f * (1 / 252 - f * (1 / 240 - f / 132))));
}

/** trigamma psi'(x), x > 0. */
export function trigamma(x: number): number {
  let r = 0;
  while (x < 12) {
    r += 1 / (x * x);
    x += 1;
  }
  const f = 1 / (x * x);
  return r + 1 / x + f / 2 + (f / x) * (1 / 6 - f * (1 / 30 - f * (1 / 42 - f / 30)));
}

/** The Dirichlet of evidence logits z: alpha, S, expected p, vacuity K / S. */
export function dirichletOf(z: ArrayLike<number>): {
  alpha: number[];
  S: number;
  p: number[];
  vacuity: number;
} {
  const alpha = Array.from(z, (v) => softplus(v) + 1);
  const S = alpha.reduce((a, b) => a + b, 0);
  return { alpha, S, p: alpha.map((a) => a / S), vacuity: alpha.length / S };
}

/** KL(Dir(alpha) || Dir(1, ..., 1)) and its gradient in alpha. */
export function klToUniformDirichlet(alpha: readonly number[]): { kl: number; grad: number[] } {
  const K = alpha.length;
  const S = alpha.reduce((a, b) => a + b, 0);
  let kl = lnGamma(S) - lnGamma(K);
  for (const a of alpha) kl += -lnGamma(a) + (a - 1) * (digamma(a) - digamma(S));
  const tS = trigamma(S);
  const grad = alpha.map((a) => (a - 1) * trigamma(a) - tS * (S - K));
  return { kl, grad };
}

/**
 * The evidential loss of one answer's logits z against the one-hot y, with KL weight `lambda`,
 * and its gradient in z.
 */
export function evidentialLoss(
  z: readonly number[],
  y: readonly number[],
  lambda: number,
): { loss: number; grad: number[] } {
  const K = z.length;
  const { alpha, S, p } = dirichletOf(z);
  let mse = 0;
  let V = 0;
  const g = new Array<number>(K);
  for (let j = 0; j < K; j++) {
    mse += (y[j]! - p[j]!) ** 2 + (p[j]! * (1 - p[j]!)) / (S + 1);
    V += p[j]! * (1 - p[j]!);
    g[j] = -2 * (y[j]! - p[j]!) + (1 - 2 * p[j]!) / (S + 1);
  }
  const gp = g.reduce((acc, gj, j) => acc + gj * p[j]!, 0);
  const dAlpha = alpha.map((_, k) => (g[k]! - gp) / S - V / (S + 1) ** 2);
  const tilde = alpha.map((a, j) => y[j]! + (1 - y[j]!) * a);
  const { kl, grad: dTilde } = klToUniformDirichlet(tilde);
  for (let k = 0; k < K; k++) dAlpha[k]! += lambda * dTilde[k]! * (1 - y[k]!);
  return { loss: mse + lambda * kl, grad: dAlpha.map((d, k) => d * sigmoid(z[k]!)) };
}

/** DEUP's targets of one answer: the out-of-sample error e = 1 - correct and aleatoric a = 1 - confidence. */
export function deupTargets(example: Pick<HeadExample, 'correct' | 'confidence'>): { e: number; a: number } {
  return { e: example.correct ? 0 : 1, a: 1 - example.confidence };
}

/** DEUP's squared loss of the predicted error `out` against e, and its gradient. */
export function deupLoss(out: number, e: number): { loss: number; grad: number } {
  return { loss: (out - e) ** 2, grad: 2 * (out - e) };
}

/**
 * BayesCap's loss of outputs (residual r, log variance s) for frozen output y and target t:
 * mu = y + r; lambda_id (mu - y)^2 + 0.5 ((t - mu)^2 exp(-s) + s); and its gradient in (r, s).
 */
export function bayesCapLoss(
  r: number,
  s: number,
  y: number,
  t: number,
  identityWeight: number,
): { loss: number; grad: [number, number] } {
  const mu = y + r;
  const inv = Math.exp(-s);
  const loss = identityWeight * r * r + 0.5 * ((t - mu) ** 2 * inv + s);
  return { loss, grad: [2 * identityWeight * r - (t - mu) * inv, 0.5 * (1 - (t - mu) ** 2 * inv)] };
}

/** The head's raw outputs on raw features x. */
export function headForward(
  head: Pick<Head, 'dim' | 'featureMean' | 'featureStd' | 'weight' | 'bias'>,
  x: ArrayLike<number>,
): number[] {
  if (x.length !== head.dim)
    throw new RangeError(`uq head: features of length ${x.length}, the head was fitted on ${head.dim}`);
  const outs = head.bias.length;
  const out = Array.from(head.bias);
  for (let o = 0; o < outs; o++) {
    let acc = 0;
    const row = o * head.dim;
    for (let j = 0; j < head.dim; j++)
      acc += head.weight[row + j]! * ((x[j]! - head.featureMean[j]!) / head.featureStd[j]!);
    out[o]! += acc;
  }
  return out;
}

/** The loss of one example given the head's outputs, and its gradient in the outputs. */
export function exampleLoss(
  kind: HeadKind,
  out: readonly number[],
  ex: Pick<HeadExample, 'correct' | 'confidence'>,
  options: { lambda: number; identityWeight: number },
): { loss: number; grad: number[] } {
  if (kind === 'evidential') return evidentialLoss(out, ex.correct ? [1, 0] : [0, 1], options.lambda);
  if (kind === 'deup') {
    const { loss, grad } = deupLoss(out[0]!, deupTargets(ex).e);
    return { loss, grad: [grad] };
  }
  const { loss, grad } = bayesCapLoss(
    out[0]!,
    out[1]!,
    ex.confidence,
    ex.correct ? 1 : 0,
    options.identityWeight,
  );
  return { loss, grad };
}

/** The head's uncertainty score (higher = less sure) on raw features x with the answer's confidence. */
export function headScore(head: Head, x: ArrayLike<number>, confidence: number): number {
  const out = headForward(head, x);
  if (head.kind === 'evidential') return dirichletOf(out).vacuity;
  if (head.kind === 'deup') return out[0]! - (1 - confidence);
  return Math.exp(0.5 * out[1]!);
}

/** Validate the examples: at least 2, equal finite feature lengths, confidence in [0, 1]. */
function checkExamples(examples: readonly HeadExample[]): number {
  if (examples.length < 2)
    throw new RangeError(`uq head: need at least 2 answers to fit on, found ${examples.length}`);
  const d = examples[0]!.features.length;
  examples.forEach((ex, i) => {
    if (ex.features.length !== d)
      throw new RangeError(`uq head: answer ${i + 1} has ${ex.features.length} features, answer 1 has ${d}`);
    if (!(ex.confidence >= 0 && ex.confidence <= 1))
      throw new RangeError(`uq head: answer ${i + 1}: confidence must be in [0, 1], found ${ex.confidence}`);
    for (let j = 0; j < d; j++)
      if (!Number.isFinite(ex.features[j]!))
        throw new RangeError(`uq head: answer ${i + 1}: feature ${j} is not finite (${ex.features[j]})`);
  });
  return d;
}

/** Mean training loss (with the L2 penalty) and its gradient in (weight, bias), features already standardised. */
export function headObjective(
  kind: HeadKind,
  weight: Float64Array,
  bias: Float64Array,
  xs: readonly Float64Array[],
  examples: readonly Pick<HeadExample, 'correct' | 'confidence'>[],
  options: { lambda: number; identityWeight: number; l2: number },
): { loss: number; gWeight: Float64Array; gBias: Float64Array } {
  const outs = bias.length;
  const d = xs[0]!.length;
  const gWeight = new Float64Array(weight.length);
  const gBias = new Float64Array(outs);
  let loss = 0;
  const n = xs.length;
  xs.forEach((x, i) => {
    const out = Array.from(bias);
    for (let o = 0; o < outs; o++) for (let j = 0; j < d; j++) out[o]! += weight[o * d + j]! * x[j]!;
    const r = exampleLoss(kind, out, examples[i]!, options);
    loss += r.loss / n;
    for (let o = 0; o < outs; o++) {
      const g = r.grad[o]! / n;
      gBias[o]! += g;
      for (let j = 0; j < d; j++) gWeight[o * d + j]! += g * x[j]!;
    }
  });
  for (let k = 0; k < weight.length; k++) {
    loss += 0.5 * options.l2 * weight[k]! ** 2;
    gWeight[k]! += options.l2 * weight[k]!;
  }
  return { loss, gWeight, gBias };
}

/**
 * The per-feature mean and population standard deviation (1 where it is 0) of the examples' d
 * features, and each example's features standardised by them (what a head is fitted on).
 */
export function standardised(
  examples: readonly Pick<HeadExample, 'features'>[],
  d: number,
): { featureMean: Float64Array; featureStd: Float64Array; xs: Float64Array[] } {
  const featureMean = new Float64Array(d);
  const featureStd = new Float64Array(d);
  for (const ex of examples) for (let j = 0; j < d; j++) featureMean[j]! += ex.features[j]! / examples.length;
  for (const ex of examples)
    for (let j = 0; j < d; j++) featureStd[j]! += (ex.features[j]! - featureMean[j]!) ** 2 / examples.length;
  for (let j = 0; j < d; j++) featureStd[j] = Math.sqrt(featureStd[j]!) || 1;
  const xs = examples.map((ex) =>
    Float64Array.from({ length: d }, (_, j) => (ex.features[j]! - featureMean[j]!) / featureStd[j]!),
  );
  return { featureMean, featureStd, xs };
}

/** Fit a head of `kind` on graded held-out answers (deterministic: zero init, full-batch Adam). */
export function fitHead(
  kind: HeadKind,
  examples: readonly HeadExample[],
  options: HeadFitOptions = {},
): Head {
  const d = checkExamples(examples);
  const steps = options.steps ?? 300;
  const opts: Required<HeadFitOptions> = {
    steps,
    lr: options.lr ?? 0.01,
    l2: options.l2 ?? 1e-3,
    anneal: options.anneal ?? Math.max(1, Math.floor(steps / 2)),
    identityWeight: options.identityWeight ?? 1,
  };
  for (const [k, v] of Object.entries(opts))
    if (!(Number.isFinite(v) && v >= 0))
      throw new RangeError(`uq head: ${k} must be a finite number >= 0, found ${v}`);
  const { featureMean, featureStd, xs } = standardised(examples, d);
  const outs = headOutputs(kind);
  const params = new Float64Array(outs * d + outs);
  const m = new Float64Array(params.length);
  const v = new Float64Array(params.length);
  const [b1, b2, eps] = [0.9, 0.999, 1e-8];
  let loss = Number.NaN;
  for (let t = 1; t <= opts.steps + 1; t++) {
    const weight = params.subarray(0, outs * d);
    const bias = params.subarray(outs * d);
    const lambda = Math.min(1, (t - 1) / opts.anneal);
    const r = headObjective(kind, weight, bias, xs, examples, {
      lambda,
      identityWeight: opts.identityWeight,
      l2: opts.l2,
    });
    loss = r.loss;
    if (t > opts.steps) break;
    const grad = new Float64Array(params.length);
    grad.set(r.gWeight, 0);
    grad.set(r.gBias, outs * d);
    for (let k = 0; k < params.length; k++) {
      m[k] = b1 * m[k]! + (1 - b1) * grad[k]!;
      v[k] = b2 * v[k]! + (1 - b2) * grad[k]! ** 2;
      params[k]! -= (opts.lr * (m[k]! / (1 - b1 ** t))) / (Math.sqrt(v[k]! / (1 - b2 ** t)) + eps);
    }
  }
  return {
    kind,
    dim: d,
    featureMean,
    featureStd,
    weight: params.slice(0, outs * d),
    bias: params.slice(outs * d),
    options: opts,
    loss,
  };
}
