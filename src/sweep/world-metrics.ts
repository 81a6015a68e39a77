/**
 * World metrics of a trial (the sweep's `eval_world`: world eval files such as eval_mixed.jsonl and
 * eval_ood.jsonl of `attune world`): greedy answers to their questions with the trained model,
 * graded by exact match as `attune bench methods` grades them (src/world/evaluate.ts, the bench's
 * own functions), as `accuracy` over all records and `accuracy_<split>` per split present (known,
 * taught, unknown, ood); the bench's columns over the in-domain answers (every split but ood):
 * `ece` and `brier` of the confidence and `wrong_auroc_<score>` for every registered score; with
 * an ood split, `ood_auroc_<score>` (telling ood questions from in-domain ones); with taught
 * questions that carry a `paraphrase`, `accuracy_paraphrase` (those questions in that wording);
 * with the base's known-fact accuracy (base-known.ts), `retention` (known accuracy / the base's).
 * These are objectives like eval_loss; a value that is undefined (an AUROC when every answer is
 * right) is left out.
 */
import { Tokenizer } from '../io/index.ts';
import type { CausalLM } from '../models/index.ts';
import type { TrainConfig } from '../train/config.ts';
import { type EvalRecord, readEvalRecords, scoreNames, summarizePredictions } from '../uq/index.ts';
import { accuracyOf, oodAurocs, paraphraseQuestions, predictWorld, retentionOf } from '../world/index.ts';

/** The splits of the world's eval files (a metric `accuracy_<split>` each). */
export const WORLD_SPLIT_METRICS = ['known', 'taught', 'unknown', 'mixed', 'ood'].map((s) => `accuracy_${s}`);

/** Metrics a trial records with `eval_world` (the scores registered now: plug-ins loaded first). */
export function worldMetricNames(): string[] {
  const scores = scoreNames();
  return [
    'accuracy',
    ...WORLD_SPLIT_METRICS,
    'accuracy_paraphrase',
    'retention',
    'ece',
    'brier',
    ...scores.map((n) => `wrong_auroc_${n}`),
    ...scores.map((n) => `ood_auroc_${n}`),
  ];
}

/** The questions of the world eval files `paths`, in order (a bad file fails naming it and its line). */
export function readWorldEval(paths: readonly string[]): EvalRecord[] {
  return paths.flatMap((p) => readEvalRecords(p));
}

/** The tokenizer and stop ids the world questions are answered with (the base's and every trial's alike). */
export function worldAnswerer(
  model: CausalLM,
  config: TrainConfig,
): { tokenizer: Tokenizer; eosTokenIds: number[] } {
  const tokenizer = Tokenizer.fromDir(
    typeof config.model === 'string' ? config.model : config.model.tokenizer,
  );
  // as loadModel: the model config's eos ids join the tokenizer's (and generation_config's)
  const eosTokenIds = [...new Set([...model.config.eosTokenIds, ...tokenizer.eosTokenIds])];
  return { tokenizer, eosTokenIds };
}

/**
 * Answer the world questions of `paths` with `model` and grade them; `baseKnown` is the base's
 * known-fact accuracy on them (null: no retention).
 */
export function worldMetrics(
  model: CausalLM,
  config: TrainConfig,
  paths: readonly string[],
  baseKnown: number | null,
): Record<string, number> {
  const records = readWorldEval(paths);
  const { tokenizer, eosTokenIds } = worldAnswerer(model, config);
  const isOod = (r: EvalRecord) => r.split === 'ood';
  // in-domain first, then ood: the bench's mixed and ood sets
  const answered = predictWorld(model, tokenizer, eosTokenIds, {
    mixed: records.filter((r) => !isOod(r)),
    ood: records.filter(isOod),
  });
  const preds = [...answered.mixed, ...answered.ood];
  const out: Record<string, number> = { accuracy: accuracyOf(preds) ?? 0 };
  const put = (name: string, v: number | null) => {
    if (v !== null && Number.isFinite(v)) out[name] = v;
  };
  for (const split of new Set(records.map((r) => String(r.split ?? ''))))
    if (split !== '') put(`accuracy_${split}`, accuracyOf(preds, split));
  // the bench's columns over its mixed (in-domain) answers; a file of ood questions alone: over those
  const inDomain = answered.mixed.length > 0 ? answered.mixed : answered.ood;
  const summary = summarizePredictions(inDomain);
  put('ece', summary.confidence.ece);
  put('brier', summary.confidence.brier);
  for (const [name, s] of Object.entries(summary.scores)) put(`wrong_auroc_${name}`, s.auroc);
  if (answered.mixed.length > 0 && answered.ood.length > 0)
    for (const [name, v] of Object.entries(oodAurocs(answered.mixed, answered.ood)))
      put(`ood_auroc_${name}`, v);
  const paraphrase = paraphraseQuestions(records);
  if (paraphrase.length > 0)
    put(
      'accuracy_paraphrase',
      accuracyOf(predictWorld(model, tokenizer, eosTokenIds, { mixed: paraphrase, ood: [] }).mixed),
    );
  put('retention', retentionOf(accuracyOf(preds, 'known'), baseKnown));
  return out;
}
