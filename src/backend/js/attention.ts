/**
 * Scaled dot-product attention with grouped KV heads, causal masking and philox dropout on the
 * probabilities. One row of scores is materialised at a time; the backward recomputes the
 * probabilities from q, k and the saved log-sum-exp.
 */

import type { FloatArray, Kernels } from '../kernels.ts';
import { philoxUniform } from '../philox.ts';
import { roundedCopy, roundToBf16 } from './gemm-bf16.ts';

const same = (x: number) => x;

/** Number of keys query t may attend to (keys j < limit). */
function keyLimit(t: number, Tq: number, Tk: number, causal: boolean): number {
  if (!causal) return Tk;
  return Math.max(0, Math.min(Tk, t + (Tk - Tq) + 1));
}

function checkHeads(Hq: number, Hkv: number): number {
  if (Hkv <= 0 || Hq % Hkv !== 0) {
    throw new RangeError(`attention: ${Hq} query heads are not a multiple of ${Hkv} KV heads`);
  }
  return Hq / Hkv;
}

/**
 * q [B, Tq, Hq, D], k and v [B, Tk, Hkv, D] -> out [B, Tq, Hq, D], lse [B, Hq, Tq]. Query head h
 * reads KV head floor(h / (Hq / Hkv)). Causal: query t attends keys j <= t + (Tk - Tq); a row with
 * no key gets out 0 and lse -Infinity. Dropout keeps (b, h, t, j) iff
 * philoxUniform(seed, ((b*Hq + h)*Tq + t)*Tk + j) >= dropP, survivors scaled by 1/(1 - dropP).
 */
export function attention(...args: AttnArgs): void {
  forward(args, false);
}

/**
 * `attention` in bf16 compute, the reference of the native kernel's: q, k, v rounded to bf16, and
 * the probabilities rounded on their way into the product with v as the native kernel has them:
 * unnormalised, exp(s - row max) (times the dropout factor), the row then divided by their
 * unrounded sum. Everything else (scores, sums, lse) as `attention`, accumulated in f64.
 */
export function attentionBf16(...args: AttnArgs): void {
  const [q, k, v, ...rest] = args;
  forward([roundedCopy(q), roundedCopy(k), roundedCopy(v), ...rest], true);
}

type AttnArgs = Parameters<Kernels['attention']>;
type AttnBackwardArgs = Parameters<Kernels['attentionBackward']>;

function forward(
  [q, k, v, out, lse, B, Tq, Tk, Hq, Hkv, D, scale, causal, dropP, seed]: AttnArgs,
  bf16: boolean,
): void {
  const group = checkHeads(Hq, Hkv);
  const keep = 1 / (1 - dropP);
  const scores = new Float64Array(Tk);
  const acc = new Float64Array(D);
  for (let b = 0; b < B; b++) {
    for (let h = 0; h < Hq; h++) {
      const kvh = Math.floor(h / group);
      for (let t = 0; t < Tq; t++) {
        const qBase = ((b * Tq + t) * Hq + h) * D;
        const limit = keyLimit(t, Tq, Tk, causal);
        let m = -Infinity;
        for (let j = 0; j < limit; j++) {
          const kBase = ((b * Tk + j) * Hkv + kvh) * D;
          let s = 0;
          for (let d = 0; d < D; d++) s += q[qBase + d]! * k[kBase + d]!;
          s *= scale;
          scores[j] = s;
          if (s > m) m = s;
        }
        let sum = 0;
        for (let j = 0; j < limit; j++) sum += Math.exp(scores[j]! - m);
        const rowLse = limit === 0 ? -Infinity : m + Math.log(sum);
        lse[(b * Hq + h) * Tq + t] = rowLse;
        acc.fill(0);
        const counter = ((b * Hq + h) * Tq + t) * Tk;
        // bf16: unnormalised probabilities, rounded, then the row divided by their sum
        const shift = bf16 ? m : rowLse;
        for (let j = 0; j < limit; j++) {
          let p = Math.exp(scores[j]! - shift);
          if (dropP > 0) p = philoxUniform(seed, counter + j) >= dropP ? p * keep : 0;
          if (bf16) p = roundToBf16(p);
          if (p === 0) continue;
          const vBase = ((b * Tk + j) * Hkv + kvh) * D;
          for (let d = 0; d < D; d++) acc[d]! += p * v[vBase + d]!;
        }
        const norm = bf16 && limit > 0 ? 1 / sum : 1;
        for (let d = 0; d < D; d++) out[qBase + d] = acc[d]! * norm;
      }
    }
  }
}

