/** GPT-2 in the model_type registry. */
import type { Architecture, ShapeCheck } from '../registry.ts';
import { type Gpt2Config, parseGpt2Config } from './config.ts';
import { Gpt2LMHeadModel } from './model.ts';

/** Config fields against the tensor sizes they fix (Conv1D weights are [in, out]). */
function gpt2ShapeChecks(c: Gpt2Config): ShapeCheck[] {
  const d = `${c.hiddenSize}`;
  const h0 = 'transformer.h.0';
  const checks: ShapeCheck[] = [
    {
      field: 'vocab_size',
      value: `${c.vocabSize}`,
      tensor: 'transformer.wte.weight',
      axis: 0,
      expected: c.vocabSize,
    },
    { field: 'n_embd', value: d, tensor: 'transformer.wte.weight', axis: 1, expected: c.hiddenSize },
    {
      field: 'n_positions',
      value: `${c.maxPositionEmbeddings}`,
      tensor: 'transformer.wpe.weight',
      axis: 0,
      expected: c.maxPositionEmbeddings,
    },
    { field: 'n_embd', value: d, tensor: 'transformer.wpe.weight', axis: 1, expected: c.hiddenSize },
    { field: 'n_embd', value: d, tensor: 'transformer.ln_f.weight', axis: 0, expected: c.hiddenSize },
    {
      field: 'n_embd',
      value: `${d} (c_attn has 3 x n_embd = ${3 * c.hiddenSize} outputs)`,
      tensor: `${h0}.attn.c_attn.weight`,
      axis: 1,
      expected: 3 * c.hiddenSize,
    },
    {
      field: 'n_inner',
      value:
        c.raw.n_inner === undefined || c.raw.n_inner === null
          ? `null (4 x n_embd = ${c.intermediateSize})`
          : `${c.intermediateSize}`,
      tensor: `${h0}.mlp.c_fc.weight`,
      axis: 1,
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

/** GPT-2: `transformer.` prefix, learned positions, LayerNorm, Conv1D [in, out] weights, fused c_attn. */
export const gpt2Architecture: Architecture<Gpt2Config> = {
  modelTypes: ['gpt2'],
  parseConfig: parseGpt2Config,
  build: (config, options) => new Gpt2LMHeadModel(config, options),
  architectureFields: [
    'hiddenSize',
    'intermediateSize',
    'numLayers',
    'numHeads',
    'vocabSize',
    'maxPositionEmbeddings',
    'activation',
  ],
  tiedNames: ['transformer.wte.weight', 'lm_head.weight'],
  // the causal-mask buffers older transformers versions saved
  ignoredTensors: /(^|\.)attn\.(bias|masked_bias)$/,
  basePrefix: 'transformer.',
  layerPrefix: (i) => `transformer.h.${i}.`,
  layerCountField: 'n_layer',
  shapeChecks: gpt2ShapeChecks,
  // PEFT's TRANSFORMERS_MODELS_TO_LORA_TARGET_MODULES_MAPPING
  defaultLoraTargets: ['c_attn'],
};
