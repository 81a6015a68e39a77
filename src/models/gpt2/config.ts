/**
 * GPT-2 configuration (`model_type: gpt2`) parsed from a Hub config.json, with transformers'
 * GPT2Config defaults for the optional fields. Fields that change the math and are not supported
 * (`scale_attn_by_inverse_layer_idx`, `reorder_and_upcast_attn`, `add_cross_attention` when true,
 * an activation Attune has no kernel for) are errors naming the field; informational fields
 * (`n_ctx`, `summary_*`, `use_cache`, `task_specific_params`, ...) are ignored.
 */
import { ConfigError } from '../../errors.ts';
import type { CausalLMConfig } from '../causal-lm.ts';
import { bool, bounded, idList, num, posInt } from '../config-fields.ts';

/** GPT-2's `activation_function` values Attune runs, and the unary kernel each one is. */
export const GPT2_ACTIVATIONS = {
  gelu_new: 'gelu_tanh',
  gelu_pytorch_tanh: 'gelu_tanh',
  gelu: 'gelu_erf',
  relu: 'relu',
  silu: 'silu',
  swish: 'silu',
} as const;

export type Gpt2Activation = keyof typeof GPT2_ACTIVATIONS;

export interface Gpt2Config extends CausalLMConfig {
  modelType: 'gpt2';
  /** transformers' `activation_function`. */
  activation: Gpt2Activation;
  layerNormEps: number;
  /** Dropout rates: attention probabilities, residual branches (attn and mlp outputs), embeddings. */
  attnPdrop: number;
  residPdrop: number;
  embdPdrop: number;
  /** Scale q.k by 1/sqrt(head_dim) (`scale_attn_weights`, default true). */
  scaleAttnWeights: boolean;
}

function rate(raw: Record<string, unknown>, key: string, where: string): number {
  const v = num(raw, key, where, 0.1);
  if (!(v >= 0 && v < 1)) throw new ConfigError(`${where}: field '${key}' must be in [0, 1), found ${v}`);
  return v;
}

function refuseIfTrue(raw: Record<string, unknown>, key: string, where: string, what: string): void {
  if (bool(raw, key, where, false))
    throw new ConfigError(`${where}: '${key}' = true is not supported (${what})`);
}

/** Validate a config.json object into a Gpt2Config. `where` names the file in errors. */
export function parseGpt2Config(raw: Record<string, unknown>, where = 'config.json'): Gpt2Config {
  if (raw.model_type !== 'gpt2') {
    throw new ConfigError(`${where}: 'model_type' = ${JSON.stringify(raw.model_type)}, expected "gpt2"`);
  }
  refuseIfTrue(raw, 'scale_attn_by_inverse_layer_idx', where, 'attention scaled by 1 / (layer index + 1)');
  refuseIfTrue(
    raw,
    'reorder_and_upcast_attn',
    where,
    'attention upcast to float32 with reordered scaling (Stanford Mistral)',
  );
  refuseIfTrue(raw, 'add_cross_attention', where, 'cross-attention to an encoder');
  const act = raw.activation_function ?? 'gelu_new';
  if (typeof act !== 'string' || !Object.hasOwn(GPT2_ACTIVATIONS, act)) {
    throw new ConfigError(
      `${where}: 'activation_function' = ${JSON.stringify(act)} is not supported (supported: ${Object.keys(GPT2_ACTIVATIONS).join(', ')})`,
    );
  }
  const hiddenSize = posInt(raw, 'n_embd', where);
  const numHeads = posInt(raw, 'n_head', where);
  if (hiddenSize % numHeads !== 0) {
    throw new ConfigError(`${where}: 'n_embd' (${hiddenSize}) must be a multiple of 'n_head' (${numHeads})`);
  }
  const inner = raw.n_inner;
  return {
    modelType: 'gpt2',
    vocabSize: posInt(raw, 'vocab_size', where),
    hiddenSize,
    intermediateSize: inner === undefined || inner === null ? 4 * hiddenSize : posInt(raw, 'n_inner', where),
    numLayers: posInt(raw, 'n_layer', where),
    numHeads,
    numKvHeads: numHeads,
    headDim: hiddenSize / numHeads,
    maxPositionEmbeddings: posInt(raw, 'n_positions', where, 1024),
    tieWordEmbeddings: bool(raw, 'tie_word_embeddings', where, true),
    activation: act as Gpt2Activation,
    layerNormEps: bounded(raw, 'layer_norm_epsilon', where, 1e-5, 'positive'),
    attnPdrop: rate(raw, 'attn_pdrop', where),
    residPdrop: rate(raw, 'resid_pdrop', where),
    embdPdrop: rate(raw, 'embd_pdrop', where),
    scaleAttnWeights: bool(raw, 'scale_attn_weights', where, true),
    bosTokenId: typeof raw.bos_token_id === 'number' ? raw.bos_token_id : null,
    eosTokenIds: idList(raw.eos_token_id, where),
    padTokenId: typeof raw.pad_token_id === 'number' ? raw.pad_token_id : null,
    raw: { ...raw },
  };
}

/** A config.json object for a new GPT-2 (random init, tests, pretraining from scratch). */
export function gpt2ConfigJson(fields: {
  vocabSize: number;
  hiddenSize: number;
  numLayers: number;
  numHeads: number;
  intermediateSize?: number;
  maxPositions?: number;
  layerNormEps?: number;
  dropout?: number;
  activation?: Gpt2Activation;
  tieWordEmbeddings?: boolean;
  bosTokenId?: number;
  eosTokenId?: number;
}): Record<string, unknown> {
  const p = fields.dropout ?? 0.1;
  return {
    architectures: ['GPT2LMHeadModel'],
    model_type: 'gpt2',
    activation_function: fields.activation ?? 'gelu_new',
    vocab_size: fields.vocabSize,
    n_embd: fields.hiddenSize,
    n_layer: fields.numLayers,
    n_head: fields.numHeads,
    n_inner: fields.intermediateSize ?? null,
    n_positions: fields.maxPositions ?? 1024,
    n_ctx: fields.maxPositions ?? 1024,
    layer_norm_epsilon: fields.layerNormEps ?? 1e-5,
    attn_pdrop: p,
    embd_pdrop: p,
    resid_pdrop: p,
    scale_attn_weights: true,
    scale_attn_by_inverse_layer_idx: false,
    reorder_and_upcast_attn: false,
    tie_word_embeddings: fields.tieWordEmbeddings ?? true,
    bos_token_id: fields.bosTokenId ?? fields.vocabSize - 1,
    eos_token_id: fields.eosTokenId ?? fields.vocabSize - 1,
    initializer_range: 0.02,
    torch_dtype: 'float32',
    use_cache: true,
  };
}
