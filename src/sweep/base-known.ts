/**
 * The base's known-fact accuracy a trial's `retention` divides by: the untrained model of the
 * trial's config (`model:`, a model directory, loaded as `attune bench methods` loads its base)
 * answers the `known` questions of the sweep's eval_world once, in the sweep process, before any
 * trial is queued; cached in `<out>/base-known-<hash>.json` (the hash: the model's files and the
 * questions), so a rerun reuses it, and handed to every trial in its job (no executor recomputes it).
 */

import { createHash } from 'node:crypto';
import { existsSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { ConfigError } from '../errors.ts';
import { writeJsonAtomic } from '../io/index.ts';
import { loadModel } from '../models/index.ts';
import type { TrainConfig } from '../train/config.ts';
import { directoryHash } from '../train/teacher-cache.ts';
import { knownAccuracy } from '../world/index.ts';
import { readWorldEval, worldAnswerer } from './world-metrics.ts';

/** What base-known-<hash>.json holds. */
interface BaseKnownFile {
  model: string;
  known_questions: number;
  known_accuracy: number | null;
}

/** The cache file of the base `modelDir` on the questions of `evalWorld`. */
export function baseKnownFile(out: string, modelDir: string, evalWorld: readonly string[]): string {
  const known = readWorldEval(evalWorld).filter((r) => r.split === 'known');
  const key = createHash('sha256')
    .update(JSON.stringify({ model: directoryHash(modelDir), known }))
    .digest('hex')
    .slice(0, 12);
  return join(out, `base-known-${key}.json`);
}

/**
 * Known-fact accuracy of the base model of `config` on the eval_world questions (cached under
 * `out`); null when the model is a random initialisation (no base to retain) or the files hold no
 * known question.
 */
export function baseKnownAccuracy(
  out: string,
  config: TrainConfig,
  evalWorld: readonly string[],
  onNote?: (text: string) => void,
): number | null {
  if (typeof config.model !== 'string') return null;
  const file = baseKnownFile(out, config.model, evalWorld);
  if (existsSync(file)) {
    const cached = JSON.parse(readFileSync(file, 'utf8')) as Partial<BaseKnownFile>;
    if (cached.known_accuracy === null || typeof cached.known_accuracy === 'number')
      return cached.known_accuracy;
    throw new ConfigError(
      `${file}: expected {known_accuracy: number | null}, found ${JSON.stringify(cached).slice(0, 80)}; delete it to evaluate the base again`,
    );
  }
  const records = readWorldEval(evalWorld);
  const questions = records.filter((r) => r.split === 'known').length;
  onNote?.(`base ${config.model}: answering ${questions} known questions of eval_world (for retention)`);
  const loaded = loadModel(config.model);
  const { tokenizer, eosTokenIds } = worldAnswerer(loaded.model, config);
  const acc = knownAccuracy(loaded.model, tokenizer, eosTokenIds, records);
  writeJsonAtomic(file, {
    model: config.model,
    known_questions: questions,
    known_accuracy: acc,
  } satisfies BaseKnownFile);
  return acc;
}
