/**
 * `dpo` — Direct Preference Optimization (Rafailov et al. 2023) and IPO (Azar et al. 2023) on
 * preference pairs (data/preference.ts: chosen at example 2k, rejected at 2k + 1, kept in one
 * micro-batch by the loader's groupSize 2). With s(y) = log pi(y | x), the sum of the response's
 * token log-probs (or their mean with `length_normalize`), and the reference's s_ref(y):
 *
 *   d = (s(chosen) - s_ref(chosen)) - (s(rejected) - s_ref(rejected))
 *   sigmoid: L = -(1 - eps) log sigma(beta d) - eps log sigma(-beta d)     (eps = label_smoothing)
 *   ipo:     L = (d - 1 / (2 beta))^2
 *
 * averaged over the pairs of the optimizer step, plus `nll_weight` times the chosen response's mean
 * token NLL (-s_sum(chosen) / |chosen|; RPO, Pang et al. 2024: keeps the chosen likelihood rising).
 * A pair of weight w_i (preference.ts `weight`, e.g. UPO's judge confidence) contributes
 * (w_i / mean_w) (L_i + nll_weight NLL_i), mean_w the mean weight over the training pairs: with all
 * weights 1 this is the plain mean, a step over all pairs is the weighted mean sum w L / sum w, and
 * scaling every weight changes nothing. The rewards_* metrics stay unweighted. It is a token loss: dL/dlogp of every token of a
 * response is dL/ds of that response (divided by its length when normalised), +dL/dd for chosen and
 * -dL/dd for rejected, so the fused head's backward does the rest.
 *
 * The reference is the base model: its log-probs are computed once per example before the tuner is
 * applied (so for every tuner, LoRA or in-place full fine-tuning alike, the reference is exactly the
 * base and no second model is kept), cached in output_dir/dpo_reference_logps.json and read back on
 * resume; they never change during training.
 */
import { join } from 'node:path';
import { z } from 'zod';
import { loadPreferenceDataset, PAIR_SIZE, type TokenizedExample } from '../../data/index.ts';
import { AttuneError, ConfigError } from '../../errors.ts';
import {
  type ReferenceLogProbs,
  readReferenceCache,
  referenceLogProbs,
  sumByExample,
  writeReferenceCache,
} from './reference-logps.ts';
import { type LossData, registerLoss, type TokenLoss } from './registry.ts';

/** File name of the reference log-prob cache in the run directory. */
export const DPO_REFERENCE_FILE = 'dpo_reference_logps.json';

export interface DpoOptions {
  /** Temperature of the implicit reward (DPO) / target margin 1/(2 beta) (IPO). */
  beta: number;
  variant: 'sigmoid' | 'ipo';
  /** Use the mean instead of the sum of the response's token log-probs. */
  lengthNormalize: boolean;
  /** Conservative DPO: the probability that a pair's label is flipped (sigmoid variant only). */
  labelSmoothing: number;
  /** Weight of the chosen response's mean token NLL added to the loss (RPO; default 0). */
  nllWeight?: number;
}

/** log sigma(x), stable for large |x|. */
function logSigmoid(x: number): number {
  return x >= 0 ? -Math.log1p(Math.exp(-x)) : x - Math.log1p(Math.exp(x));
}

function sigmoid(x: number): number {
  return x >= 0 ? 1 / (1 + Math.exp(-x)) : Math.exp(x) / (1 + Math.exp(x));
}

/** The loss of one pair of log-ratio difference `d` and its derivative dL/dd. */
export function pairLoss(d: number, options: DpoOptions): { value: number; dd: number } {
  const { beta, labelSmoothing: eps } = options;
  if (options.variant === 'ipo') {
    const gap = d - 1 / (2 * beta);
    return { value: gap * gap, dd: 2 * gap };
  }
  const h = beta * d;
  return {
    value: -(1 - eps) * logSigmoid(h) - eps * logSigmoid(-h),
    dd: beta * (-(1 - eps) * sigmoid(-h) + eps * sigmoid(h)),
  };
}

/**
 * Per example, its pair's weight (TokenizedExample.weight, default 1) over the mean pair weight of
 * `examples` (pairs at 2k, 2k + 1); null when every weight is 1. AttuneError when the two examples
 * of a pair disagree or every weight is 0.
 */
