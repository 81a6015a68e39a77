/**
 * The fixed random projections of intrinsic-dimension tuning (Li et al. 2018, "Measuring the
 * Intrinsic Dimension of Objective Landscapes"; Aghajanyan et al. 2021, "Intrinsic Dimensionality
 * Explains the Effectiveness of Language Model Fine-Tuning"): per target matrix of D entries, a map
 * P: R^d -> R^D, regenerated from a seed (never stored).
 *
 * Fastfood, in the form of the papers' released code (`fastfood_vars` / `fastfood_torched`):
 * with L = 2^ceil(log2(max(D, d))), B a random +-1 diagonal, Pi a random permutation, G a standard
 * Gaussian diagonal and H the unnormalised Walsh–Hadamard matrix (the `fwht` kernel, never dense),
 *   P z = [H G Pi H B pad_L(z)]_{0..D-1} / (sqrt(L * sum G^2) * sqrt(D / L)),
 * so every column has norm about 1. (The released code takes L from D alone, which drops
 * entries of z when d > L; here L also covers d.) Its transpose, used by the backward:
 *   P^T y = [B H Pi^T G H pad_L(y)]_{0..d-1} / (same scale).
 *
 * Dense: P [D, d] with standard Gaussian entries, each column scaled to unit length (Li et al.'s
 * dense projection); materialised, so limited to DENSE_PROJECTION_MAX_ENTRIES in all.
 *
 * Randomness: each matrix draws from `new Rng(projectionSeed(seed, module name))` — Fastfood: L
 * signs (the low bit of nextU32: 1 -> +1), then a Fisher–Yates permutation (i from L-1 down to 1,
 * j = floor(uniform() * (i + 1))), then L normals; dense: D*d normals in row-major order.
 */
import { kernelsFor } from '../backend/index.ts';
import type { FloatArray } from '../backend/kernels.ts';
import { ConfigError } from '../errors.ts';
import { Rng, type VectorProjection } from '../tensor/index.ts';

/** The projections `projection:` may name. */
export const INTRINSIC_PROJECTIONS = ['fastfood', 'dense'] as const;
export type IntrinsicProjectionKind = (typeof INTRINSIC_PROJECTIONS)[number];

/** The most entries (D * d summed over the targets) a dense projection may hold: 2^25 (128 MiB in f32). */
export const DENSE_PROJECTION_MAX_ENTRIES = 2 ** 25;

/** The seed of one matrix's projection: FNV-1a (32-bit) of `${seed}:${moduleName}`. */
export function projectionSeed(seed: number, moduleName: string): number {
  let h = 0x811c9dc5;
  const s = `${seed}:${moduleName}`;
  for (let i = 0; i < s.length; i++) {
    h ^= s.charCodeAt(i);
    h = Math.imul(h, 0x01000193) >>> 0;
  }
  return h;
}

function floatArray(n: number, f64: boolean): FloatArray {
  return f64 ? new Float64Array(n) : new Float32Array(n);
}

/** The Fastfood projection R^d -> R^D of the file comment. */
export class FastfoodProjection implements VectorProjection {
  /** Padded length L (a power of two >= max(D, d)). */
  readonly length: number;
  /** B: +-1 per entry. */
  readonly signs: FloatArray;
  /** Pi: (Pi v)[i] = v[perm[i]]. */
  readonly perm: Int32Array;
  /** G: standard normals. */
  readonly gauss: FloatArray;
  /** 1 / (sqrt(L * sum G^2) * sqrt(D / L)). */
  readonly scale: number;

  /** d -> D, drawn from `rng`; arrays in f64 when `f64` (the float64 reference), else f32. */
  constructor(
    readonly inSize: number,
    readonly outSize: number,
    rng: Rng,
    private readonly f64 = false,
  ) {
    let L = 1;
    while (L < Math.max(inSize, outSize)) L *= 2;
    this.length = L;
    this.signs = floatArray(L, f64);
    for (let i = 0; i < L; i++) this.signs[i] = rng.nextU32() & 1 ? 1 : -1;
    this.perm = new Int32Array(L);
    for (let i = 0; i < L; i++) this.perm[i] = i;
    for (let i = L - 1; i > 0; i--) {
      const j = Math.floor(rng.uniform() * (i + 1));
      const t = this.perm[i]!;
      this.perm[i] = this.perm[j]!;
      this.perm[j] = t;
    }
    this.gauss = floatArray(L, f64);
    let sumSq = 0;
    for (let i = 0; i < L; i++) {
      const g = rng.normal();
      this.gauss[i] = g;
      sumSq += g * g;
    }
    this.scale = 1 / (Math.sqrt(L * sumSq) * Math.sqrt(outSize / L));
  }

