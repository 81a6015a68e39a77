/** Options and loading shared by commands that run a model (generate, score, eval). */
import { readFileSync } from 'node:fs';
import { FormatError, UsageError } from '../errors.ts';
import type { Tokenizer } from '../io/index.ts';
import {
  type CausalLM,
  FusedModel,
  type FusionWeights,
  type LoadedModel,
  loadModel,
  type WeightStorage,
} from '../models/index.ts';
import { loadAdapter } from '../peft/index.ts';
import { isQuantFormat } from '../tensor/index.ts';
import { TRAIN_PRECISIONS, type TrainPrecision } from '../train/precision.ts';

/** --model (required), --adapter and --dtype. */
export const modelOptions = {
  model: {
    type: 'path',
    required: true,
    description: 'Hub-format model directory (config.json, safetensors, tokenizer)',
    valueName: '<dir>',
  },
  adapter: {
    type: 'path',
    description: 'PEFT adapter directory to apply (adapter_config.json + adapter_model.safetensors)',
    valueName: '<dir>',
  },
  dtype: {
    type: 'choice',
    choices: ['f32', 'bf16', 'int8', 'nf4'],
    description:
      'weight storage (int8 / nf4: the attention and MLP matrices block-quantised, dequantised inside the GEMM; embeddings and LM head bf16)',
    default: 'f32',
  },
  precision: {
    type: 'choice',
    choices: TRAIN_PRECISIONS as TrainPrecision[],
    description:
      'compute precision (as `attune bench train --precision`): bf16-mixed stores the weight matrices in bf16 (whatever --dtype says) and runs the GEMMs with bf16 inputs and f32 accumulation; norms, softmax and attention stay f32',
    default: 'f32',
  },
} as const;

/**
 * The storage dtype of the base weights for inference under `precision`: int8 / nf4 as asked, bf16
 * under bf16-mixed (the f32 copy is never in memory), else `dtype`.
 */
export function inferenceDtype(dtype: WeightStorage, precision: TrainPrecision = 'f32'): WeightStorage {
  if (isQuantFormat(dtype)) return dtype;
  return precision === 'bf16-mixed' ? 'bf16' : dtype;
}

/**
 * Load --model (with --adapter applied) as the flags say, in eval mode, with the compute precision
 * of --precision (an adapter's own small matrices keep the precision their layer pins).
 */
export function loadModelFromFlags(values: {
  model: string;
  adapter?: string | undefined;
  dtype: WeightStorage;
  precision?: TrainPrecision | undefined;
}): LoadedModel {
  const precision = values.precision ?? 'f32';
  const loaded = loadModel(values.model, { dtype: inferenceDtype(values.dtype, precision) });
  if (values.adapter) loadAdapter(loaded.model, values.adapter);
  loaded.model.setComputePrecision(precision === 'bf16-mixed' ? 'bf16' : 'f32');
  loaded.model.eval();
  return loaded;
}

/** A stop string as typed on a command line: `\n` and `\t` stand for newline and tab. */
export function unescapeStop(text: string): string {
  return text.replace(/\\n/g, '\n').replace(/\\t/g, '\t');
}

/** The source of a `--chat-template` file; a missing or unreadable file is a FormatError naming it. */
export function readChatTemplate(path: string): string {
  try {
    return readFileSync(path, 'utf8');
  } catch (error) {
    const code = (error as NodeJS.ErrnoException).code;
    throw new FormatError(
      path,
      code === 'ENOENT' ? 'file not found' : `cannot read: ${(error as Error).message}`,
    );
  }
}

/** A UsageError pointing to --chat-template unless `tokenizer` has a default chat template. */
export function requireChatTemplate(tokenizer: Tokenizer, what: string): void {
  if (tokenizer.chatTemplate !== null) return;
  const named = Object.keys(tokenizer.chatTemplates);
  throw new UsageError(
    `${what}: the tokenizer of ${tokenizer.origin} has ${named.length > 0 ? `no default chat template (named: ${named.join(', ')})` : 'no chat template'}; pass one with --chat-template <file>`,
  );
}

/** A model directory with an optional adapter, as `--strong DIR[:ADAPTER]` spells it. */
export interface ModelRef {
  model: string;
  adapter?: string;
}

/**
 * Parse `DIR[:ADAPTER]` of option `flag`: the text before the first `:` is the model directory, the
 * rest the adapter directory (so a model path cannot contain ':').
 */
export function parseModelRef(text: string, flag: string): ModelRef {
  const at = text.indexOf(':');
  const model = at < 0 ? text : text.slice(0, at);
  const adapter = at < 0 ? undefined : text.slice(at + 1);
  if (model === '' || adapter === '')
    throw new UsageError(`${flag}: expected MODEL_DIR or MODEL_DIR:ADAPTER_DIR, got ${JSON.stringify(text)}`);
  return adapter === undefined ? { model } : { model, adapter };
}

