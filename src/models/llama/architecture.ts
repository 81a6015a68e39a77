/** The llama family (llama, mistral, qwen2) in the model_type registry. */
import type { Architecture, ShapeCheck } from '../registry.ts';
import { LLAMA_MODEL_TYPES, type LlamaConfig, parseLlamaConfig } from './config.ts';
import { LlamaForCausalLM } from './model.ts';

/** Config fields against the tensor sizes they fix (first layer; every layer is checked by name). */
function llamaShapeChecks(c: LlamaConfig): ShapeCheck[] {
  const attn = 'model.layers.0.self_attn';
  const heads = `${c.numHeads} (x head_dim ${c.headDim} = ${c.numHeads * c.headDim})`;
  const kv = `${c.numKvHeads} (x head_dim ${c.headDim} = ${c.numKvHeads * c.headDim})`;
  const checks: ShapeCheck[] = [
    {
      field: 'vocab_size',
      value: `${c.vocabSize}`,
      tensor: 'model.embed_tokens.weight',
      axis: 0,
      expected: c.vocabSize,
    },
    {
      field: 'hidden_size',
      value: `${c.hiddenSize}`,
      tensor: 'model.embed_tokens.weight',
      axis: 1,
      expected: c.hiddenSize,
    },
    {
      field: 'hidden_size',
      value: `${c.hiddenSize}`,
      tensor: 'model.norm.weight',
      axis: 0,
      expected: c.hiddenSize,
    },
    {
      field: 'num_attention_heads',
      value: heads,
      tensor: `${attn}.q_proj.weight`,
      axis: 0,
      expected: c.numHeads * c.headDim,
    },
    {
      field: 'num_key_value_heads',
      value: kv,
      tensor: `${attn}.k_proj.weight`,
      axis: 0,
      expected: c.numKvHeads * c.headDim,
    },
    {
      field: 'intermediate_size',
      value: `${c.intermediateSize}`,
      tensor: 'model.layers.0.mlp.gate_proj.weight',
      axis: 0,
      expected: c.intermediateSize,
    },
  ];
  if (!c.tieWordEmbeddings)
    checks.push({
      field: 'vocab_size',
      value: `${c.vocabSize}`,
      tensor: 'lm_head.weight',
      axis: 0,
      expected: c.vocabSize,
    });
  return checks;
}

/** llama, mistral and qwen2: `model.` prefix, RMSNorm, RoPE, SwiGLU, grouped-query attention. */
export const llamaArchitecture: Architecture<LlamaConfig> = {
  modelTypes: LLAMA_MODEL_TYPES,
  parseConfig: parseLlamaConfig,
  build: (config, options) => new LlamaForCausalLM(config, options),
  architectureFields: [
    'hiddenSize',
    'intermediateSize',
    'numLayers',
    'numHeads',
    'numKvHeads',
    'headDim',
    'vocabSize',
  ],
  tiedNames: ['model.embed_tokens.weight', 'lm_head.weight'],
  // rotary inv_freq buffers written by old transformers versions are harmless
  ignoredTensors: /(^|\.)rotary_emb\.inv_freq$/,
  basePrefix: null,
  layerPrefix: (i) => `model.layers.${i}.`,
  layerCountField: 'num_hidden_layers',
  shapeChecks: llamaShapeChecks,
  defaultLoraTargets: ['q_proj', 'v_proj'],
};
