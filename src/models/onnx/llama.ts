/**
 * A Llama-family decoder (llama, mistral, qwen2) as an ONNX graph with the interface
 * transformers.js and Optimum's exports give text-generation models:
 *   inputs  input_ids int64 [batch, sequence_length], attention_mask int64
 *           [batch, past_sequence_length + sequence_length], position_ids int64 [batch,
 *           sequence_length], past_key_values.N.key / .value f32 [batch, kv_heads,
 *           past_sequence_length, head_dim] (a past length of 0 is allowed);
 *   outputs logits f32 [batch, sequence_length, vocab] (every position), present.N.key / .value
 *           f32 [batch, kv_heads, past_sequence_length + sequence_length, head_dim].
 * The math is HF's LlamaForCausalLM: RMSNorm, rotary embeddings from the same f32 cos/sin tables
 * Attune's model uses (gathered by position_ids), grouped-query attention with a causal + padding
 * mask, SwiGLU MLP. Weights are stored transposed ([in, out]) so every projection is one MatMul;
 * a tied LM head reuses the embedding through Gemm(transB).
 */
import { ConfigError } from '../../errors.ts';
import type { OnnxGraph } from '../../io/onnx/index.ts';
import { ropeTables, type Tensor } from '../../tensor/index.ts';
import type { LlamaConfig } from '../llama/config.ts';
import { DecoderGraph, f32Of, transposed } from './decoder.ts';

/** Opset the graphs are written for (ReduceMean takes `axes` as an attribute up to 17). */
export const ONNX_OPSET = 17;

/** Build the decoder graph of `config` from its Hub-named tensors. */
export function llamaOnnxGraph(config: LlamaConfig, tensors: ReadonlyMap<string, Tensor>): OnnxGraph {
  if (config.slidingWindow !== null)
    throw new ConfigError(
      `export --format onnx: sliding-window attention (config.json 'sliding_window' ${config.slidingWindow} with use_sliding_window) is not supported`,
    );
  const { hiddenSize: H, numHeads: nH, numKvHeads: nKV, headDim: D, numLayers: L, vocabSize: V } = config;
  const dg = new DecoderGraph(tensors, { layers: L, heads: nH, kvHeads: nKV, headDim: D, hidden: H });
  const g = dg.g;
  const linear = (x: string, name: string, bias: boolean): string => {
    const w = transposed(dg.weight(`${name}.weight`));
    const y = g.op('MatMul', [x, g.initializer(`${name}.weight_t`, w.data, w.dims)]);
    return bias ? g.op('Add', [y, dg.constant(`${name}.bias`)]) : y;
  };
  const eps = g.float(config.rmsNormEps, 'rms_eps');
  const rmsNorm = (x: string, name: string): string => {
    const ms = g.op('ReduceMean', [g.op('Mul', [x, x])], { axes: { ints: [-1] }, keepdims: { int: 1 } });
    const inv = g.op('Reciprocal', [g.op('Sqrt', [g.op('Add', [ms, eps])])]);
    return g.op('Mul', [g.op('Mul', [x, inv]), dg.constant(`${name}.weight`)]);
  };

  // rotary tables gathered by position: cos/sin [B, 1, T, D] (halves repeated as HF's rotate_half needs)
  const maxPos = config.maxPositionEmbeddings;
  const tables = ropeTables(maxPos, D, config.ropeTheta, config.ropeScaling ?? undefined);
  const half = D / 2;
  const rot = (table: Tensor, hint: string) => {
    const gathered = g.op('Gather', [g.initializer(hint, f32Of(table), [maxPos, half]), dg.positions]);
    const full = g.op('Concat', [gathered, gathered], { axis: { int: -1 } });
    return g.op('Unsqueeze', [full, g.int64s([1])]);
  };
  const cos = rot(tables.cos, 'rope_cos');
  const sin = rot(tables.sin, 'rope_sin');
  tables.cos.release();
  tables.sin.release();
  const rotateHalf = (x: string) => {
    const first = g.op('Slice', [x, g.int64s([0]), g.int64s([half]), g.int64s([-1])]);
    const second = g.op('Slice', [x, g.int64s([half]), g.int64s([D]), g.int64s([-1])]);
    return g.op('Concat', [g.op('Neg', [second]), first], { axis: { int: -1 } });
  };
  const applyRope = (x: string) => g.op('Add', [g.op('Mul', [x, cos]), g.op('Mul', [rotateHalf(x), sin])]);

  const embedding = dg.constant('model.embed_tokens.weight');
  let x = g.op('Gather', [embedding, dg.ids]);
  for (let i = 0; i < L; i++) {
    const p = `model.layers.${i}`;
    const h = rmsNorm(x, `${p}.input_layernorm`);
    const q = applyRope(dg.heads(linear(h, `${p}.self_attn.q_proj`, config.qkvBias), nH));
    const k = applyRope(dg.heads(linear(h, `${p}.self_attn.k_proj`, config.qkvBias), nKV));
    const v = dg.heads(linear(h, `${p}.self_attn.v_proj`, config.qkvBias), nKV);
    const merged = dg.attention(i, q, k, v, 1 / Math.sqrt(D));
    x = g.op('Add', [x, linear(merged, `${p}.self_attn.o_proj`, config.oBias)]);
    const h2 = rmsNorm(x, `${p}.post_attention_layernorm`);
    const gate = linear(h2, `${p}.mlp.gate_proj`, config.mlpBias);
    const up = linear(h2, `${p}.mlp.up_proj`, config.mlpBias);
    const act = g.op('Mul', [g.op('Mul', [gate, g.op('Sigmoid', [gate])]), up]);
    x = g.op('Add', [x, linear(act, `${p}.mlp.down_proj`, config.mlpBias)]);
  }
  const normed = rmsNorm(x, 'model.norm');
  dg.logits(
    normed,
    V,
    config.tieWordEmbeddings ? { tiedEmbedding: embedding } : { weight: dg.weight('lm_head.weight') },
  );
  return g;
}
