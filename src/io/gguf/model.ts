/**
 * A Hub-format model (its tensors under Hub names, its config.json and tokenizer folder) -> one
 * GGUF file llama.cpp runs (`llama-cli -m model.gguf`): the architecture's metadata, the tokenizer
 * and chat template, and every tensor renamed, permuted / transposed and encoded as llama.cpp's
 * converter does (see arch.ts, vocab.ts, tensors.ts). Everything is validated before the file is
 * created; the file is written atomically.
 */
import { basename, join } from 'node:path';
import { TensorMismatchError } from '../../errors.ts';
import type { Tensor } from '../../tensor/index.ts';
import type { JsonObject } from '../json.ts';
import { ggufArchitecture } from './arch.ts';
import { applyTransform, f32Values, generalMetadata, ggmlTypeFor, lazyTensor } from './tensors.ts';
import { FILE_TYPE_OF, GgmlType, type GgufDtype } from './types.ts';
import { tokenizerMetadata } from './vocab.ts';
import { type GgufTensorSpec, ggufKv, writeGguf } from './writer.ts';

export interface GgufModelExportOptions {
  /** Element type of the matrices (norms and other 1-D tensors stay f32). Default f32. */
  dtype?: GgufDtype;
  /** Folder holding tokenizer.json (and tokenizer_config.json, chat template). */
  tokenizerDir: string;
  /** `general.name`; default the tokenizer folder's name. */
  name?: string;
  /** The config.json path named in errors. */
  configPath?: string;
}

/** What was written. */
export interface GgufExportSummary {
  path: string;
  arch: string;
  tensors: number;
  /** GGUF names written in f16 because q8_0 needs rows of a multiple of 32. */
  f16Fallbacks: string[];
}

/** Write `tensors` (Hub names; the config's architecture) as the GGUF model file `path`. */
export function exportModelGguf(
  path: string,
  tensors: ReadonlyMap<string, Tensor>,
  config: JsonObject,
  options: GgufModelExportOptions,
): GgufExportSummary {
  const dtype = options.dtype ?? 'f32';
  const where = options.configPath ?? join(options.tokenizerDir, 'config.json');
  const arch = ggufArchitecture(config, where);
  for (const name of arch.required)
    if (!tensors.has(name)) throw new TensorMismatchError(`GGUF export: the model has no tensor '${name}'`);
  const metadata = [
    ...generalMetadata(arch.arch, 'model', options.name ?? basename(options.tokenizerDir)),
    ...arch.metadata,
    ggufKv.u32('general.file_type', FILE_TYPE_OF[dtype]),
    ...tokenizerMetadata(options.tokenizerDir, config),
  ];
  const specs: GgufTensorSpec[] = [];
  const f16Fallbacks: string[] = [];
  const add = (name: string, shape: readonly number[], values: () => Float32Array) => {
    const type = ggmlTypeFor(name, shape, dtype);
    if (dtype === 'q8_0' && type === GgmlType.F16) f16Fallbacks.push(name);
    specs.push(lazyTensor(name, shape, type, values));
  };
  for (const [hubName, tensor] of tensors) {
    const mapping = arch.map(hubName);
    if (mapping === null) {
      if (hubName === 'lm_head.weight') continue; // tied head: llama.cpp uses token_embd
      throw new TensorMismatchError(
        `GGUF export: tensor '${hubName}' has no llama.cpp name for model_type ${String(config.model_type)}`,
      );
    }
    const where = `tensor '${hubName}'`;
    const shape =
      mapping.transform.kind === 'transpose' ? [tensor.shape[1]!, tensor.shape[0]!] : [...tensor.shape];
    const values = () =>
      applyTransform(f32Values(tensor, where), tensor.shape, mapping.transform, where).values;
    add(mapping.name, shape, values);
    for (const copy of arch.copies(mapping.name)) add(copy, shape, values);
  }
  for (const extra of arch.generated) add(extra.name, [extra.values.length], () => extra.values);
  specs.sort((a, b) => tensorOrder(a.name) - tensorOrder(b.name) || (a.name < b.name ? -1 : 1));
  writeGguf(path, metadata, specs);
  return { path, arch: arch.arch, tensors: specs.length, f16Fallbacks };
}

/** Sort key: embeddings first, then the blocks in order, then the final norm and head. */
function tensorOrder(name: string): number {
  const block = /^blk\.(\d+)\./.exec(name);
  if (block) return 1 + Number(block[1]);
  return name.startsWith('output') ? Number.MAX_SAFE_INTEGER : 0;
}