/** --strong, --weak-base and --weak-tuned (weak-to-strong logit fusion) and --fusion-weights. */
export const fusionOptions = {
  strong: {
    type: 'string',
    description: 'fuse: the strong (large) model, DIR or DIR:ADAPTER (replaces --model)',
    valueName: '<dir[:adapter]>',
  },
  'weak-base': {
    type: 'string',
    multiple: true,
    description: 'fuse: a small base model, DIR[:ADAPTER]; once for every expert, or once per --weak-tuned',
    valueName: '<dir[:adapter]>',
  },
  'weak-tuned': {
    type: 'string',
    multiple: true,
    description: 'fuse: a small tuned expert, DIR[:ADAPTER]; repeat for several experts',
    valueName: '<dir[:adapter]>',
  },
  'fusion-weights': {
    type: 'string',
    description:
      "fuse: 'dynamic' (per-step KL rule) or fixed comma-separated weights per expert (proxy tuning)",
    default: 'dynamic',
    valueName: '<dynamic|w,...>',
  },
} as const;

/** The fusion flags as parsed. */
export interface FusionFlags {
  strong?: string | undefined;
  'weak-base': string[];
  'weak-tuned': string[];
  'fusion-weights': string;
}

/** `dynamic`, or one finite number per expert. */
export function parseFusionWeights(text: string, experts: number): FusionWeights {
  if (text === 'dynamic') return 'dynamic';
  const parts = text.split(',').map((t) => t.trim());
  const weights = parts.map(Number);
  if (parts.some((t) => t === '') || weights.some((w) => !Number.isFinite(w)))
    throw new UsageError(
      `--fusion-weights: expected 'dynamic' or comma-separated numbers, got ${JSON.stringify(text)}`,
    );
  if (weights.length !== experts)
    throw new UsageError(
      `--fusion-weights: expected one weight per --weak-tuned (${experts}), got ${weights.length}`,
    );
  return weights;
}

/** A model to run: a loaded model, or a fusion standing in for one. */
export interface RunnableModel extends Omit<LoadedModel, 'model' | 'config' | 'generationConfig'> {
  model: CausalLM;
  /** Set when the model is a fusion (its weights per step are reported by the caller). */
  fused: FusedModel | null;
}

/**
 * --model (+ --adapter), or the fusion of --strong with the --weak-tuned experts and their
 * --weak-base(s); exactly one of the two. The strong model gives the tokenizer and EOS ids; every
 * member must share its vocabulary (a clear error names the two that differ).
 */
export function loadRunnableFromFlags(
  values: {
    model?: string | undefined;
    adapter?: string | undefined;
    dtype: WeightStorage;
    precision?: TrainPrecision | undefined;
  } & FusionFlags,
  command: string,
): RunnableModel {
  const fusing =
    values.strong !== undefined || values['weak-base'].length > 0 || values['weak-tuned'].length > 0;
  if (!fusing) {
    if (values.model === undefined)
      throw new UsageError('--model <dir> is required (or --strong, --weak-base and --weak-tuned to fuse)');
    const loaded = loadModelFromFlags({ ...values, model: values.model });
    return { ...loaded, fused: null };
  }
  if (values.model !== undefined || values.adapter !== undefined)
    throw new UsageError(
      `${command}: --strong replaces --model and --adapter (its adapter is --strong DIR:ADAPTER)`,
    );
  if (values.strong === undefined) throw new UsageError(`${command}: fusion needs --strong DIR[:ADAPTER]`);
  const tunedRefs = values['weak-tuned'];
  const baseRefs = values['weak-base'];
  if (tunedRefs.length === 0)
    throw new UsageError(`${command}: fusion needs at least one --weak-tuned DIR[:ADAPTER]`);
  if (baseRefs.length !== 1 && baseRefs.length !== tunedRefs.length)
    throw new UsageError(
      `${command}: give one --weak-base for every expert or one per --weak-tuned (${tunedRefs.length}), got ${baseRefs.length}`,
    );
  const weights = parseFusionWeights(values['fusion-weights'], tunedRefs.length);
  // one load per distinct DIR[:ADAPTER]: a base shared by several experts is one member
  const loadedByRef = new Map<string, LoadedModel>();
  const load = (text: string, flag: string) => {
    const known = loadedByRef.get(text);
    if (known) return { name: `${flag} ${text}`, loaded: known };
    const ref = parseModelRef(text, flag);
    const loaded = loadModelFromFlags({
      model: ref.model,
      adapter: ref.adapter,
      dtype: values.dtype,
      precision: values.precision,
    });
    loadedByRef.set(text, loaded);
    return { name: `${flag} ${text}`, loaded };
  };
  const member = (m: ReturnType<typeof load>) => ({
    name: m.name,
    model: m.loaded.model,
    tokenizer: m.loaded.tokenizer,
  });
  const strong = load(values.strong, '--strong');
  const experts = tunedRefs.map((t, i) => ({
    tuned: member(load(t, '--weak-tuned')),
    base: member(load(baseRefs[baseRefs.length === 1 ? 0 : i]!, '--weak-base')),
  }));
  const fused = new FusedModel(member(strong), experts, { weights });
  fused.eval();
  return {
    model: fused,
    fused,
    tokenizer: strong.loaded.tokenizer,
    eosTokenIds: strong.loaded.eosTokenIds,
    dir: strong.loaded.dir,
  };
}
