/**
 * Model directories in the Hub's layout: `loadModel(dir)`, `createModel(config)` (random init) and
 * `saveModel(model, dir)` (a directory transformers loads). Loading is a name lookup: parameter
 * names are the Hub's. Tied embeddings are read under either name, honouring the safetensors
 * `__metadata__` alias transformers writes; Attune writes `model.embed_tokens.weight` only.
 */
import { copyFileSync, existsSync, mkdirSync } from 'node:fs';
import { join } from 'node:path';
import { ConfigError, FormatError, TensorMismatchError } from '../errors.ts';
import {
  CONFIG_FILE,
  GENERATION_CONFIG_FILE,
  type JsonObject,
  openCheckpoint,
  readGenerationConfig,
  readModelConfig,
  SAFETENSORS_FILE,
  SAFETENSORS_INDEX_FILE,
  TOKENIZER_CONFIG_FILE,
  TOKENIZER_FILE,
  Tokenizer,
  tokenIdsOf,
  writeCheckpoint,
  writeJsonAtomic,
} from '../io/index.ts';
import { formatShape, type Tensor } from '../tensor/index.ts';
import { type LlamaConfig, parseLlamaConfig } from './llama/config.ts';
import { type LlamaBuildOptions, LlamaForCausalLM } from './llama/model.ts';

export type ModelDtype = 'f32' | 'bf16' | 'f64';

export interface LoadedModel {
  model: LlamaForCausalLM;
  config: LlamaConfig;
  /** null when the directory has no tokenizer.json. */
  tokenizer: Tokenizer | null;
  generationConfig: JsonObject | null;
  /** End-of-sequence ids from config.json and generation_config.json. */
  eosTokenIds: number[];
  dir: string;
}

export interface LoadModelOptions {
  /** Element type of the matrices: f32 (default), bf16 (frozen base in half the memory), f64 (reference). */
  dtype?: ModelDtype;
  /** Residual-stream dropout rate for training (default 0). */
  residualDropout?: number;
}

const TIED_NAMES = ['model.embed_tokens.weight', 'lm_head.weight'];

/** Build the architecture named by a config.json object. */
export function buildModel(
  configJson: JsonObject,
  options: LlamaBuildOptions,
  where = CONFIG_FILE,
): LlamaForCausalLM {
  const config = parseLlamaConfig(configJson, where);
  return new LlamaForCausalLM(config, options);
}

/** A randomly initialised model (HF's init, seeded) from a config.json object. */
export function createModel(
  configJson: JsonObject,
  options: { seed: number; dtype?: ModelDtype },
): LlamaForCausalLM {
  return buildModel(configJson, { init: 'random', seed: options.seed, dtype: options.dtype ?? 'f32' });
}

/** Load a Hub-format model directory (config.json, safetensors, tokenizer when present). */
export function loadModel(dir: string, options: LoadModelOptions = {}): LoadedModel {
  const configPath = join(dir, CONFIG_FILE);
  const configJson = readModelConfig(dir);
  const dtype = options.dtype ?? 'f32';
  checkSizesAgainstCheckpoint(parseLlamaConfig(configJson, configPath), dir, configPath);
  let model: LlamaForCausalLM;
  try {
    model = buildModel(
      configJson,
      { init: 'zeros', dtype, residualDropout: options.residualDropout ?? 0 },
      configPath,
    );
  } catch (error) {
    // Sizes too large to allocate (e.g. vocab_size 2^40): a config error, not a crash.
    if (!(error instanceof RangeError)) throw error;
    throw new ConfigError(
      `${configPath}: the model it describes cannot be allocated (${error.message}); check its sizes`,
    );
  }
  loadWeights(model, dir);
  const tokenizer = existsSync(join(dir, TOKENIZER_FILE)) ? Tokenizer.fromDir(dir) : null;
  const generationConfig = readGenerationConfig(dir);
  const eos = new Set<number>(model.config.eosTokenIds);
  if (generationConfig)
    for (const id of tokenIdsOf(generationConfig, join(dir, GENERATION_CONFIG_FILE))) eos.add(id);
  if (tokenizer) {
    tokenizer.addEosTokenIds([...eos]);
    for (const id of tokenizer.eosTokenIds) eos.add(id);
  }
  model.eval();
  return { model, config: model.config, tokenizer, generationConfig, eosTokenIds: [...eos], dir };
}

/**
 * Throws a ConfigError naming config.json when the model it describes is larger than the whole
 * checkpoint of `dir`, before anything is allocated (a hostile `num_hidden_layers: 2^40` would
 * otherwise loop or exhaust memory). A lower bound suffices: the embedding and the MLPs.
 */
function checkSizesAgainstCheckpoint(config: LlamaConfig, dir: string, configPath: string): void {
  const reader = openCheckpoint(dir);
  let stored = 0;
  try {
    for (const name of reader.names()) stored += reader.info(name).shape.reduce((a, b) => a * b, 1);
  } finally {
    reader.close();
  }
  const { vocabSize, hiddenSize, intermediateSize, numLayers } = config;
  const needed = vocabSize * hiddenSize + numLayers * 3 * hiddenSize * intermediateSize;
  if (needed > stored) {
    throw new ConfigError(
      `${configPath}: the model it describes has at least ${needed} parameters (vocab_size ${vocabSize}, ` +
        `hidden_size ${hiddenSize}, intermediate_size ${intermediateSize}, num_hidden_layers ${numLayers}), ` +
        `more than the ${stored} values in the checkpoint of ${dir}`,
    );
  }
}

