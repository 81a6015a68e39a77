/**
 * An opt-in output of the attention layers for attention-based uncertainty (RAUQ): per layer and
 * query head, the attention weight a_{t,t-1} = softmax_j(scale q_t . k_j)[t-1] of each query
 * position t >= `from` on the token just before it. Pass one as `ForwardOptions.attentionProbe`;
 * without it the layers do nothing extra. The weights are recomputed from the layer's q and k (the
 * kernel keeps no probabilities): (T - from) x T dot products per head, a small fraction of the
 * layer's own cost for the few answer positions RAUQ reads. Attention dropout is not applied.
 */
import type { Tensor } from '../tensor/index.ts';

/** What an AttentionProbe collects; create one with `createAttentionProbe`. */
export interface AttentionProbe {
  /** First query position recorded (>= 1: position 0 has no previous token). */
  readonly from: number;
  /**
   * Per layer (index = layer), [Hq * (T - from)] row-major by head: entry h * (T - from) + i is
   * the attention of position from + i on position from + i - 1 in query head h.
   */
  readonly prevToken: Float64Array[];
}

/** An empty probe recording query positions >= `from`. */
export function createAttentionProbe(from: number): AttentionProbe {
  if (!Number.isInteger(from) || from < 1)
    throw new RangeError(`attention probe: 'from' must be an integer >= 1, found ${from}`);
  return { from, prevToken: [] };
}

/**
 * Record layer `layer`'s previous-token attention into `probe` from its causal q [1, T, Hq, D]
 * and k [1, T, Hkv, D] (after RoPE), scaled by `scale` (no KV cache: keys are positions 0..T-1).
 */
export function recordPrevTokenAttention(
  probe: AttentionProbe,
  layer: number,
  q: Tensor,
  k: Tensor,
  scale: number,
): void {
  const [B, T, Hq, D] = q.shape as [number, number, number, number];
  const Hkv = k.shape[2]!;
  if (B !== 1 || k.shape[1] !== T)
    throw new RangeError(
      `attention probe: expected one sequence without a KV cache, found q ${q.shape.join('x')}, k ${k.shape.join('x')}`,
    );
  const n = T - probe.from;
  const out = new Float64Array(Hq * Math.max(n, 0));
  const qd = q.data as Float32Array | Float64Array;
  const kd = k.data as Float32Array | Float64Array;
  const group = Hq / Hkv;
  const logits = new Float64Array(T);
  for (let h = 0; h < Hq; h++) {
    const kvHead = Math.floor(h / group);
    for (let i = 0; i < n; i++) {
      const t = probe.from + i;
      const qOff = (t * Hq + h) * D;
      let max = -Infinity;
      for (let j = 0; j <= t; j++) {
        const kOff = (j * Hkv + kvHead) * D;
        let dot = 0;
        for (let d = 0; d < D; d++) dot += qd[qOff + d]! * kd[kOff + d]!;
        logits[j] = dot * scale;
        if (logits[j]! > max) max = logits[j]!;
      }
      let sum = 0;
      for (let j = 0; j <= t; j++) sum += Math.exp(logits[j]! - max);
      out[h * n + i] = Math.exp(logits[t - 1]! - max) / sum;
    }
  }
  probe.prevToken[layer] = out;
}
