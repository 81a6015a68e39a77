/** Whether two model directories are the same architecture (for merges, deltas, ports, analysis). */
import { join } from 'node:path';
import { ConfigError } from '../errors.ts';
import { CONFIG_FILE, readModelConfig } from '../io/index.ts';
import { type LlamaConfig, parseLlamaConfig } from './llama/config.ts';

/** Config fields that must agree for two checkpoints to be the same architecture. */
export const ARCHITECTURE_FIELDS: readonly (keyof LlamaConfig)[] = [
  'modelType',
  'hiddenSize',
  'intermediateSize',
  'numLayers',
  'numHeads',
  'numKvHeads',
  'headDim',
  'vocabSize',
];

/** Differences between the architectures of two parsed configs, as `field: a vs b` lines. */
export function architectureDifferences(
  a: LlamaConfig,
  b: LlamaConfig,
  fields: readonly (keyof LlamaConfig)[] = ARCHITECTURE_FIELDS,
): string[] {
  return fields
    .filter((f) => a[f] !== b[f])
    .map((f) => `${f}: ${JSON.stringify(a[f])} vs ${JSON.stringify(b[f])}`);
}

/**
 * Throw a ConfigError when the model directories `aDir` and `bDir` are different architectures
 * (their config.json files, parsed, differ in one of `fields`); `why` ends the message.
 */
export function checkSameArchitecture(
  aDir: string,
  bDir: string,
  why: string,
  fields: readonly (keyof LlamaConfig)[] = ARCHITECTURE_FIELDS,
): void {
  const a = parseLlamaConfig(readModelConfig(aDir), join(aDir, CONFIG_FILE));
  const b = parseLlamaConfig(readModelConfig(bDir), join(bDir, CONFIG_FILE));
  const diffs = architectureDifferences(a, b, fields);
  if (diffs.length > 0) {
    throw new ConfigError(`${aDir} and ${bDir} are different architectures (${diffs.join(', ')}); ${why}`);
  }
}
