/**
 * A Gaussian-process surrogate for the Bayesian search (float64, plain arrays: a search has tens of
 * observations, so the O(n^3) Cholesky is microseconds and needs no kernel). Inputs are points of
 * the unit cube (see encode.ts); outputs are standardised (mean 0, variance 1) before fitting, so
 * the kernel's signal variance is 1 and only the length-scale and the noise are fitted, by
 * maximising the log marginal likelihood over a fixed grid — deterministic, no restarts to seed.
 */

/** Kernel hyper-parameters on standardised outputs. */
export interface GpHyper {
  /** Length-scale of the Matérn 5/2 kernel in unit-cube distance. */
  lengthscale: number;
  /** Observation noise variance (relative to the standardised signal variance 1). */
  noise: number;
  /** Signal variance (1 on standardised outputs). */
  variance: number;
}

/** Length-scales and noise levels the marginal-likelihood fit picks from. */
export const LENGTHSCALE_GRID = [0.05, 0.1, 0.15, 0.2, 0.3, 0.45, 0.7, 1, 1.5, 2.5];
export const NOISE_GRID = [1e-6, 1e-4, 1e-3, 1e-2, 0.05, 0.2];

/** Matérn 5/2: variance · (1 + √5 r/ℓ + 5r²/(3ℓ²)) · exp(−√5 r/ℓ). */
export function matern52(a: readonly number[], b: readonly number[], h: GpHyper): number {
  let d2 = 0;
  for (let i = 0; i < a.length; i++) d2 += (a[i]! - b[i]!) ** 2;
  const s = (Math.sqrt(5) * Math.sqrt(d2)) / h.lengthscale;
  return h.variance * (1 + s + (s * s) / 3) * Math.exp(-s);
}

/** Lower Cholesky factor of a symmetric positive-definite matrix (row-major n×n); null if not SPD. */
export function cholesky(a: Float64Array, n: number): Float64Array | null {
  const l = new Float64Array(n * n);
  for (let i = 0; i < n; i++)
    for (let j = 0; j <= i; j++) {
      let s = a[i * n + j]!;
      for (let k = 0; k < j; k++) s -= l[i * n + k]! * l[j * n + k]!;
      if (i === j) {
        if (!(s > 0)) return null;
        l[i * n + i] = Math.sqrt(s);
      } else l[i * n + j] = s / l[j * n + j]!;
    }
  return l;
}

/** Solve L x = b (forward substitution). */
function forward(l: Float64Array, n: number, b: readonly number[]): number[] {
  const x = new Array<number>(n);
  for (let i = 0; i < n; i++) {
    let s = b[i]!;
    for (let k = 0; k < i; k++) s -= l[i * n + k]! * x[k]!;
    x[i] = s / l[i * n + i]!;
  }
  return x;
}

/** Solve Lᵀ x = b (back substitution). */
function backward(l: Float64Array, n: number, b: readonly number[]): number[] {
  const x = new Array<number>(n);
  for (let i = n - 1; i >= 0; i--) {
    let s = b[i]!;
    for (let k = i + 1; k < n; k++) s -= l[k * n + i]! * x[k]!;
    x[i] = s / l[i * n + i]!;
  }
  return x;
}

/** A fitted GP: the posterior at any point, in the outputs' own units. */
export interface Gp {
  hyper: GpHyper;
  /** Log marginal likelihood of the standardised outputs under `hyper`. */
  logLikelihood: number;
  /** Posterior mean and variance (of the latent function, without the noise) at `x`. */
  predict(x: readonly number[]): { mean: number; variance: number };
}

/** The GP posterior of `ys` at `xs` under fixed hyper-parameters, on outputs shifted by `mean` and scaled by `scale`. */
export function gpPosterior(
  xs: readonly (readonly number[])[],
  ys: readonly number[],
  hyper: GpHyper,
  standardise: { mean: number; scale: number } = { mean: 0, scale: 1 },
): Gp | null {
  const n = xs.length;
  const k = new Float64Array(n * n);
  for (let i = 0; i < n; i++)
    for (let j = 0; j < n; j++) k[i * n + j] = matern52(xs[i]!, xs[j]!, hyper) + (i === j ? hyper.noise : 0);
  const l = cholesky(k, n);
  if (!l) return null;
  const z = ys.map((y) => (y - standardise.mean) / standardise.scale);
  const alpha = backward(l, n, forward(l, n, z));
  let logDet = 0;
  for (let i = 0; i < n; i++) logDet += Math.log(l[i * n + i]!);
  const fit = z.reduce((s, zi, i) => s + zi * alpha[i]!, 0);
  const logLikelihood = -0.5 * fit - logDet - 0.5 * n * Math.log(2 * Math.PI);
  return {
    hyper,
    logLikelihood,
    predict(x) {
      const ks = xs.map((xi) => matern52(x, xi, hyper));
      const m = ks.reduce((s, ki, i) => s + ki * alpha[i]!, 0);
      const v = forward(l, n, ks);
      const variance = Math.max(0, hyper.variance - v.reduce((s, vi) => s + vi * vi, 0));
      return {
        mean: standardise.mean + standardise.scale * m,
        variance: standardise.scale ** 2 * variance,
      };
    },
  };
}

/** Mean and standard deviation of `ys` (scale 1 when they are all equal). */
export function standardisation(ys: readonly number[]): { mean: number; scale: number } {
  const mean = ys.reduce((s, y) => s + y, 0) / ys.length;
  const sd = Math.sqrt(ys.reduce((s, y) => s + (y - mean) ** 2, 0) / ys.length);
  return { mean, scale: sd > 1e-12 * Math.max(1, Math.abs(mean)) ? sd : 1 };
}

/**
 * Fit a GP to (xs, ys): standardise ys, then pick the (length-scale, noise) of the grids with the
 * largest log marginal likelihood (first in grid order on ties).
 */
export function fitGp(xs: readonly (readonly number[])[], ys: readonly number[]): Gp {
  if (xs.length === 0 || xs.length !== ys.length)
    throw new RangeError(
      `fitGp: expected as many outputs as inputs (at least 1), found ${xs.length} and ${ys.length}`,
    );
  const st = standardisation(ys);
  let best: Gp | null = null;
  for (const lengthscale of LENGTHSCALE_GRID)
    for (const noise of NOISE_GRID) {
      const gp = gpPosterior(xs, ys, { lengthscale, noise, variance: 1 }, st);
      if (gp && (!best || gp.logLikelihood > best.logLikelihood)) best = gp;
    }
  if (!best) throw new RangeError('fitGp: no hyper-parameters of the grid give a positive-definite kernel');
  return best;
}
