/**
 * The per-tensor rules that turn input tensors into the merged tensor, each as mergekit computes it
 * (merge_methods/*.py), in f64 arithmetic per element with one f32 rounding at the end. Outputs are
 * written element by element after every input of that element was read, so `out` may be one of
 * the inputs (the streaming engine merges in place and allocates nothing).
 */
import type { Divisor } from './parameters.ts';

/** One task vector: Δ_j = scale * (theta_j - base_j), weighted by `weight`. */
export interface TaskVector {
  theta: Float32Array;
  weight: number;
  /** Rescale factor of the kept entries (1 when not sparsified or not rescaled). */
  scale: number;
}

/** Options of `combineTaskVectors`. */
export interface CombineOptions {
  /** TIES sign election (mergekit consensus 'sum'). */
  consensus: boolean;
  /** Divide by the weights (see `divisor`). */
  normalize: boolean;
  /** With consensus and normalize: the agreeing models' weights (mergekit) or their count (paper / PEFT). */
  divisor: Divisor;
  /** Scale of the merged task vector. */
  lambda: number;
}

/**
 * Generalised task arithmetic (mergekit's GTATask): out = base + lambda * merged where, per element,
 * merged = sum_i w_i Δ_i, or with consensus only the terms whose sign equals the elected sign
 * sign(sum_i w_i Δ_i) (0 counts as +; zero terms never agree). With normalize the sum is divided by
 * the weights of the terms kept (consensus; `divisor: count` divides by their number) or of all
 * models (no consensus); a zero divisor counts as 1.
 */
export function combineTaskVectors(
  base: Float32Array,
  vectors: readonly TaskVector[],
  options: CombineOptions,
  out: Float32Array,
): void {
  const n = base.length;
  const m = vectors.length;
  const thetas = vectors.map((v) => v.theta);
  const weights = vectors.map((v) => v.weight);
  const scales = vectors.map((v) => v.scale);
  const terms = new Float64Array(m);
  let weightSum = 0;
  for (const w of weights) weightSum += w;
  const plainDivisor = Math.abs(weightSum) < 1e-8 ? 1 : weightSum;
  const byCount = options.divisor === 'count';
  for (let j = 0; j < n; j++) {
    const b = base[j]!;
    let sum = 0;
    for (let i = 0; i < m; i++) {
      const term = weights[i]! * scales[i]! * (thetas[i]![j]! - b);
      terms[i] = term;
      sum += term;
    }
    let merged: number;
    if (options.consensus) {
      const elected = sum >= 0 ? 1 : -1;
      merged = 0;
      let divisor = 0;
      for (let i = 0; i < m; i++) {
        const term = terms[i]!;
        if (Math.sign(term) === elected) {
          merged += term;
          divisor += byCount ? 1 : weights[i]!;
        }
      }
      if (options.normalize) merged /= divisor === 0 ? 1 : divisor;
    } else {
      merged = sum;
      if (options.normalize) merged /= plainDivisor;
    }
    out[j] = b + options.lambda * merged;
  }
}

/** Weighted mean (mergekit's linear): sum_i w_i θ_i, divided by sum_i w_i when `normalize`. */
export function linearCombine(
  thetas: readonly Float32Array[],
  weights: readonly number[],
  normalize: boolean,
  out: Float32Array,
): void {
  let weightSum = 0;
  for (const w of weights) weightSum += w;
  const divisor = normalize ? weightSum : 1;
  const n = out.length;
  const m = thetas.length;
  for (let j = 0; j < n; j++) {
    let sum = 0;
    for (let i = 0; i < m; i++) sum += weights[i]! * thetas[i]![j]!;
    out[j] = sum / divisor;
  }
}

/** Threshold of |cos| above which mergekit's slerp treats the tensors as colinear and lerps. */
export const SLERP_DOT_THRESHOLD = 0.9995;

