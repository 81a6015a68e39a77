/**
 * MC dropout (METHODS.md §1): T teacher-forced passes over prompt + answer with dropout forced on
 * at `rate` at every dropout site of the model (attention probabilities, residual stream, LoRA
 * inputs). Per answer token, with p_t the predictive distribution of pass t:
 *   predictive entropy  H[mean_t p_t]
 *   expected entropy    mean_t H[p_t]
 *   mutual information  predictive - expected   (epistemic part)
 * averaged over the answer tokens; plus the mean and variance over passes of the answer's NLL.
 * Masks are reproducible: pass t of seed s uses fixed dropout stream offsets.
 */
import type { CausalLM } from '../models/index.ts';
import { forceDropout, mixSeed } from '../nn/index.ts';
import { fromArray, noGrad, scope, slice } from '../tensor/index.ts';

export interface McDropoutOptions {
  /** Passes T (default 10). */
  passes?: number;
  /** Dropout rate forced at every site (default 0.1). */
  rate?: number;
  seed?: number;
}

export interface McDropoutScores {
  predictive_entropy: number;
  expected_entropy: number;
  mutual_information: number;
  nll_mean: number;
  nll_variance: number;
}

function entropyOf(p: Float64Array): number {
  let h = 0;
  for (let i = 0; i < p.length; i++) if (p[i]! > 0) h -= p[i]! * Math.log(p[i]!);
  return h;
}

/** MC-dropout scores of `answerIds` after `promptIds`; the model's dropout state is restored after. */
export function mcDropoutScores(
  model: CausalLM,
  promptIds: readonly number[],
  answerIds: readonly number[],
  options: McDropoutOptions = {},
): McDropoutScores {
  const passes = options.passes ?? 10;
  const rate = options.rate ?? 0.1;
  const seed = Math.abs(Math.trunc(options.seed ?? 0)) % 100000;
  const n = answerIds.length;
  if (n === 0)
    return {
      predictive_entropy: 0,
      expected_entropy: 0,
      mutual_information: 0,
      nll_mean: 0,
      nll_variance: 0,
    };
  const ids = [...promptIds, ...answerIds];
  const P = promptIds.length;
  const V = model.config.vocabSize;
  const drops = model.dropoutSites().map(([, d]) => d);
  const savedKey = model.dropoutKey();
  const savedForced = drops.map((d) => d.forcedRate);
  const meanP = Array.from({ length: n }, () => new Float64Array(V));
  let expectedEntropy = 0;
  const nlls: number[] = [];
  forceDropout(model, rate);
  try {
    for (let pass = 0; pass < passes; pass++) {
      model.setDropoutKey(mixSeed(seed >>> 0, pass));
      const probs = noGrad(() =>
        scope(() => {
          const hidden = model.forwardHidden(
            fromArray(Int32Array.from(ids), [1, ids.length], { dtype: 'i32' }),
          );
          const logits = model.logits(slice(hidden, 1, P - 1, ids.length - 1));
          return Float64Array.from(logits.data as Float32Array);
        }),
      );
      let nll = 0;
      for (let t = 0; t < n; t++) {
        const row = probs.subarray(t * V, (t + 1) * V);
        let max = -Infinity;
        for (let v = 0; v < V; v++) if (row[v]! > max) max = row[v]!;
        let sum = 0;
        for (let v = 0; v < V; v++) sum += row[v] = Math.exp(row[v]! - max);
        for (let v = 0; v < V; v++) row[v]! /= sum;
        expectedEntropy += entropyOf(row) / (n * passes);
        const mp = meanP[t]!;
        for (let v = 0; v < V; v++) mp[v]! += row[v]! / passes;
        nll -= Math.log(Math.max(row[answerIds[t]!]!, 1e-300));
      }
      nlls.push(nll);
    }
  } finally {
    model.setDropoutKey(savedKey);
    drops.forEach((d, i) => {
      d.force(savedForced[i]!);
    });
  }
  const predictive = meanP.reduce((s, p) => s + entropyOf(p), 0) / n;
  const nllMean = nlls.reduce((s, v) => s + v, 0) / passes;
  const nllVariance = nlls.reduce((s, v) => s + (v - nllMean) ** 2, 0) / passes;
  return {
    predictive_entropy: predictive,
    expected_entropy: expectedEntropy,
    mutual_information: predictive - expectedEntropy,
    nll_mean: nllMean,
    nll_variance: nllVariance,
  };
}
