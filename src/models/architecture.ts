/** Whether two model directories are the same architecture (for merges, deltas, ports, analysis). */
import { join } from 'node:path';
import { ConfigError } from '../errors.ts';
import { CONFIG_FILE, readModelConfig } from '../io/index.ts';
import './builtin.ts';
import type { CausalLMConfig } from './causal-lm.ts';
import { architectureFor, parseModelConfig } from './registry.ts';

/** Config fields every architecture has that must agree for two checkpoints to be the same architecture. */
export const ARCHITECTURE_FIELDS: readonly (keyof CausalLMConfig)[] = [
  'modelType',
  'hiddenSize',
  'intermediateSize',
  'numLayers',
  'numHeads',
  'numKvHeads',
  'headDim',
  'vocabSize',
];

/**
 * Differences between the architectures of two parsed configs, as `field: a vs b` lines: the
 * model types, then `fields`, then (same model type) the fields that architecture adds.
 */
export function architectureDifferences(
  a: CausalLMConfig,
  b: CausalLMConfig,
  fields: readonly (keyof CausalLMConfig)[] = ARCHITECTURE_FIELDS,
): string[] {
  const ra = a as unknown as Record<string, unknown>;
  const rb = b as unknown as Record<string, unknown>;
  const line = (f: string) => `${f}: ${JSON.stringify(ra[f])} vs ${JSON.stringify(rb[f])}`;
  if (a.modelType !== b.modelType) return [line('modelType')];
  // the architecture's own fields beyond the common ones (GPT-2's activation, positions, ...)
  const generic = ARCHITECTURE_FIELDS as readonly string[];
  const extra = architectureFor(a.modelType).architectureFields.filter((f) => !generic.includes(f));
  return [...fields, ...extra].filter((f) => ra[f] !== rb[f]).map(line);
}

/**
 * Throw a ConfigError when the model directories `aDir` and `bDir` are different architectures
 * (their config.json files, parsed, differ in one of `fields`); `why` ends the message.
 */
export function checkSameArchitecture(
  aDir: string,
  bDir: string,
  why: string,
  fields: readonly (keyof CausalLMConfig)[] = ARCHITECTURE_FIELDS,
): void {
  const a = parseModelConfig(readModelConfig(aDir), join(aDir, CONFIG_FILE));
  const b = parseModelConfig(readModelConfig(bDir), join(bDir, CONFIG_FILE));
  const diffs = architectureDifferences(a, b, fields);
  if (diffs.length > 0) {
    throw new ConfigError(`${aDir} and ${bDir} are different architectures (${diffs.join(', ')}); ${why}`);
  }
}
