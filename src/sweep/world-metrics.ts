/**
 * World metrics of a trial (the sweep's `eval_world`: a world eval file such as eval_mixed.jsonl of
 * `attune world`): greedy answers to its questions with the trained model, graded by exact match as
 * `attune bench methods` grades them, as `accuracy` over all records and `accuracy_<split>` per
 * split present (known, taught, unknown, ood). These are objectives like eval_loss.
 */
import { Tokenizer } from '../io/index.ts';
import type { CausalLM } from '../models/index.ts';
import type { TrainConfig } from '../train/config.ts';
import { predict, readEvalRecords } from '../uq/index.ts';
import { accuracyOf } from '../world/index.ts';

/** The splits of the world's eval files (a metric `accuracy_<split>` each). */
export const WORLD_SPLIT_METRICS = ['known', 'taught', 'unknown', 'mixed', 'ood'].map((s) => `accuracy_${s}`);

/** Metrics a trial records with `eval_world`. */
export const WORLD_METRICS = ['accuracy', ...WORLD_SPLIT_METRICS];

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
  return out;
}