/**
 * Gradients of `attention` (same arguments, plus its out and lse and the output gradient gOut).
 * With P the probabilities, P' = dropout(P), dP' = gOut . v_j, dP = dropout mask of dP' and
 * delta = gOut . out:  gv_j += P'_j gOut,  dS_j = P_j (dP_j - delta),  gq += scale dS_j k_j,
 * gk_j += scale dS_j q. gq, gk, gv are written (not accumulated).
 */
export function attentionBackward(...args: AttnBackwardArgs): void {
  backwardImpl(args, args[5], same);
}

/**
 * `attentionBackward` in bf16 compute, the reference of the native kernel's: q, k, v and gOut
 * rounded to bf16 for every product, and the two per-element factors rounded on their way into
 * theirs: the dropped-out probability (for gv) and dS = P (dP - delta) before its scale (for gq,
 * gk). delta = gOut . out uses the unrounded gOut, as native does.
 */
export function attentionBf16Backward(...args: AttnBackwardArgs): void {
  const [q, k, v, out, lse, gOut, ...rest] = args;
  const rounded: AttnBackwardArgs = [
    roundedCopy(q),
    roundedCopy(k),
    roundedCopy(v),
    out,
    lse,
    roundedCopy(gOut),
    ...rest,
  ];
  backwardImpl(rounded, gOut, roundToBf16);
}

/** The backward with args' gOut for the products and gOutDelta for delta; `round` rounds the factors. */
function backwardImpl(
  [q, k, v, out, lse, gOut, gq, gk, gv, B, Tq, Tk, Hq, Hkv, D, scale, causal, dropP, seed]: AttnBackwardArgs,
  gOutDelta: FloatArray,
  round: (x: number) => number,
): void {
  const group = checkHeads(Hq, Hkv);
  const keep = 1 / (1 - dropP);
  const kvSize = B * Tk * Hkv * D;
  // accumulate gk, gv in doubles (several query rows and heads add into each)
  const gkAcc = new Float64Array(kvSize);
  const gvAcc = new Float64Array(kvSize);
  const gqRow = new Float64Array(D);
  for (let b = 0; b < B; b++) {
    for (let h = 0; h < Hq; h++) {
      const kvh = Math.floor(h / group);
      for (let t = 0; t < Tq; t++) {
        const qBase = ((b * Tq + t) * Hq + h) * D;
        const limit = keyLimit(t, Tq, Tk, causal);
        const rowLse = lse[(b * Hq + h) * Tq + t]!;
        gqRow.fill(0);
        let delta = 0;
        for (let d = 0; d < D; d++) delta += gOutDelta[qBase + d]! * out[qBase + d]!;
        const counter = ((b * Hq + h) * Tq + t) * Tk;
        for (let j = 0; j < limit; j++) {
          const kvBase = ((b * Tk + j) * Hkv + kvh) * D;
          let s = 0;
          for (let d = 0; d < D; d++) s += q[qBase + d]! * k[kvBase + d]!;
          const p = Math.exp(s * scale - rowLse);
          // dropout mask factor of this element (1 without dropout)
          const mask = dropP > 0 ? (philoxUniform(seed, counter + j) >= dropP ? keep : 0) : 1;
          let dp = 0;
          for (let d = 0; d < D; d++) dp += gOut[qBase + d]! * v[kvBase + d]!;
          const pDropped = round(p * mask);
          if (pDropped !== 0) for (let d = 0; d < D; d++) gvAcc[kvBase + d]! += pDropped * gOut[qBase + d]!;
          const ds = round(p * (dp * mask - delta)) * scale;
          if (ds === 0) continue;
          for (let d = 0; d < D; d++) {
            gqRow[d]! += ds * k[kvBase + d]!;
            gkAcc[kvBase + d]! += ds * q[qBase + d]!;
          }
        }
        for (let d = 0; d < D; d++) gq[qBase + d] = gqRow[d]!;
      }
    }
  }
  for (let i = 0; i < kvSize; i++) {
    gk[i] = gkAcc[i]!;
    gv[i] = gvAcc[i]!;
  }
}