export function relativeWeights(examples: readonly TokenizedExample[]): Float64Array | null {
  if (examples.every((e) => (e.weight ?? 1) === 1)) return null;
  const out = new Float64Array(examples.length);
  let total = 0;
  for (let c = 0; c + 1 < examples.length; c += 2) {
    const w = examples[c]!.weight ?? 1;
    if ((examples[c + 1]!.weight ?? 1) !== w)
      throw new AttuneError(
        `dpo: pair ${c / 2} (${examples[c]!.file}:${examples[c]!.line}): chosen has weight ${w}, rejected ${examples[c + 1]!.weight ?? 1}; a pair has one weight`,
      );
    if (!(Number.isFinite(w) && w >= 0))
      throw new AttuneError(`dpo: pair ${c / 2}: weight must be a finite number >= 0, found ${w}`);
    total += w;
  }
  const pairs = Math.floor(examples.length / 2);
  if (!(total > 0))
    throw new AttuneError(`dpo: every one of the ${pairs} pairs has weight 0; nothing to train on`);
  const mean = total / pairs;
  for (let c = 0; c < examples.length; c++) out[c] = (examples[c]!.weight ?? 1) / mean;
  return out;
}

/** A DPO/IPO loss; its `reference` is set by `data.prepare` (or directly, for tests). */
export interface DpoLoss extends TokenLoss {
  readonly data: LossData;
  reference: ReferenceLogProbs | null;
  /** Per example, its pair's relative weight (relativeWeights; null = all 1); set by `data.prepare`. */
  weights: Float64Array | null;
}

