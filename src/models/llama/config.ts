/**
 * Llama-family configuration (llama, mistral, qwen2; SmolLM and TinyLlama are llama) parsed from a
 * Hub config.json. Fields that change the math and are not supported are errors naming the field;
 * informational fields are ignored.
 */
import { ConfigError } from '../../errors.ts';
import { briefJson } from '../../io/json.ts';
import type { CausalLMConfig } from '../causal-lm.ts';
import { bool, bounded, idList, num, posInt } from '../config-fields.ts';

export interface Llama3RopeScaling {
  type: 'llama3';
  factor: number;
  low_freq_factor: number;
  high_freq_factor: number;
  original_max_position_embeddings: number;
}

export interface LlamaConfig extends CausalLMConfig {
  modelType: 'llama' | 'mistral' | 'qwen2';
  rmsNormEps: number;
  ropeTheta: number;
  ropeScaling: Llama3RopeScaling | null;
  /** Bias on q/k/v projections (qwen2: always; llama: attention_bias). */
  qkvBias: boolean;
  /** Bias on o_proj (llama attention_bias). */
  oBias: boolean;
  mlpBias: boolean;
  attentionDropout: number;
  /** Sliding-window size (mistral / qwen2 with use_sliding_window), null when off. */
  slidingWindow: number | null;
}

/** The model types this config describes. */
export const LLAMA_MODEL_TYPES = ['llama', 'mistral', 'qwen2'] as const;
const SUPPORTED_TYPES = LLAMA_MODEL_TYPES;

function parseRopeScaling(raw: Record<string, unknown>, where: string): Llama3RopeScaling | null {
  const rs = raw.rope_scaling;
  if (rs === undefined || rs === null) return null;
  if (typeof rs !== 'object') throw new ConfigError(`${where}: 'rope_scaling' must be an object or null`);
  const r = rs as Record<string, unknown>;
  const type = r.rope_type ?? r.type;
  if (type === 'default') return null;
  if (type !== 'llama3') {
    throw new ConfigError(
      `${where}: 'rope_scaling.rope_type' = ${briefJson(type)} is not supported (supported: llama3, default)`,
    );
  }
  const w = `${where} rope_scaling`;
  return {
    type: 'llama3',
    factor: num(r, 'factor', w),
    low_freq_factor: num(r, 'low_freq_factor', w),
    high_freq_factor: num(r, 'high_freq_factor', w),
    original_max_position_embeddings: posInt(r, 'original_max_position_embeddings', w),
  };
}

