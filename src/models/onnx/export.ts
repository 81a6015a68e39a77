/**
 * `attune export --format onnx`: a model as a folder transformers.js and onnxruntime load —
 * `onnx/model.onnx` (the decoder with its KV-cache inputs and outputs, see decoder.ts; Llama-family
 * and GPT-2) beside
 * config.json, generation_config.json and the tokenizer files, written atomically (the folder
 * appears complete or not at all).
 */
import { closeSync, mkdirSync, openSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { ConfigError } from '../../errors.ts';
import {
  CONFIG_FILE,
  GENERATION_CONFIG_FILE,
  type JsonObject,
  writeAll,
  writeDirAtomic,
} from '../../io/index.ts';
import { encodeOnnxModel, externalizeInitializers, type OnnxGraph } from '../../io/onnx/index.ts';
import type { Tensor } from '../../tensor/index.ts';
import type { CausalLM, CausalLMConfig } from '../causal-lm.ts';
import type { Gpt2Config } from '../gpt2/config.ts';
import { LLAMA_MODEL_TYPES, type LlamaConfig } from '../llama/config.ts';
import { copyTokenizerFiles } from '../load.ts';
import { gpt2OnnxGraph } from './gpt2.ts';
import { llamaOnnxGraph, ONNX_OPSET } from './llama.ts';

/** The model file inside the export folder (transformers.js's layout for dtype fp32). */
export const ONNX_MODEL_FILE = join('onnx', 'model.onnx');

/** protobuf's limit on one message. */
const MAX_PROTO_BYTES = 2 ** 31 - 1;
/** Above this many weight bytes they go to external data files. */
const EXTERNAL_FROM_BYTES = 1.5 * 2 ** 30;

/** The decoder graph of each model_type that exports. */
const GRAPH_BUILDERS: Record<
  string,
  (config: CausalLMConfig, tensors: ReadonlyMap<string, Tensor>) => OnnxGraph
> = {
  ...Object.fromEntries(
    LLAMA_MODEL_TYPES.map((t) => [
      t,
      (c: CausalLMConfig, w: ReadonlyMap<string, Tensor>) => llamaOnnxGraph(c as LlamaConfig, w),
    ]),
  ),
  gpt2: (c, w) => gpt2OnnxGraph(c as Gpt2Config, w),
};

export interface OnnxExportOptions {
  /** Copy tokenizer.json (and its companions) from this model folder. */
  tokenizerFrom?: string;
  generationConfig?: JsonObject | null;
  /** Written into the model's metadata_props. */
  producerVersion?: string;
  /**
   * Weights in side files next to model.onnx (ONNX external data) instead of inside it; default:
   * when they exceed 1.5 GiB (protobuf caps a model at 2 GiB).
   */
  externalData?: boolean;
}

/** What was written. */
export interface OnnxExportSummary {
  out: string;
  modelFile: string;
  bytes: number;
  /** Side files of the weights (`onnx/model.onnx_data`, ...), empty when they are inside the model. */
  externalData: string[];
  nodes: number;
  initializers: number;
  opset: number;
}

/** Export `model` (f32 weights; a merged adapter is part of them) to the folder `out`. */
export function exportOnnx(model: CausalLM, out: string, options: OnnxExportOptions = {}): OnnxExportSummary {
  const type = model.config.modelType;
  const build = GRAPH_BUILDERS[type];
  if (!build)
    throw new ConfigError(
      `export --format onnx: model_type '${type}' is not supported (supported: ${Object.keys(GRAPH_BUILDERS).join(', ')})`,
    );
  const tensors = new Map<string, Tensor>();
  for (const [name, p] of model.namedParameters()) {
    if (p.dtype !== 'f32')
      throw new ConfigError(
        `export --format onnx: '${name}' is ${p.dtype}; load the model in f32 to export it`,
      );
    tensors.set(name, p);
  }
  const graph = build(model.config, tensors);
  const proto = graph.model({
    name: `attune-${type}`,
    opset: ONNX_OPSET,
    producerVersion: options.producerVersion ?? '0',
    metadata: { model_type: type },
  });
  const weightBytes = proto.graph.initializer.reduce(
    (n, t) => n + ((t.rawData as Buffer | undefined)?.length ?? 0),
    0,
  );
  const external = options.externalData ?? weightBytes > EXTERNAL_FROM_BYTES;
  const chunks = external ? externalizeInitializers(proto, 'model.onnx') : [];
  const bytes = encodeOnnxModel(proto);
  if (bytes.length > MAX_PROTO_BYTES)
    throw new ConfigError(
      `export --format onnx: the graph is ${bytes.length} bytes, over protobuf's 2 GiB limit even with the weights outside it`,
    );
  const config: JsonObject = {
    ...model.config.raw,
    torch_dtype: 'float32',
    tie_word_embeddings: model.config.tieWordEmbeddings,
    use_cache: true,
  };
  // transformers.js loads external data only when the config says how many chunks there are
  if (chunks.length > 0)
    config['transformers.js_config'] = {
      ...((model.config.raw['transformers.js_config'] as JsonObject | undefined) ?? {}),
      use_external_data_format: chunks.length,
    };
  const generation = options.generationConfig ?? {
    bos_token_id: model.config.bosTokenId ?? undefined,
    eos_token_id:
      model.config.eosTokenIds.length === 1 ? model.config.eosTokenIds[0] : model.config.eosTokenIds,
  };
  writeDirAtomic(out, (tmp) => {
    writeFileSync(join(tmp, CONFIG_FILE), `${JSON.stringify(config, null, 2)}\n`);
    writeFileSync(join(tmp, GENERATION_CONFIG_FILE), `${JSON.stringify(generation, null, 2)}\n`);
    if (options.tokenizerFrom) copyTokenizerFiles(options.tokenizerFrom, tmp);
    mkdirSync(join(tmp, 'onnx'));
    writeFileSync(join(tmp, ONNX_MODEL_FILE), bytes);
    for (const chunk of chunks) {
      const fd = openSync(join(tmp, 'onnx', chunk.name), 'w');
      try {
        for (const part of chunk.parts) writeAll(fd, part);
      } finally {
        closeSync(fd);
      }
    }
  });
  const g = proto.graph;
  return {
    out,
    modelFile: join(out, ONNX_MODEL_FILE),
    bytes: bytes.length + chunks.reduce((n, c) => n + c.bytes, 0),
    externalData: chunks.map((c) => join(out, 'onnx', c.name)),
    nodes: g.node.length,
    initializers: g.initializer.length,
    opset: ONNX_OPSET,
  };
}
