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
import { OnnxDataType, OnnxGraph } from '../../io/onnx/index.ts';
import { ropeTables, type Tensor } from '../../tensor/index.ts';
import type { LlamaConfig } from '../llama/config.ts';

/** Opset the graph is written for (ReduceMean takes `axes` as an attribute up to 17). */
export const ONNX_OPSET = 17;

/** The symbolic dimension names of the decoder's inputs and outputs (Optimum's). */
const B = 'batch_size';
const T = 'sequence_length';
const P = 'past_sequence_length';
const S = 'past_sequence_length + sequence_length';

function f32Of(t: Tensor): Float32Array {
  const d = t.data;
  return d instanceof Float32Array ? d : Float32Array.from(d as ArrayLike<number>);
}

/** W [out, in] as [in, out] (row-major), for MatMul(x, W^T). */
function transposed(t: Tensor): { data: Float32Array; dims: [number, number] } {
  const [out, inp] = t.shape as [number, number];
  const src = f32Of(t);
  const dst = new Float32Array(out * inp);
  for (let o = 0; o < out; o++) for (let i = 0; i < inp; i++) dst[i * out + o] = src[o * inp + i]!;
  return { data: dst, dims: [inp, out] };
}

/** Build the decoder graph of `config` from its Hub-named tensors. */
export function llamaOnnxGraph(config: LlamaConfig, tensors: ReadonlyMap<string, Tensor>): OnnxGraph {
  if (config.slidingWindow !== null)
    throw new ConfigError(
      `export --format onnx: sliding-window attention (config.json 'sliding_window' ${config.slidingWindow} with use_sliding_window) is not supported`,
    );
  const weight = (name: string): Tensor => {
    const t = tensors.get(name);
    if (!t) throw new ConfigError(`export --format onnx: tensor '${name}' is missing from the model`);
    return t;
  };
  const g = new OnnxGraph();
  const { hiddenSize: H, numHeads: nH, numKvHeads: nKV, headDim: D, numLayers: L, vocabSize: V } = config;
  const groups = nH / nKV;
  const ids = g.input('input_ids', OnnxDataType.INT64, [B, T]);
  const mask = g.input('attention_mask', OnnxDataType.INT64, [B, S]);
  const positions = g.input('position_ids', OnnxDataType.INT64, [B, T]);
  const past = Array.from({ length: L }, (_, i) => ({
    key: g.input(`past_key_values.${i}.key`, OnnxDataType.FLOAT, [B, nKV, P, D]),
    value: g.input(`past_key_values.${i}.value`, OnnxDataType.FLOAT, [B, nKV, P, D]),
  }));

  const linear = (x: string, name: string, bias: boolean): string => {
    const w = transposed(weight(`${name}.weight`));
    let y = g.op('MatMul', [x, g.initializer(`${name}.weight_t`, w.data, w.dims)]);
    if (bias) {
      const b = weight(`${name}.bias`);
      y = g.op('Add', [y, g.initializer(`${name}.bias`, f32Of(b), b.shape)]);
    }
    return y;
  };
  const eps = g.float(config.rmsNormEps, 'rms_eps');
  const rmsNorm = (x: string, name: string): string => {
    const w = weight(`${name}.weight`);
    const ms = g.op('ReduceMean', [g.op('Mul', [x, x])], { axes: { ints: [-1] }, keepdims: { int: 1 } });
    const inv = g.op('Reciprocal', [g.op('Sqrt', [g.op('Add', [ms, eps])])]);
    return g.op('Mul', [g.op('Mul', [x, inv]), g.initializer(`${name}.weight`, f32Of(w), w.shape)]);
  };

  // rotary tables gathered by position: cos/sin [B, 1, T, D] (halves repeated as HF's rotate_half needs)
  const tables = ropeTables(
    config.maxPositionEmbeddings,
    D,
    config.ropeTheta,
    config.ropeScaling ?? undefined,
  );
  const half = D / 2;
  const rot = (table: Tensor, hint: string) => {
    const gathered = g.op('Gather', [
      g.initializer(hint, f32Of(table), [config.maxPositionEmbeddings, half]),
      positions,
    ]);
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

  // additive mask [B, 1, 1, T, S]: 0 where key s is visible to query t (s <= past + t and not padding)
  const pastLen = g.op('Gather', [g.op('Shape', [past[0]!.key]), g.int64s([2])]); // [1]
  const seqLen = g.op('Gather', [g.op('Shape', [ids]), g.int64s([1])]); // [1]
  const totalLen = g.op('Add', [pastLen, seqLen]);
  const scalar = (v: string) => g.op('Squeeze', [v, g.int64s([0])]);
  const zero = g.initializer('const_zero_i64', BigInt64Array.of(0n), []);
  const one = g.initializer('const_one_i64', BigInt64Array.of(1n), []);
  const queryPos = g.op('Add', [g.op('Range', [zero, scalar(seqLen), one]), scalar(pastLen)]); // [T]
  const keyPos = g.op('Range', [zero, scalar(totalLen), one]); // [S]
  const causal = g.op('LessOrEqual', [
    g.op('Unsqueeze', [keyPos, g.int64s([0])]),
    g.op('Unsqueeze', [queryPos, g.int64s([1])]),
  ]); // [T, S]
  const notPadding = g.op('Cast', [g.op('Unsqueeze', [mask, g.int64s([1, 2, 3])])], {
    to: { int: OnnxDataType.BOOL },
  }); // [B,1,1,1,S]
  const visible = g.op('And', [causal, notPadding]);
  const bias = g.op('Where', [visible, g.float(0, 'mask_zero'), g.float(-3.4028234663852886e38, 'mask_min')]);

  const scale = g.float(1 / Math.sqrt(D), 'attn_scale');
  const embedName = g.initializer('model.embed_tokens.weight', f32Of(weight('model.embed_tokens.weight')), [
    V,
    H,
  ]);
  let x = g.op('Gather', [embedName, ids]);
  for (let i = 0; i < L; i++) {
    const p = `model.layers.${i}`;
    const h = rmsNorm(x, `${p}.input_layernorm`);
    const heads = (y: string, n: number) =>
      g.op('Transpose', [g.op('Reshape', [y, g.int64s([0, 0, n, D])])], { perm: { ints: [0, 2, 1, 3] } });
    const q = applyRope(heads(linear(h, `${p}.self_attn.q_proj`, config.qkvBias), nH));
    const k = applyRope(heads(linear(h, `${p}.self_attn.k_proj`, config.qkvBias), nKV));
    const v = heads(linear(h, `${p}.self_attn.v_proj`, config.qkvBias), nKV);
    const presentK = g.node('Concat', [past[i]!.key, k], { axis: { int: 2 } }, [`present.${i}.key`])[0]!;
    const presentV = g.node('Concat', [past[i]!.value, v], { axis: { int: 2 } }, [`present.${i}.value`])[0]!;
    g.output(presentK, OnnxDataType.FLOAT, [B, nKV, S, D]);
    g.output(presentV, OnnxDataType.FLOAT, [B, nKV, S, D]);
    // grouped-query attention: q [B, kv, groups, T, D] against k, v [B, kv, 1, S, D]
    const qg = g.op('Reshape', [q, g.int64s([0, nKV, groups, -1, D])]);
    const kg = g.op('Unsqueeze', [presentK, g.int64s([2])]);
    const vg = g.op('Unsqueeze', [presentV, g.int64s([2])]);
    const scores = g.op('Add', [
      g.op('Mul', [
        g.op('MatMul', [qg, g.op('Transpose', [kg], { perm: { ints: [0, 1, 2, 4, 3] } })]),
        scale,
      ]),
      bias,
    ]);
    const probs = g.op('Softmax', [scores], { axis: { int: -1 } });
    const ctx = g.op('Reshape', [g.op('MatMul', [probs, vg]), g.int64s([0, nH, -1, D])]);
    const merged = g.op('Reshape', [
      g.op('Transpose', [ctx], { perm: { ints: [0, 2, 1, 3] } }),
      g.int64s([0, 0, H]),
    ]);
    x = g.op('Add', [x, linear(merged, `${p}.self_attn.o_proj`, config.oBias)]);
    const h2 = rmsNorm(x, `${p}.post_attention_layernorm`);
    const gate = linear(h2, `${p}.mlp.gate_proj`, config.mlpBias);
    const up = linear(h2, `${p}.mlp.up_proj`, config.mlpBias);
    const act = g.op('Mul', [g.op('Mul', [gate, g.op('Sigmoid', [gate])]), up]);
    x = g.op('Add', [x, linear(act, `${p}.mlp.down_proj`, config.mlpBias)]);
  }
  const normed = rmsNorm(x, 'model.norm');
  let logits: string;
  if (config.tieWordEmbeddings) {
    // [B, T, H] x E^T through Gemm on [B*T, H], reusing the embedding initializer
    const flat = g.op('Reshape', [normed, g.int64s([-1, H])]);
    const gemm = g.op('Gemm', [flat, embedName], { transB: { int: 1 } });
    const shape = g.op('Concat', [g.op('Gather', [g.op('Shape', [ids]), g.int64s([0, 1])]), g.int64s([V])], {
      axis: { int: 0 },
    });
    logits = g.node('Reshape', [gemm, shape], {}, ['logits'])[0]!;
  } else {
    const w = transposed(weight('lm_head.weight'));
    logits = g.node('MatMul', [normed, g.initializer('lm_head.weight_t', w.data, w.dims)], {}, [
      'logits',
    ])[0]!;
  }
  g.output(logits, OnnxDataType.FLOAT, [B, T, V]);
  return g;
}
