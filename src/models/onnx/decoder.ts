/**
 * What every exported decoder shares: the inputs and outputs transformers.js and Optimum's
 * text-generation exports have (see llama.ts), the additive causal + padding attention mask, the
 * attention itself (grouped-query when kv heads < heads), and the LM head.
 */
import { ConfigError } from '../../errors.ts';
import { OnnxDataType, OnnxGraph } from '../../io/onnx/index.ts';
import type { Tensor } from '../../tensor/index.ts';

/** The symbolic dimension names of the decoder's inputs and outputs (Optimum's). */
export const DIMS = {
  batch: 'batch_size',
  seq: 'sequence_length',
  past: 'past_sequence_length',
  total: 'past_sequence_length + sequence_length',
} as const;

/** A tensor's values as f32. */
export function f32Of(t: Tensor): Float32Array {
  const d = t.data;
  return d instanceof Float32Array ? d : Float32Array.from(d as ArrayLike<number>);
}

/** W [out, in] as [in, out] (row-major), for MatMul(x, W^T). */
export function transposed(t: Tensor): { data: Float32Array; dims: [number, number] } {
  const [out, inp] = t.shape as [number, number];
  const src = f32Of(t);
  const dst = new Float32Array(out * inp);
  for (let o = 0; o < out; o++) for (let i = 0; i < inp; i++) dst[i * out + o] = src[o * inp + i]!;
  return { data: dst, dims: [inp, out] };
}

/** The graph with the decoder's inputs declared, plus the helpers every architecture uses. */
export class DecoderGraph {
  readonly g = new OnnxGraph();
  readonly ids: string;
  readonly mask: string;
  readonly positions: string;
  readonly past: { key: string; value: string }[];
  /** Additive attention bias [B, 1, 1, T, S]: 0 where visible, the f32 minimum elsewhere. */
  readonly bias: string;

  constructor(
    private readonly tensors: ReadonlyMap<string, Tensor>,
    readonly shape: { layers: number; heads: number; kvHeads: number; headDim: number; hidden: number },
  ) {
    const { batch: B, seq: T, past: P, total: S } = DIMS;
    const g = this.g;
    this.ids = g.input('input_ids', OnnxDataType.INT64, [B, T]);
    this.mask = g.input('attention_mask', OnnxDataType.INT64, [B, S]);
    this.positions = g.input('position_ids', OnnxDataType.INT64, [B, T]);
    const { kvHeads, headDim } = shape;
    this.past = Array.from({ length: shape.layers }, (_, i) => ({
      key: g.input(`past_key_values.${i}.key`, OnnxDataType.FLOAT, [B, kvHeads, P, headDim]),
      value: g.input(`past_key_values.${i}.value`, OnnxDataType.FLOAT, [B, kvHeads, P, headDim]),
    }));
    this.bias = this.attentionBias();
  }

  /** The model tensor `name`, or a clear error. */
  weight(name: string): Tensor {
    const t = this.tensors.get(name);
    if (!t) throw new ConfigError(`export --format onnx: tensor '${name}' is missing from the model`);
    return t;
  }

  /** An initializer holding the tensor `name` as it is. */
  constant(name: string): string {
    const t = this.weight(name);
    return this.g.initializer(name, f32Of(t), t.shape);
  }

  // key s is visible to query t when s <= past_length + t and attention_mask[b, s] is 1
  private attentionBias(): string {
    const g = this.g;
    const pastLen = g.op('Gather', [g.op('Shape', [this.past[0]!.key]), g.int64s([2])]);
    const seqLen = g.op('Gather', [g.op('Shape', [this.ids]), g.int64s([1])]);
    const totalLen = g.op('Add', [pastLen, seqLen]);
    const scalar = (v: string) => g.op('Squeeze', [v, g.int64s([0])]);
    const zero = g.initializer('const_zero_i64', BigInt64Array.of(0n), []);
    const one = g.initializer('const_one_i64', BigInt64Array.of(1n), []);
    const queryPos = g.op('Add', [g.op('Range', [zero, scalar(seqLen), one]), scalar(pastLen)]);
    const keyPos = g.op('Range', [zero, scalar(totalLen), one]);
    const causal = g.op('LessOrEqual', [
      g.op('Unsqueeze', [keyPos, g.int64s([0])]),
      g.op('Unsqueeze', [queryPos, g.int64s([1])]),
    ]);
    const notPadding = g.op('Cast', [g.op('Unsqueeze', [this.mask, g.int64s([1, 2, 3])])], {
      to: { int: OnnxDataType.BOOL },
    });
    const visible = g.op('And', [causal, notPadding]);
    return g.op('Where', [visible, g.float(0, 'mask_zero'), g.float(-3.4028234663852886e38, 'mask_min')]);
  }

