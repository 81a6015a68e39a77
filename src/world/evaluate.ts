/**
 * Evaluating a model on the benchmark world, shared by `attune demo` and `attune bench methods`:
 * greedy answers to the mixed questions (known + taught + unknown people) and the out-of-domain
 * ones, graded by exact match; accuracy per split, ECE and Brier of exp(mean log-prob), the AUROC of
 * detecting wrong answers per score (positive = wrong) and of telling out-of-domain questions from
 * in-domain ones per score (positive = out-of-domain).
 */

import type { Tokenizer } from '../io/index.ts';
import type { CausalLM } from '../models/index.ts';
import { auroc, type EvalRecord, type Prediction, predict, summarizePredictions } from '../uq/index.ts';

/** The first `n` records of each split present in `records`, in file order. */
export function takePerSplit(records: EvalRecord[], n: number | null): EvalRecord[] {
  if (n === null) return records;
  const seen = new Map<string, number>();
  return records.filter((r) => {
    const split = String(r.split ?? '');
    const c = seen.get(split) ?? 0;
    seen.set(split, c + 1);
    return c < n;
  });
}

export interface ModelEvaluation {
  accuracy: Record<'known' | 'taught' | 'unknown' | 'mixed' | 'ood', number | null>;
  ece: number | null;
  brier: number | null;
  /** AUROC of detecting wrong answers over the mixed set, per score (positive = wrong). */
  auroc: Record<string, number | null>;
  /** AUROC of telling out-of-domain questions from in-domain ones, per score (positive = OOD). */
  ood_auroc: Record<string, number | null>;
}

/** Accuracy of the predictions of `split` (all when omitted); null when there are none. */
export function accuracyOf(preds: readonly Prediction[], split?: string): number | null {
  const sel = split ? preds.filter((p) => p.extra.split === split) : preds;
  return sel.length > 0 ? sel.filter((p) => p.correct).length / sel.length : null;
}

/**
 * Per score, the AUROC of telling the out-of-domain questions from the in-domain ones (positive =
 * out-of-domain) over both sets' answers; null where undefined (one of the sets empty).
 */
export function oodAurocs(
  inDomain: readonly Prediction[],
  ood: readonly Prediction[],
): Record<string, number | null> {
  const out: Record<string, number | null> = {};
  const all = [...inDomain, ...ood];
  const isOod = all.map((_, i) => i >= inDomain.length);
  for (const name of Object.keys(inDomain[0]?.scores ?? {}))
    out[name] = auroc(
      all.map((p) => p.scores[name]!),
      isOod,
    ).value;
  return out;
}

/** The taught questions of `records` in their paraphrased wording (a record's `paraphrase`), as the bench asks them. */
export function paraphraseQuestions(records: readonly EvalRecord[]): EvalRecord[] {
  return records.flatMap((r) =>
    r.split === 'taught' && typeof r.paraphrase === 'string' ? [{ ...r, prompt: r.paraphrase }] : [],
  );
}

/** Retention: known-fact accuracy after training over the base's; null when either is missing or the base's is 0. */
export function retentionOf(known: number | null, baseKnown: number | null): number | null {
  return baseKnown !== null && baseKnown > 0 && known !== null ? known / baseKnown : null;
}

/** Known-fact accuracy of a model: its greedy answers to the `known` questions of `records` (null: none). */
export function knownAccuracy(
  model: CausalLM,
  tokenizer: Tokenizer,
  eosTokenIds: readonly number[],
  records: readonly EvalRecord[],
  onProgress?: (done: number) => void,
): number | null {
  const known = { mixed: records.filter((r) => r.split === 'known'), ood: [] as EvalRecord[] };
  return accuracyOf(predictWorld(model, tokenizer, eosTokenIds, known, onProgress).mixed);
}

/** The world metrics of graded predictions on the mixed and out-of-domain questions. */
export function evaluateModel(mixed: readonly Prediction[], ood: readonly Prediction[]): ModelEvaluation {
  const summary = summarizePredictions(mixed);
  const auroc_: Record<string, number | null> = {};
  for (const [name, s] of Object.entries(summary.scores)) auroc_[name] = s.auroc;
  return {
    accuracy: {
      known: accuracyOf(mixed, 'known'),
      taught: accuracyOf(mixed, 'taught'),
      unknown: accuracyOf(mixed, 'unknown'),
      mixed: accuracyOf(mixed),
      ood: accuracyOf(ood),
    },
    ece: summary.confidence.ece,
    brier: summary.confidence.brier,
    auroc: auroc_,
    ood_auroc: oodAurocs(mixed, ood),
  };
}

/** Answer the mixed and out-of-domain questions greedily with `model` (one line each, exact match). */
export function predictWorld(
  model: CausalLM,
  tokenizer: Tokenizer,
  eosTokenIds: readonly number[],
  records: { mixed: EvalRecord[]; ood: EvalRecord[] },
  onProgress?: (done: number) => void,
): { mixed: Prediction[]; ood: Prediction[] } {
  const opts = { stop: ['\n'], maxNewTokens: 24, eosTokenIds };
  const mixed = predict(model, tokenizer, records.mixed, { ...opts, onProgress: (d) => onProgress?.(d) });
  const ood = predict(model, tokenizer, records.ood, {
    ...opts,
    onProgress: (d) => onProgress?.(records.mixed.length + d),
  });
  return { mixed, ood };
}