/** The DPO / IPO loss (see the file comment). */
export function dpoLoss(options: DpoOptions): DpoLoss {
  if (options.variant === 'ipo' && options.labelSmoothing > 0)
    throw new ConfigError(`loss.label_smoothing applies to variant 'sigmoid', not 'ipo'; set it to 0`);
  // the examples prepare() saw, for the cache's fingerprint in save()
  let preparedExamples: readonly TokenizedExample[] = [];
  const loss: DpoLoss = {
    name: 'dpo',
    reference: null,
    weights: null,
    data: {
      groupSize: PAIR_SIZE,
      shape: 'preference pairs {prompt, chosen, rejected} or {messages, chosen, rejected}',
      load: (path, tokenizer, dataOptions) => loadPreferenceDataset(path, tokenizer, dataOptions),
      prepare(context) {
        preparedExamples = context.examples;
        loss.weights = relativeWeights(context.examples);
        const cachePath = join(context.outputDir, DPO_REFERENCE_FILE);
        if (context.resume) {
          const cached = readReferenceCache(cachePath, context.examples);
          if (cached) {
            loss.reference = cached;
            context.report(
              `dpo: reference log-probs of ${context.examples.length} examples read from ${cachePath}`,
            );
            return;
          }
        }
        loss.reference = referenceLogProbs(context.model, context.examples, {
          batchSize: context.batchSize,
          padTokenId: context.padTokenId,
        });
      },
      save(outputDir) {
        if (!loss.reference) throw new AttuneError('dpo: save() before prepare(): no reference log-probs');
        // the examples are fixed by the fingerprint inside; rewriting the same values is harmless
        writeReferenceCache(join(outputDir, DPO_REFERENCE_FILE), preparedExamples, loss.reference);
      },
    },
    compute(terms, step) {
      const reference = loss.reference;
      if (!reference)
        throw new AttuneError(
          'dpo: no reference log-probs (the trainer calls loss.data.prepare before step 1)',
        );
      if (!terms.exampleOf)
        throw new AttuneError(
          'dpo: the batch does not say which example each token belongs to (Batch.exampleOf)',
        );
      const sums = sumByExample(terms.logp, terms.exampleOf, terms.count);
      const pairs: number[] = [];
      for (const [e, entry] of sums) {
        if (e < 0 || e >= reference.logp.length)
          throw new AttuneError(
            `dpo: token of example ${e}, but the reference has ${reference.logp.length} examples`,
          );
        const partner = e % 2 === 0 ? e + 1 : e - 1;
        if (!sums.has(partner))
          throw new AttuneError(
            `dpo: example ${e}'s partner ${partner} is not in the same micro-batch (load the data with groupSize 2)`,
          );
        if (entry.tokens !== reference.tokens[e])
          throw new AttuneError(
            `dpo: example ${e} has ${entry.tokens} tokens in the micro-batch, ${reference.tokens[e]} in the reference (split across micro-batches?)`,
          );
        if (e % 2 === 0) pairs.push(e);
      }
      const stepPairs = Math.max(1, (step.stepExamples ?? sums.size) / 2);
      const coefficient = new Map<number, number>();
      let value = 0;
      let chosenReward = 0;
      let rejectedReward = 0;
      let accuracy = 0;
      let nll = 0;
      const nllWeight = options.nllWeight ?? 0;
      const score = (e: number): { policy: number; ref: number; n: number } => {
        const n = options.lengthNormalize ? reference.tokens[e]! : 1;
        return { policy: sums.get(e)!.sum / n, ref: reference.logp[e]! / n, n };
      };
      for (const c of pairs) {
        const chosen = score(c);
        const rejected = score(c + 1);
        const chosenRatio = chosen.policy - chosen.ref;
        const rejectedRatio = rejected.policy - rejected.ref;
        const d = chosenRatio - rejectedRatio;
        const { value: raw, dd: rawDd } = pairLoss(d, options);
        const w = loss.weights ? loss.weights[c]! : 1;
        const l = w * raw;
        const dd = w * rawDd;
        value += l / stepPairs;
        chosenReward += (options.beta * chosenRatio) / stepPairs;
        rejectedReward += (options.beta * rejectedRatio) / stepPairs;
        if (d > 0) accuracy += 1 / stepPairs;
        const chosenTokens = reference.tokens[c]!;
        nll -= (w * sums.get(c)!.sum) / chosenTokens / stepPairs;
        coefficient.set(c, dd / stepPairs / chosen.n - (w * nllWeight) / stepPairs / chosenTokens);
        coefficient.set(c + 1, -dd / stepPairs / rejected.n);
      }
      const cLogp = new Float32Array(terms.count);
      for (let i = 0; i < terms.count; i++) cLogp[i] = coefficient.get(terms.exampleOf[i]!)!;
      const preference = value;
      value += nllWeight * nll;
      return {
        value,
        parts: {
          [options.variant === 'ipo' ? 'ipo' : 'dpo']: preference,
          ...(nllWeight > 0 ? { nll } : {}),
          rewards_chosen: chosenReward,
          rewards_rejected: rejectedReward,
          rewards_margin: chosenReward - rejectedReward,
          rewards_accuracy: accuracy,
        },
        cLogp,
        cEntropy: null,
        cTop1: null,
      };
    },
  };
  return loss;
}

registerLoss({
  name: 'dpo',
  description:
    'direct preference optimisation on {prompt, chosen, rejected} pairs against the base as reference (sigmoid DPO or IPO)',
  options: z.object({
    beta: z
      .number()
      .positive()
      .default(0.1)
      .describe('DPO: temperature of the implicit reward; IPO: the target margin is 1/(2 beta)'),
    variant: z
      .enum(['sigmoid', 'ipo'])
      .default('sigmoid')
      .describe('sigmoid: DPO (-log sigma(beta d)); ipo: (d - 1/(2 beta))^2'),
    length_normalize: z
      .boolean()
      .default(false)
      .describe("mean instead of sum of the response's token log-probs (TRL's IPO uses the mean)"),
    label_smoothing: z
      .number()
      .min(0)
      .max(0.5)
      .default(0)
      .describe('conservative DPO: assumed probability that a pair is mislabelled (sigmoid variant)'),
    nll_weight: z
      .number()
      .min(0)
      .default(0)
      .describe("weight of the chosen response's mean token NLL added to the loss (RPO)"),
  }),
  create: (o) =>
    dpoLoss({
      beta: o.beta,
      variant: o.variant,
      lengthNormalize: o.length_normalize,
      labelSmoothing: o.label_smoothing,
      nllWeight: o.nll_weight,
    }),
});