/** Copy the checkpoint in `dir` into the model's parameters; validates everything before copying. */
export function loadWeights(model: LlamaForCausalLM, dir: string): void {
  const reader = openCheckpoint(dir);
  const file = existsSync(join(dir, SAFETENSORS_INDEX_FILE))
    ? join(dir, SAFETENSORS_INDEX_FILE)
    : join(dir, SAFETENSORS_FILE);
  try {
    const metadata = reader.metadata();
    const params = model.namedParameters();
    const sources = new Map<string, string>();
    const missing: string[] = [];
    const problems: string[] = [];
    for (const [name, p] of params) {
      let source: string | undefined = reader.has(name) ? name : undefined;
      const alias = metadata[name];
      if (!source && alias && reader.has(alias)) source = alias;
      if (!source && model.config.tieWordEmbeddings && TIED_NAMES.includes(name)) {
        source = TIED_NAMES.find((n) => reader.has(n));
      }
      if (!source) {
        missing.push(name);
        continue;
      }
      const info = reader.info(source);
      const same = info.shape.length === p.shape.length && info.shape.every((d, i) => d === p.shape[i]);
      if (!same) {
        problems.push(
          `tensor '${source}' has shape ${formatShape(info.shape)}, expected ${formatShape(p.shape)} for '${name}'`,
        );
      }
      sources.set(name, source);
    }
    if (missing.length > 0) {
      const shown =
        missing.slice(0, 5).join(', ') + (missing.length > 5 ? `, ... (${missing.length} in all)` : '');
      throw new TensorMismatchError(`${file}: missing tensor(s) ${shown} required by ${CONFIG_FILE}`);
    }
    if (problems.length > 0) throw new TensorMismatchError(`${file}: ${problems.slice(0, 5).join('; ')}`);
    const used = new Set(sources.values());
    const unexpected = reader
      .names()
      .filter((n) => !used.has(n) && !(model.config.tieWordEmbeddings && TIED_NAMES.includes(n)));
    // rotary inv_freq buffers written by old transformers versions are harmless
    const meaningful = unexpected.filter((n) => !n.endsWith('rotary_emb.inv_freq'));
    if (meaningful.length > 0) {
      throw new TensorMismatchError(
        `${file}: unexpected tensor(s) ${meaningful.slice(0, 5).join(', ')} not used by a ${model.config.modelType} model (wrong config.json?)`,
      );
    }
    for (const [name, p] of params) {
      const source = sources.get(name)!;
      const wanted = p.dtype === 'bf16' ? 'bf16' : 'f32';
      const t: Tensor = reader.read(source, { dtype: wanted });
      try {
        if (p.dtype === 'f64') {
          const src = t.data as Float32Array;
          const dst = p.data as Float64Array;
          for (let i = 0; i < src.length; i++) dst[i] = src[i]!;
        } else {
          (p.data as Float32Array).set(t.data as Float32Array);
        }
      } finally {
        t.release();
      }
    }
  } finally {
    reader.close();
  }
}

export interface SaveModelOptions {
  tokenizer?: Tokenizer | null;
  generationConfig?: JsonObject | null;
  /** Copy tokenizer files from this directory (when no Tokenizer object is given). */
  tokenizerFrom?: string;
  maxShardBytes?: number;
}

/** Write `model` as a Hub-format directory transformers can load. */
export function saveModel(model: LlamaForCausalLM, dir: string, options: SaveModelOptions = {}): void {
  mkdirSync(dir, { recursive: true });
  const tensors = new Map<string, Tensor>();
  let dtype: 'f32' | 'bf16' = 'f32';
  for (const [name, p] of model.namedParameters()) {
    if (p.dtype === 'f64')
      throw new ConfigError(`saveModel: '${name}' is f64; convert the model to f32 before saving`);
    if (p.dtype === 'bf16') dtype = 'bf16';
    tensors.set(name, p);
  }
  writeCheckpoint(dir, tensors, { maxShardBytes: options.maxShardBytes });
  const config: JsonObject = { ...model.config.raw };
  config.torch_dtype = dtype === 'bf16' ? 'bfloat16' : 'float32';
  config.tie_word_embeddings = model.config.tieWordEmbeddings;
  writeJsonAtomic(join(dir, CONFIG_FILE), config);
  const generation = options.generationConfig ?? {
    bos_token_id: model.config.bosTokenId ?? undefined,
    eos_token_id:
      model.config.eosTokenIds.length === 1 ? model.config.eosTokenIds[0] : model.config.eosTokenIds,
  };
  writeJsonAtomic(join(dir, GENERATION_CONFIG_FILE), generation);
  if (options.tokenizer) options.tokenizer.save(dir);
  else if (options.tokenizerFrom) copyTokenizerFiles(options.tokenizerFrom, dir);
}

/** Copy the tokenizer files of a model directory into another. */
export function copyTokenizerFiles(from: string, to: string): void {
  if (!existsSync(join(from, TOKENIZER_FILE)))
    throw new FormatError(join(from, TOKENIZER_FILE), 'file not found');
  for (const f of [TOKENIZER_FILE, TOKENIZER_CONFIG_FILE, 'special_tokens_map.json', 'chat_template.jinja']) {
    if (existsSync(join(from, f))) copyFileSync(join(from, f), join(to, f));
  }
}