  /** [B, T, n * D] -> [B, n, T, D]. */
  heads(y: string, n: number): string {
    const g = this.g;
    return g.op('Transpose', [g.op('Reshape', [y, g.int64s([0, 0, n, this.shape.headDim])])], {
      perm: { ints: [0, 2, 1, 3] },
    });
  }

  /**
   * Attention of layer `i` for q [B, heads, T, D], k and v [B, kvHeads, T, D] (new tokens): the
   * presents (outputs `present.i.*`) are the past with k, v appended; returns [B, T, hidden].
   */
  attention(i: number, q: string, k: string, v: string, scale: number): string {
    const g = this.g;
    const { heads, kvHeads, headDim: D, hidden } = this.shape;
    const { batch: B, total: S } = DIMS;
    const presentK = g.node('Concat', [this.past[i]!.key, k], { axis: { int: 2 } }, [`present.${i}.key`])[0]!;
    const presentV = g.node('Concat', [this.past[i]!.value, v], { axis: { int: 2 } }, [
      `present.${i}.value`,
    ])[0]!;
    g.output(presentK, OnnxDataType.FLOAT, [B, kvHeads, S, D]);
    g.output(presentV, OnnxDataType.FLOAT, [B, kvHeads, S, D]);
    // q [B, kv, groups, T, D] against k, v [B, kv, 1, S, D] (groups = 1 without GQA)
    const qg = g.op('Reshape', [q, g.int64s([0, kvHeads, heads / kvHeads, -1, D])]);
    const kg = g.op('Unsqueeze', [presentK, g.int64s([2])]);
    const vg = g.op('Unsqueeze', [presentV, g.int64s([2])]);
    const scores = g.op('Add', [
      g.op('Mul', [
        g.op('MatMul', [qg, g.op('Transpose', [kg], { perm: { ints: [0, 1, 2, 4, 3] } })]),
        g.float(scale, 'attn_scale'),
      ]),
      this.bias,
    ]);
    const probs = g.op('Softmax', [scores], { axis: { int: -1 } });
    const ctx = g.op('Reshape', [g.op('MatMul', [probs, vg]), g.int64s([0, heads, -1, D])]);
    return g.op('Reshape', [
      g.op('Transpose', [ctx], { perm: { ints: [0, 2, 1, 3] } }),
      g.int64s([0, 0, hidden]),
    ]);
  }

  /**
   * The `logits` output [B, T, vocab] of the final hidden states `x`: through Gemm(transB) with
   * the embedding initializer `tiedEmbedding` when the head is tied, else MatMul with `headT`.
   */
  logits(x: string, vocab: number, head: { tiedEmbedding: string } | { weight: Tensor }): void {
    const g = this.g;
    let logits: string;
    if ('tiedEmbedding' in head) {
      const flat = g.op('Reshape', [x, g.int64s([-1, this.shape.hidden])]);
      const gemm = g.op('Gemm', [flat, head.tiedEmbedding], { transB: { int: 1 } });
      const shape = g.op(
        'Concat',
        [g.op('Gather', [g.op('Shape', [this.ids]), g.int64s([0, 1])]), g.int64s([vocab])],
        {
          axis: { int: 0 },
        },
      );
      logits = g.node('Reshape', [gemm, shape], {}, ['logits'])[0]!;
    } else {
      const w = transposed(head.weight);
      logits = g.node('MatMul', [x, g.initializer('lm_head.weight_t', w.data, w.dims)], {}, ['logits'])[0]!;
    }
    g.output(logits, OnnxDataType.FLOAT, [DIMS.batch, DIMS.seq, vocab]);
  }
}