/** Validate a config.json object into a LlamaConfig. `where` names the file in errors. */
export function parseLlamaConfig(raw: Record<string, unknown>, where = 'config.json'): LlamaConfig {
  const modelType = raw.model_type;
  if (!SUPPORTED_TYPES.includes(modelType as (typeof SUPPORTED_TYPES)[number])) {
    throw new ConfigError(
      `${where}: 'model_type' = ${briefJson(modelType)} is not supported (supported: ${SUPPORTED_TYPES.join(', ')})`,
    );
  }
  const type = modelType as LlamaConfig['modelType'];
  const hiddenSize = posInt(raw, 'hidden_size', where);
  const numHeads = posInt(raw, 'num_attention_heads', where);
  const numKvHeads = posInt(raw, 'num_key_value_heads', where, numHeads);
  if (numHeads % numKvHeads !== 0) {
    throw new ConfigError(
      `${where}: 'num_attention_heads' (${numHeads}) must be a multiple of 'num_key_value_heads' (${numKvHeads})`,
    );
  }
  const headDimDefault = hiddenSize / numHeads;
  const headDim = posInt(
    raw,
    'head_dim',
    where,
    Number.isInteger(headDimDefault) ? headDimDefault : undefined,
  );
  if (headDim % 2 !== 0)
    throw new ConfigError(`${where}: head dim ${headDim} must be even for rotary embeddings`);
  const act = raw.hidden_act ?? 'silu';
  if (act !== 'silu') {
    throw new ConfigError(`${where}: 'hidden_act' = ${briefJson(act)} is not supported (only silu / SwiGLU)`);
  }
  const partial = raw.partial_rotary_factor;
  if (partial !== undefined && partial !== null && partial !== 1 && partial !== 1.0) {
    throw new ConfigError(`${where}: 'partial_rotary_factor' = ${partial} is not supported (only 1)`);
  }
  let slidingWindow: number | null = null;
  if (type === 'mistral' && raw.sliding_window !== undefined && raw.sliding_window !== null) {
    slidingWindow = posInt(raw, 'sliding_window', where);
  }
  if (type === 'qwen2' && bool(raw, 'use_sliding_window', where, false) && raw.sliding_window) {
    slidingWindow = posInt(raw, 'sliding_window', where);
  }
  const attentionBias = bool(raw, 'attention_bias', where, false);
  const eos = idList(raw.eos_token_id, where);
  return {
    modelType: type,
    vocabSize: posInt(raw, 'vocab_size', where),
    hiddenSize,
    intermediateSize: posInt(raw, 'intermediate_size', where),
    numLayers: posInt(raw, 'num_hidden_layers', where),
    numHeads,
    numKvHeads,
    headDim,
    rmsNormEps: bounded(raw, 'rms_norm_eps', where, 1e-6, 'positive'),
    ropeTheta: bounded(raw, 'rope_theta', where, 10000, 'positive'),
    ropeScaling: parseRopeScaling(raw, where),
    maxPositionEmbeddings: posInt(raw, 'max_position_embeddings', where, 2048),
    tieWordEmbeddings: bool(raw, 'tie_word_embeddings', where, false),
    qkvBias: type === 'qwen2' ? true : attentionBias,
    oBias: type === 'qwen2' ? false : attentionBias,
    mlpBias: bool(raw, 'mlp_bias', where, false),
    attentionDropout: bounded(raw, 'attention_dropout', where, 0, 'rate'),
    slidingWindow,
    bosTokenId: typeof raw.bos_token_id === 'number' ? raw.bos_token_id : null,
    eosTokenIds: eos,
    padTokenId: typeof raw.pad_token_id === 'number' ? raw.pad_token_id : null,
    raw: { ...raw },
  };
}

/** Throws when a sequence of `length` tokens would need a feature the config turns on but Attune lacks. */
export function checkSequenceLength(config: LlamaConfig, length: number): void {
  if (config.slidingWindow !== null && length > config.slidingWindow) {
    throw new ConfigError(
      `config 'sliding_window' = ${config.slidingWindow} is shorter than the sequence (${length} tokens); sliding-window attention is not supported`,
    );
  }
}

/** A config.json object for a new llama model (random init, tests, pretraining from scratch). */
export function llamaConfigJson(fields: {
  vocabSize: number;
  hiddenSize: number;
  intermediateSize: number;
  numLayers: number;
  numHeads: number;
  numKvHeads?: number;
  maxPositionEmbeddings?: number;
  ropeTheta?: number;
  tieWordEmbeddings?: boolean;
  rmsNormEps?: number;
  modelType?: 'llama' | 'qwen2';
  bosTokenId?: number;
  eosTokenId?: number;
}): Record<string, unknown> {
  const type = fields.modelType ?? 'llama';
  return {
    architectures: [type === 'qwen2' ? 'Qwen2ForCausalLM' : 'LlamaForCausalLM'],
    model_type: type,
    vocab_size: fields.vocabSize,
    hidden_size: fields.hiddenSize,
    intermediate_size: fields.intermediateSize,
    num_hidden_layers: fields.numLayers,
    num_attention_heads: fields.numHeads,
    num_key_value_heads: fields.numKvHeads ?? fields.numHeads,
    max_position_embeddings: fields.maxPositionEmbeddings ?? 2048,
    rope_theta: fields.ropeTheta ?? 10000,
    rms_norm_eps: fields.rmsNormEps ?? 1e-6,
    tie_word_embeddings: fields.tieWordEmbeddings ?? true,
    hidden_act: 'silu',
    attention_bias: false,
    attention_dropout: 0,
    mlp_bias: false,
    rope_scaling: null,
    bos_token_id: fields.bosTokenId ?? 1,
    eos_token_id: fields.eosTokenId ?? 2,
    torch_dtype: 'float32',
    initializer_range: 0.02,
    use_cache: true,
  };
}
