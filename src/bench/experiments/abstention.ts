/**
 * Abstention measurement shared by the experiments that teach a model to say it does not know
 * (`dpo`, `know_unknown`): not an experiment itself, so index.ts does not import it.
 */
import { loadModel } from '../../models/index.ts';
import { loadAdapter } from '../../peft/index.ts';
import { type EvalRecord, predict } from '../../uq/index.ts';
import { isAbstention } from '../../world/index.ts';
import type { ExperimentRun } from '../experiment.ts';

/** Abstention rate of the greedy answers of each record set under `run`'s model (null when empty). */
export function abstentionRates(
  run: Pick<ExperimentRun, 'modelDir' | 'adapterDir'>,
  sets: Record<string, readonly EvalRecord[]>,
): Record<string, number | null> {
  const loaded = loadModel(run.modelDir);
  if (run.adapterDir) loadAdapter(loaded.model, run.adapterDir);
  const out: Record<string, number | null> = {};
  for (const [name, records] of Object.entries(sets)) {
    if (records.length === 0) {
      out[name] = null;
      continue;
    }
    const preds = predict(loaded.model, loaded.tokenizer!, records, {
      stop: ['\n'],
      maxNewTokens: 24,
      eosTokenIds: loaded.eosTokenIds,
    });
    out[name] = preds.filter((p) => isAbstention(p.answer)).length / preds.length;
  }
  return out;
}
