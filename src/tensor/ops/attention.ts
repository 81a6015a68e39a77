/** Scaled dot-product attention with grouped KV heads, causal masking and attention dropout. */
import type { FloatArray } from '../../backend/kernels.ts';
import { needsGrad, record } from '../autograd.ts';
import { formatShape, Tensor } from '../tensor.ts';
import type { ComputePrecision } from './matmul.ts';
import { emptyLike, floatOf, kernelsOf } from './util.ts';

export interface AttentionOptions {
  /** Query t attends keys j <= t + (Tk - Tq) (default true). */
  causal?: boolean;
  /** Multiplier of q.k (default 1/sqrt(D)). */
  scale?: number;
  /** Dropout rate on the probabilities, in [0, 1) (default 0). */
  dropout?: number;
  /** Seed of the dropout mask (philox counter ((b*Hq + h)*Tq + t)*Tk + j). */
  seed?: number;
  /**
   * Compute precision of the products (default 'f32'). 'bf16': q k^T and P v (and the backward's
   * products) take bf16-rounded inputs with f32 accumulation; softmax statistics stay f32.
   */
  precision?: ComputePrecision;
}

/**
 * softmax(scale * q k^T [+ causal mask]) v per head: q [B, Tq, Hq, D], k and v [B, Tk, Hkv, D]
 * (Hq a multiple of Hkv; query head h reads KV head floor(h / (Hq / Hkv))) -> [B, Tq, Hq, D].
 * With Tq < Tk (a KV cache) the queries are the last Tq positions. The log-sum-exp of each row
 * is kept for the backward pass, which recomputes the probabilities; gradients flow to q, k, v.
 */
export function attention(q: Tensor, k: Tensor, v: Tensor, options: AttentionOptions = {}): Tensor {
  const qd = floatOf(q, 'attention', 'q');
  const kd = floatOf(k, 'attention', 'k');
  const vd = floatOf(v, 'attention', 'v');
  const describe = `q ${formatShape(q.shape)}, k ${formatShape(k.shape)}, v ${formatShape(v.shape)}`;
  if (q.rank !== 4 || k.rank !== 4 || v.rank !== 4) {
    throw new RangeError(`attention: ${describe}: expected q [B, Tq, Hq, D] and k, v [B, Tk, Hkv, D]`);
  }
  if (k.dtype !== q.dtype || v.dtype !== q.dtype) {
    throw new TypeError(`attention: q ${q.dtype}, k ${k.dtype}, v ${v.dtype}: dtypes differ`);
  }
  const [B, Tq, Hq, D] = q.shape as [number, number, number, number];
  const [Bk, Tk, Hkv, Dk] = k.shape as [number, number, number, number];
  if (Bk !== B || Dk !== D || !v.shape.every((d, i) => d === k.shape[i])) {
    throw new RangeError(`attention: ${describe}: batch and head dims must agree and v must match k`);
  }
  if (Hkv === 0 || Hq % Hkv !== 0) {
    throw new RangeError(`attention: ${describe}: ${Hq} query heads are not a multiple of ${Hkv} KV heads`);
  }
  const causal = options.causal ?? true;
  const scale = options.scale ?? 1 / Math.sqrt(D);
  const dropP = options.dropout ?? 0;
  const seed = (options.seed ?? 0) >>> 0;
  if (!(dropP >= 0 && dropP < 1))
    throw new RangeError(`attention: dropout must be in [0, 1), found ${dropP}`);
  const precision = options.precision ?? 'f32';
  if (precision !== 'f32' && precision !== 'bf16')
    throw new TypeError(`attention: precision must be 'f32' or 'bf16', found '${String(precision)}'`);
  const bf16 = precision === 'bf16';
  const kern = kernelsOf(q);
  const forward = bf16 ? kern.attentionBf16.bind(kern) : kern.attention.bind(kern);
  const backward = bf16 ? kern.attentionBf16Backward.bind(kern) : kern.attentionBackward.bind(kern);
  const out = emptyLike(q);
  const lse = Tensor.alloc([B, Hq, Tq], q.dtype, false, { track: false });
  forward(
    qd,
    kd,
    vd,
    out.data as FloatArray,
    lse.data as FloatArray,
    B,
    Tq,
    Tk,
    Hq,
    Hkv,
    D,
    scale,
    causal,
    dropP,
    seed,
  );
  if (needsGrad(q, k, v)) {
    record('attention', [q, k, v], [out], [q, k, v, out, lse], ([g]) => {
      const gq = emptyLike(q);
      const gk = emptyLike(k);
      const gv = emptyLike(v);
      backward(
        qd,
        kd,
        vd,
        out.data as FloatArray,
        lse.data as FloatArray,
        g!.data as FloatArray,
        gq.data as FloatArray,
        gk.data as FloatArray,
        gv.data as FloatArray,
        B,
        Tq,
        Tk,
        Hq,
        Hkv,
        D,
        scale,
        causal,
        dropP,
        seed,
      );
      return [gq, gk, gv];
    });
  }
  lse.release(); // the tape holds its own reference when recorded
  return out;
}
