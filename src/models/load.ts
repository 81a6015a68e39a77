/**
 * Model directories in the Hub's layout: `loadModel(dir)`, `createModel(config)` (random init) and
 * `saveModel(model, dir)` (a directory transformers loads), for every architecture of the
 * `model_type` registry. Loading is a name lookup: parameter names are the Hub's. Tied embeddings
 * are read under either name, honouring the safetensors `__metadata__` alias transformers writes;
 * Attune writes the embedding name only (`model.embed_tokens.weight`, `transformer.wte.weight`).
 * The config is checked against the checkpoint's shapes first (weights-check.ts).
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
import { quantizeFrozenBase, quantizeParameterAt } from '../nn/index.ts';
import { formatShape, isQuantFormat, type QuantFormat, type Tensor } from '../tensor/index.ts';
import './builtin.ts';
import type { CausalLM, CausalLMConfig, ModelBuildOptions, ModelDtype } from './causal-lm.ts';
import { architectureFor, architectureOf } from './registry.ts';
import { checkConfigAgainstWeights, checkModelDir, checkpointNameOf } from './weights-check.ts';

export type { ModelDtype } from './causal-lm.ts';

/**
 * Storage of the weights at load: a build dtype, or a block-quantised format for the frozen base
 * matrices (int8 / nf4: the model is built in bf16, then every Linear / Conv1D weight but the LM
 * head is quantised; embeddings, norms and biases stay as bf16 / f32 would have them).
 */
export type WeightStorage = ModelDtype | QuantFormat;

/** The dtype a model is built in for `storage` (bf16 for the quantised formats). */
export function buildDtypeOf(storage: WeightStorage): ModelDtype {
  return isQuantFormat(storage) ? 'bf16' : storage;
}

/**
 * Called with each parameter once its values are in: quantises the frozen base matrices one at a
 * time when `storage` is int8 / nf4 (undefined otherwise).
 */
function streamingQuantizer(storage: WeightStorage): ((model: CausalLM, name: string) => void) | undefined {
  if (!isQuantFormat(storage)) return undefined;
  return (model, name) => {
    quantizeParameterAt(model, name, storage);
  };
}

export interface LoadedModel {
  model: CausalLM;
  config: CausalLMConfig;
  /** null when the directory has no tokenizer.json. */
  tokenizer: Tokenizer | null;
  generationConfig: JsonObject | null;
  /** End-of-sequence ids from config.json and generation_config.json. */
  eosTokenIds: number[];
  dir: string;
}

export interface LoadModelOptions {
  /**
   * Element type of the matrices: f32 (default), bf16 (frozen base in half the memory), f64
   * (reference), or int8 / nf4 (frozen Linear weights block-quantised: `WeightStorage`).
   */
  dtype?: WeightStorage;
  /** Residual-stream dropout rate for training (Llama default 0; GPT-2: replaces resid_pdrop when > 0). */
  residualDropout?: number;
}

/** Build the architecture named by a config.json object's `model_type`. */
export function buildModel(
  configJson: JsonObject,
  options: ModelBuildOptions,
  where = CONFIG_FILE,
): CausalLM {
  const arch = architectureOf(configJson, where);
  return arch.build(arch.parseConfig(configJson, where), options);
}

/** A randomly initialised model (HF's init, seeded) from a config.json object. */
export function createModel(
  configJson: JsonObject,
  options: { seed: number; dtype?: WeightStorage },
): CausalLM {
  const storage = options.dtype ?? 'f32';
  const model = buildModel(configJson, {
    init: 'random',
    seed: options.seed,
    dtype: buildDtypeOf(storage),
    onParameterInit: streamingQuantizer(storage),
  });
  // what the init did not visit (a matrix it leaves at its constructor's values)
  if (isQuantFormat(storage)) quantizeFrozenBase(model, storage);
  return model;
}

/** Load a Hub-format model directory (config.json, safetensors, tokenizer when present). */
export function loadModel(dir: string, options: LoadModelOptions = {}): LoadedModel {
  const configPath = join(dir, CONFIG_FILE);
  const configJson = readModelConfig(dir);
  const storage = options.dtype ?? 'f32';
  const dtype = buildDtypeOf(storage);
  // config.json against the weights' shapes before anything is allocated: a hostile
  // `num_hidden_layers: 2^40` is a one-line config error, not a hang or an out-of-memory
  checkModelDir(dir);
  let model: CausalLM;
  try {
    model = buildModel(
      configJson,
      { init: 'zeros', dtype, residualDropout: options.residualDropout ?? 0 },
      configPath,
    );
  } catch (error) {
    // sizes too large to allocate (e.g. vocab_size 2^40): a config error, not a crash
    if (!(error instanceof RangeError)) throw error;
    throw new ConfigError(
      `${configPath}: the model it describes cannot be allocated (${error.message}); check its sizes`,
    );
  }
  loadWeights(model, dir, streamingQuantizer(storage));
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
 * Copy the checkpoint in `dir` into the model's parameters; validates everything (config fields
 * against shapes first, then every tensor's name and shape) before copying. On the native backend a
 * tensor stored in the parameter's dtype is not copied: the parameter adopts a view into the file's
 * memory mapping (see `TensorReader.readMapped`; ATTUNE_MMAP=0 turns this off). `onLoaded` is
 * called with each parameter's name once its values are in (streaming quantisation).
 */
export function loadWeights(
  model: CausalLM,
  dir: string,
  onLoaded?: (model: CausalLM, name: string) => void,
): void {
  const arch = architectureFor(model.config.modelType);
  const config = model.config;
  const reader = openCheckpoint(dir);
  const file = existsSync(join(dir, SAFETENSORS_INDEX_FILE))
    ? join(dir, SAFETENSORS_INDEX_FILE)
    : join(dir, SAFETENSORS_FILE);
  try {
    checkConfigAgainstWeights(arch, config, reader, join(dir, CONFIG_FILE));
    const params = model.namedParameters();
    const sources = new Map<string, string>();
    const missing: string[] = [];
    const problems: string[] = [];
    for (const [name, p] of params) {
      const source = checkpointNameOf(arch, config, reader, name);
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
    const tied = (n: string) =>
      config.tieWordEmbeddings &&
      arch.tiedNames.some((t) => n === t || (arch.basePrefix !== null && `${arch.basePrefix}${n}` === t));
    const unexpected = reader.names().filter((n) => !used.has(n) && !tied(n));
    const meaningful = unexpected.filter((n) => !arch.ignoredTensors?.test(n));
    if (meaningful.length > 0) {
      throw new TensorMismatchError(
        `${file}: unexpected tensor(s) ${meaningful.slice(0, 5).join(', ')} not used by a ${model.config.modelType} model (wrong config.json?)`,
      );
    }
    // by name, the snapshot dropped: a parameter `onLoaded` replaces (quantises) is not kept alive
    const names = params.map(([n]) => n);
    params.length = 0;
    for (const name of names) {
      const p = model.getParameter(name);
      const source = sources.get(name)!;
      const wanted = p.dtype === 'bf16' ? 'bf16' : 'f32';
      // zero-copy where the file holds the wanted dtype, aligned (native backend): the parameter
      // becomes a view into the file's private copy-on-write mapping
      const view = p.dtype === 'f64' ? null : reader.readMapped(source, { dtype: wanted });
      if (view) {
        p.adoptData(view.data);
        view.release();
        onLoaded?.(model, name);
        continue;
      }
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
      onLoaded?.(model, name);
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
export function saveModel(model: CausalLM, dir: string, options: SaveModelOptions = {}): void {
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