  /** out [D] = P z. */
  forward(z: FloatArray, out: FloatArray): void {
    const L = this.length;
    const k = kernelsFor(z instanceof Float64Array);
    const v = floatArray(L, z instanceof Float64Array);
    for (let i = 0; i < this.inSize; i++) v[i] = z[i]! * this.signs[i]!;
    k.fwht(v, 1, L);
    const w = floatArray(L, z instanceof Float64Array);
    for (let i = 0; i < L; i++) w[i] = v[this.perm[i]!]! * this.gauss[i]!;
    k.fwht(w, 1, L);
    for (let i = 0; i < this.outSize; i++) out[i] = w[i]! * this.scale;
  }

  /** out [d] = P^T y. */
  transpose(y: FloatArray, out: FloatArray): void {
    const L = this.length;
    const k = kernelsFor(y instanceof Float64Array);
    const w = floatArray(L, y instanceof Float64Array);
    for (let i = 0; i < this.outSize; i++) w[i] = y[i]! * this.scale;
    k.fwht(w, 1, L);
    const v = floatArray(L, y instanceof Float64Array);
    for (let i = 0; i < L; i++) v[this.perm[i]!] = w[i]! * this.gauss[i]!;
    k.fwht(v, 1, L);
    for (let i = 0; i < this.inSize; i++) out[i] = v[i]! * this.signs[i]!;
  }

  /** Whether the arrays are f64. */
  get isF64(): boolean {
    return this.f64;
  }
}

/** The dense projection R^d -> R^D of the file comment: P [D, d] row-major, unit columns. */
export class DenseProjection implements VectorProjection {
  /** P, row-major [D, d]. */
  readonly matrix: FloatArray;

  /** d -> D, drawn from `rng` (f64 when `f64`). */
  constructor(
    readonly inSize: number,
    readonly outSize: number,
    rng: Rng,
    f64 = false,
  ) {
    const n = inSize * outSize;
    this.matrix = floatArray(n, f64);
    for (let i = 0; i < n; i++) this.matrix[i] = rng.normal();
    const norms = new Float64Array(inSize);
    for (let r = 0; r < outSize; r++)
      for (let c = 0; c < inSize; c++) norms[c] = norms[c]! + this.matrix[r * inSize + c]! ** 2;
    for (let c = 0; c < inSize; c++) norms[c] = 1 / Math.sqrt(norms[c]!);
    for (let r = 0; r < outSize; r++)
      for (let c = 0; c < inSize; c++) this.matrix[r * inSize + c] = this.matrix[r * inSize + c]! * norms[c]!;
  }

  /** out [D] = P z (one GEMV through the sgemm kernel). */
  forward(z: FloatArray, out: FloatArray): void {
    const d = this.inSize;
    kernelsFor(z instanceof Float64Array).sgemm(
      false,
      false,
      this.outSize,
      1,
      d,
      1,
      this.matrix,
      0,
      d,
      z,
      0,
      1,
      false,
      0,
      out,
      0,
      1,
      1,
      0,
      0,
      0,
    );
  }

  /** out [d] = P^T y. */
  transpose(y: FloatArray, out: FloatArray): void {
    const d = this.inSize;
    kernelsFor(y instanceof Float64Array).sgemm(
      true,
      false,
      d,
      1,
      this.outSize,
      1,
      this.matrix,
      0,
      d,
      y,
      0,
      1,
      false,
      0,
      out,
      0,
      1,
      1,
      0,
      0,
      0,
    );
  }
}

/**
 * The projection of one target: `kind`, d -> `numel`, seeded by `seed` and the module name.
 * Throws a ConfigError for an unknown kind.
 */
export function makeProjection(
  kind: IntrinsicProjectionKind,
  d: number,
  numel: number,
  seed: number,
  moduleName: string,
  f64: boolean,
): FastfoodProjection | DenseProjection {
  const rng = new Rng(projectionSeed(seed, moduleName));
  if (kind === 'fastfood') return new FastfoodProjection(d, numel, rng, f64);
  if (kind === 'dense') return new DenseProjection(d, numel, rng, f64);
  throw new ConfigError(
    `intrinsic_dim: projection must be one of ${INTRINSIC_PROJECTIONS.join(', ')}, found '${String(kind)}'`,
  );
}
