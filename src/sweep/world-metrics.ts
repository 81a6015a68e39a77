/**
 * World metrics of a trial (the sweep's `eval_world`: a world eval file such as eval_mixed.jsonl of
 * `attune world`): greedy answers to its questions with the trained model, graded by exact match as
 * `attune bench methods` grades them, as `accuracy` over all records and `accuracy_<split>` per
 * split present (known, taught, unknown, ood), and the bench's calibration and uncertainty
 * columns over the same answers: `ece` and `brier` of the confidence, and `wrong_auroc_<score>`
 * (AUROC of telling wrong answers by the score) for every registered score. These are objectives
 * like eval_loss; a value that is undefined (an AUROC when every answer is right) is left out.
 */
import { Tokenizer } from '../io/index.ts';
import type { CausalLM } from '../models/index.ts';
import type { TrainConfig } from '../train/config.ts';
import { predict, readEvalRecords, scoreNames, summarizePredictions } from '../uq/index.ts';
import { accuracyOf } from '../world/index.ts';

/** The splits of the world's eval files (a metric `accuracy_<split>` each). */
export const WORLD_SPLIT_METRICS = ['known', 'taught', 'unknown', 'mixed', 'ood'].map((s) => `accuracy_${s}`);

/** Metrics a trial records with `eval_world` (the scores registered now: plug-ins loaded first). */
export function worldMetricNames(): string[] {
  return ['accuracy', ...WORLD_SPLIT_METRICS, 'ece', 'brier', ...scoreNames().map((n) => `wrong_auroc_${n}`)];
}

/** Answer the questions of the world eval file `path` with `model` and grade them. */
export function worldMetrics(model: CausalLM, config: TrainConfig, path: string): Record<string, number> {
  const records = readEvalRecords(path);
  const tokenizer = Tokenizer.fromDir(
    typeof config.model === 'string' ? config.model : config.model.tokenizer,
  );
  const preds = predict(model, tokenizer, records, { stop: ['\n'], maxNewTokens: 24 });
  const out: Record<string, number> = { accuracy: accuracyOf(preds) ?? 0 };
  for (const split of new Set(records.map((r) => String(r.split ?? '')))) {
    const a = accuracyOf(preds, split);
    if (split !== '' && a !== null) out[`accuracy_${split}`] = a;
  }
  // over every answer, where the bench takes its mixed questions: the same definitions
  const summary = summarizePredictions(preds);
  const { ece, brier } = summary.confidence;
  if (ece !== null && Number.isFinite(ece)) out.ece = ece;
  if (brier !== null && Number.isFinite(brier)) out.brier = brier;
  for (const [name, s] of Object.entries(summary.scores))
    if (s.auroc !== null && Number.isFinite(s.auroc)) out[`wrong_auroc_${name}`] = s.auroc;
  return out;
}