/** The coefficients (s0, s1) of slerp(t, v0, v1) = s0 v0 + s1 v1, and whether it fell back to lerp. */
export function slerpCoefficients(
  t: number,
  v0: Float32Array,
  v1: Float32Array,
  eps = 1e-8,
): { s0: number; s1: number; lerp: boolean } {
  let n0 = 0;
  let n1 = 0;
  let dot = 0;
  for (let j = 0; j < v0.length; j++) {
    const a = v0[j]!;
    const b = v1[j]!;
    n0 += a * a;
    n1 += b * b;
    dot += a * b;
  }
  const norm0 = Math.sqrt(n0);
  const norm1 = Math.sqrt(n1);
  const cos = dot / ((norm0 > eps ? norm0 : 1) * (norm1 > eps ? norm1 : 1));
  if (Math.abs(cos) > SLERP_DOT_THRESHOLD) return { s0: 1 - t, s1: t, lerp: true };
  const theta0 = Math.acos(cos);
  const sin0 = Math.sin(theta0);
  const thetaT = theta0 * t;
  return { s0: Math.sin(theta0 - thetaT) / sin0, s1: Math.sin(thetaT) / sin0, lerp: false };
}

/**
 * Spherical interpolation of two tensors flattened as vectors (mergekit's slerp): the angle between
 * their directions (norms above 1e-8 normalised), s0 = sin((1-t)θ)/sin θ, s1 = sin(tθ)/sin θ applied
 * to the unnormalised tensors; |cos θ| > 0.9995 falls back to (1-t) v0 + t v1.
 */
export function slerpTensors(
  t: number,
  v0: Float32Array,
  v1: Float32Array,
  out: Float32Array,
): { lerp: boolean } {
  const { s0, s1, lerp } = slerpCoefficients(t, v0, v1);
  for (let j = 0; j < out.length; j++) out[j] = s0 * v0[j]! + s1 * v1[j]!;
  return { lerp };
}

/** Model stock's interpolation ratio t = N cos / (1 + (N - 1) cos) for N fine-tuned models. */
export function modelStockRatio(n: number, cos: number): number {
  return (n * cos) / (1 + (n - 1) * cos);
}

/**
 * Model stock (mergekit's model_stock): cos = the mean pairwise cosine between the models' offsets
 * from the base (norm products clamped to >= 1e-6, cosines to [-1, 1]), t = N cos / (1 + (N-1) cos),
 * out = t * mean(θ_i) + (1 - t) * base — over the whole tensor, or per row with `filterWise`
 * (rows of `rowLength`). Returns the ratio of each segment. Where 1 + (N-1) cos = 0 the ratio is
 * undefined; Attune then keeps the base (t = 0).
 */
export function modelStockTensors(
  base: Float32Array,
  thetas: readonly Float32Array[],
  filterWise: boolean,
  rowLength: number,
  out: Float32Array,
): number[] {
  const n = base.length;
  const m = thetas.length;
  const segment = filterWise && rowLength > 0 ? rowLength : n;
  const ratios: number[] = [];
  const gram = new Float64Array(m * m);
  for (let from = 0; from < n; from += segment) {
    const to = Math.min(n, from + segment);
    gram.fill(0);
    for (let j = from; j < to; j++) {
      const b = base[j]!;
      for (let i = 0; i < m; i++) {
        const di = thetas[i]![j]! - b;
        for (let k = i; k < m; k++) gram[i * m + k]! += di * (thetas[k]![j]! - b);
      }
    }
    let cosSum = 0;
    let pairs = 0;
    for (let i = 0; i < m; i++) {
      for (let k = i + 1; k < m; k++) {
        const normProduct = Math.sqrt(gram[i * m + i]!) * Math.sqrt(gram[k * m + k]!);
        const cos = gram[i * m + k]! / Math.max(normProduct, 1e-6);
        cosSum += Math.min(1, Math.max(-1, cos));
        pairs++;
      }
    }
    const ratio = modelStockRatio(m, cosSum / pairs);
    // 1 + (N-1) cos = 0 leaves t undefined (mergekit would write inf/NaN): keep the base there.
    const t = Number.isFinite(ratio) ? ratio : 0;
    ratios.push(t);
    for (let j = from; j < to; j++) {
      let sum = 0;
      for (let i = 0; i < m; i++) sum += thetas[i]![j]!;
      out[j] = t * (sum / m) + (1 - t) * base[j]!;
    }
  }
  return ratios;
}
