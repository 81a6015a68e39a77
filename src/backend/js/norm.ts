/**
 * RMSNorm and LayerNorm over the last axis of [rows, cols], forward and backward. Statistics are
 * accumulated in JS doubles; `out` may alias `x`. Weight and bias gradients are ACCUMULATED.
 */
import type { FloatArray } from '../kernels.ts';

/** out = x * rsqrt(mean(x^2) + eps) * weight (weight null = 1); rstd[row] saved. */
export function rmsNorm(
  x: FloatArray,
  weight: FloatArray | null,
  out: FloatArray,
  rstd: FloatArray,
  rows: number,
  cols: number,
  eps: number,
): void {
  for (let r = 0; r < rows; r++) {
    const base = r * cols;
    let ss = 0;
    for (let j = 0; j < cols; j++) ss += x[base + j]! * x[base + j]!;
    const rs = 1 / Math.sqrt(ss / cols + eps);
    rstd[r] = rs;
    if (weight) for (let j = 0; j < cols; j++) out[base + j] = x[base + j]! * rs * weight[j]!;
    else for (let j = 0; j < cols; j++) out[base + j] = x[base + j]! * rs;
  }
}

/**
 * With y = x * r * w and r = (mean(x^2) + eps)^-1/2:
 *   gx_j = r * w_j * gy_j - x_j * r^3 / cols * sum_k(w_k gy_k x_k);  gw_j += gy_j * x_j * r.
 * gx is written; gWeight (if given) accumulated over rows.
 */
export function rmsNormBackward(
  x: FloatArray,
  weight: FloatArray | null,
  rstd: FloatArray,
  gy: FloatArray,
  gx: FloatArray,
  gWeight: FloatArray | null,
  rows: number,
  cols: number,
): void {
  for (let r = 0; r < rows; r++) {
    const base = r * cols;
    const rs = rstd[r]!;
    let dot = 0;
    for (let j = 0; j < cols; j++) dot += (weight ? weight[j]! : 1) * gy[base + j]! * x[base + j]!;
    const c = (rs * rs * rs * dot) / cols;
    if (gWeight) for (let j = 0; j < cols; j++) gWeight[j] = gWeight[j]! + gy[base + j]! * x[base + j]! * rs;
    for (let j = 0; j < cols; j++) {
      const w = weight ? weight[j]! : 1;
      gx[base + j] = rs * w * gy[base + j]! - x[base + j]! * c;
    }
  }
}

/** out = (x - mean) * rstd * weight + bias (null weight = 1, null bias = 0); mean, rstd per row saved. */
export function layerNorm(
  x: FloatArray,
  weight: FloatArray | null,
  bias: FloatArray | null,
  out: FloatArray,
  mean: FloatArray,
  rstd: FloatArray,
  rows: number,
  cols: number,
  eps: number,
): void {
  for (let r = 0; r < rows; r++) {
    const base = r * cols;
    let s = 0;
    for (let j = 0; j < cols; j++) s += x[base + j]!;
    const mu = s / cols;
    let v = 0;
    for (let j = 0; j < cols; j++) {
      const d = x[base + j]! - mu;
      v += d * d;
    }
    const rs = 1 / Math.sqrt(v / cols + eps);
    mean[r] = mu;
    rstd[r] = rs;
    for (let j = 0; j < cols; j++) {
      const xhat = (x[base + j]! - mu) * rs;
      out[base + j] = xhat * (weight ? weight[j]! : 1) + (bias ? bias[j]! : 0);
    }
  }
}

/**
 * With xhat = (x - mean) * rstd and dxhat = gy * w:
 *   gx = rstd * (dxhat - mean(dxhat) - xhat * mean(dxhat * xhat));  gw += gy * xhat;  gb += gy.
 * gx is written; gWeight, gBias (if given) accumulated over rows.
 */
export function layerNormBackward(
  x: FloatArray,
  weight: FloatArray | null,
  mean: FloatArray,
  rstd: FloatArray,
  gy: FloatArray,
  gx: FloatArray,
  gWeight: FloatArray | null,
  gBias: FloatArray | null,
  rows: number,
  cols: number,
): void {
  for (let r = 0; r < rows; r++) {
    const base = r * cols;
    const mu = mean[r]!;
    const rs = rstd[r]!;
    let sumD = 0;
    let sumDX = 0;
    for (let j = 0; j < cols; j++) {
      const xhat = (x[base + j]! - mu) * rs;
      const d = gy[base + j]! * (weight ? weight[j]! : 1);
      sumD += d;
      sumDX += d * xhat;
    }
    const meanD = sumD / cols;
    const meanDX = sumDX / cols;
    for (let j = 0; j < cols; j++) {
      const g = gy[base + j]!;
      const xhat = (x[base + j]! - mu) * rs;
      if (gWeight) gWeight[j] = gWeight[j]! + g * xhat;
      if (gBias) gBias[j] = gBias[j]! + g;
      const d = g * (weight ? weight[j]! : 1);
      gx[base + j] = rs * (d - meanD - xhat * meanDX);
    }
  }
}
