/** Rotary position embedding (HF "rotate half" convention), forward and inverse. */
import type { FloatArray } from '../kernels.ts';

/**
 * On x [B, T, H, D] (D even, half = D/2), with p = positions[b*T + t] and cos/sin [maxPos, half]:
 *   out[i]        = x[i] * cos[p, i] - x[i + half] * sin[p, i]
 *   out[i + half] = x[i + half] * cos[p, i] + x[i] * sin[p, i]
 * `inverse` negates sin (the backward pass, a rotation by -angle). out may alias x.
 * Throws a RangeError for a position outside the tables.
 */
export function rope(
  x: FloatArray,
  out: FloatArray,
  cos: FloatArray,
  sin: FloatArray,
  positions: Int32Array,
  B: number,
  T: number,
  H: number,
  D: number,
  inverse: boolean,
): void {
  const half = D >> 1;
  const maxPos = half === 0 ? 0 : Math.floor(cos.length / half);
  const sign = inverse ? -1 : 1;
  for (let bt = 0; bt < B * T; bt++) {
    const p = positions[bt]!;
    if (half > 0 && (p < 0 || p >= maxPos)) {
      throw new RangeError(
        `rope: position ${p} (token ${bt}) is outside the cos/sin tables of ${maxPos} positions`,
      );
    }
    const tab = p * half;
    for (let h = 0; h < H; h++) {
      const base = (bt * H + h) * D;
      for (let i = 0; i < half; i++) {
        const c = cos[tab + i]!;
        const s = sign * sin[tab + i]!;
        const a = x[base + i]!;
        const b = x[base + i + half]!;
        out[base + i] = a * c - b * s;
        out[base + i + half] = b * c + a * s;
      }
    }
  }
}
