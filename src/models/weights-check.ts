/**
 * Config against weights, once, on load: each config field that fixes a tensor's size is compared
 * with the checkpoint's header, and the first disagreement is one message naming the field, what
 * the config says and what the file holds (`config.json: hidden_size is 64 but
 * model.embed_tokens.weight is [2048, 128]`). `loadModel`, `inspect` and `merge` call it, so an
 * inconsistent model directory fails before any tensor is read or any output is written.
 */
import { join } from 'node:path';
import { ConfigError } from '../errors.ts';
import { CONFIG_FILE, openCheckpoint, readModelConfig, type TensorReader } from '../io/index.ts';
import { formatShape } from '../tensor/index.ts';
import type { CausalLMConfig } from './causal-lm.ts';
import { type Architecture, architectureOf } from './registry.ts';

/**
 * The checkpoint name holding the parameter `name`, or undefined: the name itself, the
 * safetensors `__metadata__` alias, the other tied-embedding name, or the name without the base
 * model prefix (a checkpoint saved from transformers' bare base model).
 */
export function checkpointNameOf(
  arch: Architecture,
  config: CausalLMConfig,
  reader: TensorReader,
  name: string,
): string | undefined {
  const metadata = reader.metadata();
  const candidates = [name];
  if (config.tieWordEmbeddings && arch.tiedNames.includes(name)) candidates.push(...arch.tiedNames);
  for (const c of [...candidates]) {
    if (arch.basePrefix && c.startsWith(arch.basePrefix)) candidates.push(c.slice(arch.basePrefix.length));
  }
  for (const c of candidates) {
    if (reader.has(c)) return c;
    const alias = metadata[c];
    if (alias && reader.has(alias)) return alias;
  }
  return undefined;
}

/** How many consecutive layers (0, 1, ...) the checkpoint holds tensors of. */
function layerCount(arch: Architecture, names: readonly string[]): number {
  const stripped = arch.basePrefix
    ? names.map((n) => (n.startsWith(arch.basePrefix!) ? n : `${arch.basePrefix}${n}`))
    : names;
  let n = 0;
  while (stripped.some((name) => name.startsWith(arch.layerPrefix(n)))) n++;
  return n;
}

/**
 * Throw a ConfigError naming `configFile`, the field, its value and the tensor's shape when the
 * parsed config disagrees with the checkpoint's tensor shapes or layer count.
 */
export function checkConfigAgainstWeights(
  arch: Architecture,
  config: CausalLMConfig,
  reader: TensorReader,
  configFile: string,
): void {
  for (const check of arch.shapeChecks(config)) {
    const source = checkpointNameOf(arch, config, reader, check.tensor);
    if (source === undefined) continue; // a missing tensor is reported by the loader, by name
    const shape = reader.info(source).shape;
    if (shape.length <= check.axis || shape[check.axis] !== check.expected) {
      throw new ConfigError(
        `${configFile}: ${check.field} is ${check.value} but ${source} is ${formatShape(shape)}`,
      );
    }
  }
  const layers = layerCount(arch, reader.names());
  if (layers !== config.numLayers && layers > 0) {
    const last = arch.layerPrefix(layers - 1).replace(/\.$/, '');
    throw new ConfigError(
      `${configFile}: ${arch.layerCountField} is ${config.numLayers} but the checkpoint holds ${layers} layer(s) (${arch.layerPrefix(0).replace(/\.$/, '')} to ${last})`,
    );
  }
}

/** Check a model directory's config.json against its checkpoint headers (reads no tensor data). */
export function checkModelDir(dir: string): void {
  const configFile = join(dir, CONFIG_FILE);
  const raw = readModelConfig(dir);
  const arch = architectureOf(raw, configFile);
  const config = arch.parseConfig(raw, configFile);
  const reader = openCheckpoint(dir);
  try {
    checkConfigAgainstWeights(arch, config, reader, configFile);
  } finally {
    reader.close();
  }
}
