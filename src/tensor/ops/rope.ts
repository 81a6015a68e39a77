/** Rotary position embedding (HF "rotate half") and its cos/sin tables, with llama3 scaling. */
import type { FloatArray } from '../../backend/kernels.ts';
import { needsGrad, record } from '../autograd.ts';
import { formatShape, Tensor } from '../tensor.ts';
import { emptyLike, floatOf, kernelsOf } from './util.ts';

/** HF `rope_scaling` of type llama3 (Llama 3.1 / 3.2), field names as in config.json. */
export interface RopeScaling {
  type: 'llama3';
  factor: number;
  low_freq_factor: number;
  high_freq_factor: number;
  original_max_position_embeddings: number;
}

/**
 * Rotate x [B, T, H, D] by the angles of `positions` (length B*T, one per token) read from the
 * cos/sin tables [maxPos, D/2] (see `ropeTables`); same shape as x. The backward pass is the
 * inverse rotation. Gradients flow to x only (the tables are constants).
 */
export function rope(x: Tensor, cos: Tensor, sin: Tensor, positions: Int32Array): Tensor {
  const xd = floatOf(x, 'rope');
  if (x.rank !== 4) throw new RangeError(`rope: x ${formatShape(x.shape)} must be [B, T, H, D]`);
  const [B, T, H, D] = x.shape as [number, number, number, number];
  if (D % 2 !== 0) throw new RangeError(`rope: head dim ${D} of ${formatShape(x.shape)} must be even`);
  const half = D / 2;
  for (const [name, t] of [
    ['cos', cos],
    ['sin', sin],
  ] as const) {
    floatOf(t, 'rope', name);
    if (t.dtype !== x.dtype)
      throw new TypeError(`rope: ${name} table ${t.describe()} and x ${x.describe()}: dtypes differ`);
    if (t.rank !== 2 || t.shape[1] !== half || t.shape[0] !== cos.shape[0]) {
      throw new RangeError(
        `rope: ${name} table ${formatShape(t.shape)} must be [maxPos, ${half}] like cos ${formatShape(cos.shape)}`,
      );
    }
  }
  const maxPos = cos.shape[0]!;
  if (positions.length !== B * T) {
    throw new RangeError(
      `rope: ${positions.length} positions for ${B * T} tokens of ${formatShape(x.shape)} (need B*T)`,
    );
  }
  for (let i = 0; i < positions.length; i++) {
    const p = positions[i]!;
    if (!(p >= 0 && p < maxPos)) {
      throw new RangeError(
        `rope: position ${p} of token ${i} is outside the tables of ${maxPos} positions (raise maxPos)`,
      );
    }
  }
  const pos = Int32Array.from(positions); // backward must see the positions of this call
  const k = kernelsOf(x);
  const out = emptyLike(x);
  k.rope(xd, out.data as FloatArray, cos.data as FloatArray, sin.data as FloatArray, pos, B, T, H, D, false);
  if (needsGrad(x)) {
    record('rope', [x], [out], [cos, sin], ([g]) => {
      const gx = emptyLike(x);
      k.rope(
        g!.data as FloatArray,
        gx.data as FloatArray,
        cos.data as FloatArray,
        sin.data as FloatArray,
        pos,
        B,
        T,
        H,
        D,
        true,
      );
      return [gx];
    });
  }
  return out;
}

/**
 * HF's inverse frequencies for a head of `headDim`: inv_freq[i] = 1 / theta^(2i / headDim), with
 * the llama3 frequency adjustment when `scaling` is given (transformers'
 * `_compute_llama3_parameters`). Every step is rounded to f32 as PyTorch computes it in f32.
 */
export function ropeInverseFrequencies(headDim: number, theta: number, scaling?: RopeScaling): Float64Array {
  if (!Number.isInteger(headDim) || headDim <= 0 || headDim % 2 !== 0) {
    throw new RangeError(
      `ropeInverseFrequencies: head dim must be a positive even integer, found ${headDim}`,
    );
  }
  if (!(theta > 0)) throw new RangeError(`ropeInverseFrequencies: theta must be positive, found ${theta}`);
  const f = Math.fround;
  const half = headDim / 2;
  const inv = new Float64Array(half);
  for (let i = 0; i < half; i++) inv[i] = f(1 / f(f(theta) ** f((2 * i) / headDim)));
  if (!scaling) return inv;
  if ((scaling as { type: string }).type !== 'llama3') {
    throw new RangeError(
      `ropeInverseFrequencies: rope_scaling type '${(scaling as { type: string }).type}' is not supported (llama3)`,
    );
  }
  const factor = f(scaling.factor);
  const low = scaling.low_freq_factor;
  const high = scaling.high_freq_factor;
  const oldContext = scaling.original_max_position_embeddings;
  if (!(factor > 0) || !(high > low) || !(low > 0) || !(oldContext > 0)) {
    throw new RangeError(
      `ropeInverseFrequencies: llama3 rope_scaling needs factor > 0, high_freq_factor > low_freq_factor > 0 and original_max_position_embeddings > 0, found ${JSON.stringify(scaling)}`,
    );
  }
  const lowFreqWavelen = f(oldContext / low);
  const highFreqWavelen = f(oldContext / high);
  const twoPi = f(2 * Math.PI);
  for (let i = 0; i < half; i++) {
    const freq = inv[i]!;
    const wavelen = f(twoPi / freq);
    // wavelen < high_freq_wavelen: keep; wavelen > low_freq_wavelen: divide by factor; else blend
    const scaled = wavelen > lowFreqWavelen ? f(freq / factor) : freq;
    if (!(wavelen < highFreqWavelen) && !(wavelen > lowFreqWavelen)) {
      const smooth = f(f(f(oldContext) / wavelen - f(low)) / f(high - low));
      inv[i] = f(f(f(f(1 - smooth) * scaled) / factor) + f(smooth * scaled));
    } else {
      inv[i] = scaled;
    }
  }
  return inv;
}

/**
 * cos/sin tables [maxPos, headDim/2] (f32, untracked) for `rope`: angle[p, i] = p * inv_freq[i]
 * with HF's inv_freq (see `ropeInverseFrequencies`), the product and cos/sin rounded to f32 as
 * HF's LlamaRotaryEmbedding computes them.
 */
export function ropeTables(
  maxPos: number,
  headDim: number,
  theta: number,
  scaling?: RopeScaling,
): { cos: Tensor; sin: Tensor } {
  if (!Number.isInteger(maxPos) || maxPos < 0)
    throw new RangeError(`ropeTables: maxPos must be a non-negative integer, found ${maxPos}`);
  const inv = ropeInverseFrequencies(headDim, theta, scaling);
  const half = headDim / 2;
  const cos = Tensor.alloc([maxPos, half], 'f32', false, { track: false });
  const sin = Tensor.alloc([maxPos, half], 'f32', false, { track: false });
  const c = cos.data as Float32Array;
  const s = sin.data as Float32Array;
  for (let p = 0; p < maxPos; p++) {
    for (let i = 0; i < half; i++) {
      const angle = Math.fround(p * inv[i]!);
      c[p * half + i] = Math.cos(angle);
      s[p * half + i] = Math.sin(angle);
    }
  }
  return { cos, sin };
}
