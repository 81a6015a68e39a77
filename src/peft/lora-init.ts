/**
 * LoRA initialisations, PEFT's `init_lora_weights` (peft/tuners/lora/layer.py):
 * - `kaiming` (PEFT's `true`) and `gaussian`: A random, B = 0, the base untouched;
 * - `pissa` (Meng et al., "PiSSA: Principal Singular Values and Singular Vectors Adaptation"):
 *   from the SVD W = U S V^T [out, in], with S_r = S[:r] / scaling, B = U_r sqrt(S_r) [out, r] and
 *   A = sqrt(S_r) V_r^T [r, in]; `pissa_niter_N` takes the top r triplets from a randomized SVD
 *   (torch.svd_lowrank(W, r, niter=N): no oversampling, N power iterations);
 * - `olora` (Büyükakyüz, "OLoRA: Orthonormal Low-Rank Adaptation"): the thin QR W = Q R,
 *   B = Q[:, :r], A = R[:r, :] (no division by the scaling, as in PEFT).
 * PiSSA and OLoRA then replace the base weight by the residual W - scaling * B A, so the adapted
 * model starts equal to the base. The randomized sketch of `pissa_niter_N` has a fixed seed, so
 * re-initialising on load (as PEFT does for an adapter whose config names the init) gives the
 * same residual as at training time.
 */
import { ConfigError } from '../errors.ts';
import { type Matrix64, matmul64, matrix64, qr, randomizedSvd, svd } from '../tensor/index.ts';

/** How A and B start; see the file comment. */
export type LoraInit = 'kaiming' | 'gaussian' | 'pissa' | `pissa_niter_${number}` | 'olora' | 'corda';

const NITER = /^pissa_niter_(\d+)$/;

/** Whether `init` rewrites the base weight (PiSSA, OLoRA, CorDA: corda.ts). */
export function isMutatingInit(init: LoraInit): boolean {
  return init === 'pissa' || init === 'olora' || init === 'corda' || NITER.test(init);
}

/** `value` as a LoraInit, or null when it names none (callers word the error). */
export function parseLoraInit(value: unknown): LoraInit | null {
  if (
    value === 'kaiming' ||
    value === 'gaussian' ||
    value === 'pissa' ||
    value === 'olora' ||
    value === 'corda'
  )
    return value;
  if (typeof value === 'string' && NITER.test(value)) return value as LoraInit;
  return null;
}

/** The seed of `pissa_niter_N`'s Gaussian sketch (fixed: see the file comment). */
export const PISSA_SKETCH_SEED = 0;

/** A, B and the residual base of an SVD/QR init, all f64, [r, in], [out, r], [out, in]. */
export interface MutatingInit {
  a: Matrix64;
  b: Matrix64;
  residual: Matrix64;
}

function roundTo(values: Float64Array, dtype: 'f32' | 'f64'): void {
  if (dtype === 'f32') values.set(Float32Array.from(values));
}

/**
 * A, B and W - scaling * B A for the PiSSA or OLoRA init of `w` ([out, in], f64) at rank `r`;
 * A and B are rounded to `dtype` (the LoRA matrices' storage) before the residual is formed, so
 * residual + scaling * B A reproduces W up to the rounding of the residual itself.
 */
export function mutatingInit(
  w: Matrix64,
  init: LoraInit,
  r: number,
  scaling: number,
  dtype: 'f32' | 'f64',
): MutatingInit {
  const out = w.rows;
  const inF = w.cols;
  if (r > Math.min(out, inF)) {
    throw new ConfigError(
      `lora: init_lora_weights '${init}' needs r <= min(out, in) = ${Math.min(out, inF)} for a ${out} x ${inF} weight, found r = ${r}`,
    );
  }
  const a = matrix64(r, inF);
  const b = matrix64(out, r);
  if (init === 'olora') {
    const { q, r: rr } = qr(w);
    const k = q.cols;
    for (let o = 0; o < out; o++) for (let j = 0; j < r; j++) b.data[o * r + j] = q.data[o * k + j]!;
    a.data.set(rr.data.subarray(0, r * inF));
  } else {
    const niter = NITER.exec(init);
    let u: Matrix64;
    let s: Float64Array;
    let v: Matrix64;
    if (init === 'pissa') {
      const full = svd(w);
      u = full.u!;
      s = full.s;
      v = full.v!;
    } else if (niter) {
      ({ u, s, v } = randomizedSvd(w, r, {
        oversample: 0,
        powerIterations: Number(niter[1]),
        seed: PISSA_SKETCH_SEED,
      }));
    } else {
      throw new ConfigError(`lora: '${init}' is not a PiSSA or OLoRA init`);
    }
    for (let j = 0; j < r; j++) {
      const root = Math.sqrt(s[j]! / scaling);
      for (let o = 0; o < out; o++) b.data[o * r + j] = u.data[o * u.cols + j]! * root;
      for (let i = 0; i < inF; i++) a.data[j * inF + i] = root * v.data[i * v.cols + j]!;
    }
  }
  roundTo(a.data, dtype);
  roundTo(b.data, dtype);
  const ba = matmul64(b, a);
  const residual = matrix64(out, inF);
  for (let i = 0; i < residual.data.length; i++) residual.data[i] = w.data[i]! - scaling * ba.data[i]!;
  return { a, b, residual };
}
