/**
 * GPT-2 as an ONNX decoder with the same interface as llama.ts (GPT-2 has no grouped-query
 * attention, so kv heads = heads): learned position embeddings gathered by position_ids, pre-norm
 * blocks with LayerNormalization, q/k/v split from c_attn, the config's activation (gelu_new and
 * gelu_pytorch_tanh as the tanh approximation, gelu as erf, relu, silu), tied or untied LM head.
 * Conv1D weights are already [in, out] on the Hub, so each projection is a MatMul as stored.
 */
import type { OnnxGraph } from '../../io/onnx/index.ts';
import type { Tensor } from '../../tensor/index.ts';
import { GPT2_ACTIVATIONS, type Gpt2Config } from '../gpt2/config.ts';
import { DecoderGraph } from './decoder.ts';

/** Build the decoder graph of a GPT-2 `config` from its Hub-named tensors. */
export function gpt2OnnxGraph(config: Gpt2Config, tensors: ReadonlyMap<string, Tensor>): OnnxGraph {
  const { hiddenSize: H, numHeads: nH, headDim: D, numLayers: L, vocabSize: V } = config;
  const dg = new DecoderGraph(tensors, { layers: L, heads: nH, kvHeads: nH, headDim: D, hidden: H });
  const g = dg.g;
  const conv1d = (x: string, name: string) =>
    g.op('Add', [g.op('MatMul', [x, dg.constant(`${name}.weight`)]), dg.constant(`${name}.bias`)]);
  const layerNorm = (x: string, name: string) =>
    g.op('LayerNormalization', [x, dg.constant(`${name}.weight`), dg.constant(`${name}.bias`)], {
      axis: { int: -1 },
      epsilon: { float: config.layerNormEps },
    });
  const activation = (x: string): string => {
    const kind = GPT2_ACTIVATIONS[config.activation];
    if (kind === 'relu') return g.op('Relu', [x]);
    if (kind === 'silu') return g.op('Mul', [x, g.op('Sigmoid', [x])]);
    const half = g.float(0.5, 'half');
    const onePlus = (y: string) => g.op('Add', [g.float(1, 'one'), y]);
    if (kind === 'gelu_erf')
      return g.op('Mul', [
        g.op('Mul', [half, x]),
        onePlus(g.op('Erf', [g.op('Mul', [x, g.float(Math.SQRT1_2, 'inv_sqrt2')])])),
      ]);
    // 0.5 x (1 + tanh(sqrt(2 / pi) (x + 0.044715 x^3)))
    const cube = g.op('Mul', [g.op('Mul', [x, x]), x]);
    const inner = g.op('Mul', [
      g.float(Math.sqrt(2 / Math.PI), 'sqrt_2_over_pi'),
      g.op('Add', [x, g.op('Mul', [g.float(0.044715, 'gelu_c'), cube])]),
    ]);
    return g.op('Mul', [g.op('Mul', [half, x]), onePlus(g.op('Tanh', [inner]))]);
  };

  const wte = dg.constant('transformer.wte.weight');
  const wpe = dg.constant('transformer.wpe.weight');
  let x = g.op('Add', [g.op('Gather', [wte, dg.ids]), g.op('Gather', [wpe, dg.positions])]);
  const scale = config.scaleAttnWeights ? 1 / Math.sqrt(D) : 1;
  for (let i = 0; i < L; i++) {
    const p = `transformer.h.${i}`;
    const qkv = conv1d(layerNorm(x, `${p}.ln_1`), `${p}.attn.c_attn`);
    const [q, k, v] = g.node('Split', [qkv, g.int64s([H, H, H])], { axis: { int: -1 } }, 3, 'qkv');
    const merged = dg.attention(i, dg.heads(q!, nH), dg.heads(k!, nH), dg.heads(v!, nH), scale);
    x = g.op('Add', [x, conv1d(merged, `${p}.attn.c_proj`)]);
    const h = activation(conv1d(layerNorm(x, `${p}.ln_2`), `${p}.mlp.c_fc`));
    x = g.op('Add', [x, conv1d(h, `${p}.mlp.c_proj`)]);
  }
  const normed = layerNorm(x, 'transformer.ln_f');
  dg.logits(
    normed,
    V,
    config.tieWordEmbeddings ? { tiedEmbedding: wte } : { weight: dg.weight('lm_head.weight') },
  );
  return g;
}
