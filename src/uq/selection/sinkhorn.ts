/**
 * Entropic optimal transport by Sinkhorn's iterations in the log domain (float64): for weights a
 * (n), b (m) and a cost C (n x m), the dual potentials f, g of
 *   OT_eps(a, b) = min_P <P, C> + eps * KL(P | a b^T)   s.t. P 1 = a, P^T 1 = b,
 * with P_ij = a_i b_j exp((f_i + g_j - C_ij) / eps). The potential f is the gradient of OT_eps with
 * respect to a (up to a constant shift, since a stays on the simplex), which is what
 * distribution-shift selection ranks candidates by.
 */

/** What `sinkhorn` returns. */
export interface SinkhornResult {
  f: Float64Array;
  g: Float64Array;
  /** The transport plan, row-major n x m. */
  plan: Float64Array;
  /** Iterations run. */
  iterations: number;
  /** Largest marginal error |P 1 - a| at the end. */
  marginalError: number;
}

/** Options of `sinkhorn`. */
export interface SinkhornOptions {
  /** Entropic regularisation (> 0). */
  eps: number;
  /** Iteration limit (default 1000). */
  maxIterations?: number;
  /** Stop when the row marginals are within this of a (default 1e-9). */
  tolerance?: number;
}

function logSumExp(values: Float64Array): number {
  let max = Number.NEGATIVE_INFINITY;
  for (const v of values) if (v > max) max = v;
  if (max === Number.NEGATIVE_INFINITY) return max;
  let s = 0;
  for (const v of values) s += Math.exp(v - max);
  return max + Math.log(s);
}

/** Log-domain Sinkhorn (see the file comment); `cost` is row-major n x m. */
export function sinkhorn(
  a: ArrayLike<number>,
  b: ArrayLike<number>,
  cost: ArrayLike<number>,
  options: SinkhornOptions,
): SinkhornResult {
  const n = a.length;
  const m = b.length;
  if (cost.length !== n * m)
    throw new RangeError(`sinkhorn: cost has ${cost.length} entries, expected ${n} x ${m}`);
  if (!(options.eps > 0)) throw new RangeError(`sinkhorn: eps must be > 0, found ${options.eps}`);
  const eps = options.eps;
  const maxIterations = options.maxIterations ?? 1000;
  const tolerance = options.tolerance ?? 1e-9;
  const logA = Float64Array.from(a, Math.log);
  const logB = Float64Array.from(b, Math.log);
  const f = new Float64Array(n);
  const g = new Float64Array(m);
  const row = new Float64Array(m);
  const col = new Float64Array(n);
  let iterations = 0;
  let marginalError = Number.POSITIVE_INFINITY;
  while (iterations < maxIterations) {
    iterations++;
    // f_i = -eps log sum_j b_j exp((g_j - C_ij) / eps)
    for (let i = 0; i < n; i++) {
      for (let j = 0; j < m; j++) row[j] = logB[j]! + (g[j]! - cost[i * m + j]!) / eps;
      f[i] = -eps * logSumExp(row);
    }
    // g_j = -eps log sum_i a_i exp((f_i - C_ij) / eps)
    for (let j = 0; j < m; j++) {
      for (let i = 0; i < n; i++) col[i] = logA[i]! + (f[i]! - cost[i * m + j]!) / eps;
      g[j] = -eps * logSumExp(col);
    }
    // after the g update the column marginals are exact; check the rows
    marginalError = 0;
    for (let i = 0; i < n; i++) {
      let s = 0;
      for (let j = 0; j < m; j++)
        s += Math.exp(logA[i]! + logB[j]! + (f[i]! + g[j]! - cost[i * m + j]!) / eps);
      marginalError = Math.max(marginalError, Math.abs(s - a[i]!));
    }
    if (marginalError < tolerance) break;
  }
  const plan = new Float64Array(n * m);
  for (let i = 0; i < n; i++)
    for (let j = 0; j < m; j++)
      plan[i * m + j] = Math.exp(logA[i]! + logB[j]! + (f[i]! + g[j]! - cost[i * m + j]!) / eps);
  return { f, g, plan, iterations, marginalError };
}

/**
 * The calibrated gradient of LAVA / "Get more for less": for each candidate i, f_i minus the mean
 * of the other candidates' potentials, the change of OT when mass moves to i from the rest
 * uniformly. Negative = moving mass onto i brings the candidate distribution closer to the target.
 */
export function calibratedGradient(f: ArrayLike<number>): Float64Array {
  const n = f.length;
  let total = 0;
  for (let i = 0; i < n; i++) total += f[i]!;
  return Float64Array.from({ length: n }, (_, i) => (n > 1 ? f[i]! - (total - f[i]!) / (n - 1) : 0));
}
