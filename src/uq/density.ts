/**
 * Density-based uncertainty on hidden states (LM-Polygraph's MahalanobisDistanceSeq and
 * RelativeMahalanobisDistanceSeq): a Gaussian (mean mu, covariance Sigma) fitted on the mean hidden
 * states of training sequences, and
 *   MD(x)  = sqrt((h(x) - mu)^T Sigma^-1 (h(x) - mu))
 *   RMD(x) = MD(x) - MD_0(x)   (MD_0: the same with a Gaussian fitted on background data, Ren et al.)
 * Sigma is the unbiased sample covariance (torch.cov) plus a ridge lambda I, lambda = ridge *
 * trace(Sigma) / d (default ridge 1e-3): with fewer sequences than hidden dimensions Sigma is
 * singular, and LM-Polygraph's smallest-jitter loop would then invert near-zero eigenvalues; the
 * relative ridge keeps the distance finite and scale-free. The inverse is taken through the
 * symmetric eigendecomposition (f64).
 * A density file records what it was fitted on (model config sha256 + weights fingerprint, adapter
 * sha256, data sha256); applying it to another model or adapter is refused (calibrate/fitted-on.ts).
 */
import { existsSync, readFileSync } from 'node:fs';
import { ConfigError, FormatError } from '../errors.ts';
import { isJsonObject, writeTextAtomic } from '../io/index.ts';
import { matrix64, symmetricEigenRows } from '../tensor/index.ts';
import { type FittedOn, fittedOnFromJSON } from './calibrate/fitted-on.ts';

/** Default relative ridge: lambda = ridge * trace(Sigma) / d. */
export const DEFAULT_DENSITY_RIDGE = 1e-3;

/** A fitted Gaussian: mean and precision (inverse of the ridged covariance), d x d row-major. */
export interface Gaussian {
  mean: Float64Array;
  precision: Float64Array;
  /** Sequences fitted on. */
  n: number;
  /** The absolute ridge lambda added to the covariance's diagonal. */
  lambda: number;
}

/** The file `attune uq fit-density` writes. */
export interface DensityFile {
  type: 'gaussian-density';
  version: 1;
  hiddenSize: number;
  /** Relative ridge used (lambda = ridge * trace / d). */
  ridge: number;
  /** The training data's Gaussian (MD). */
  inDomain: Gaussian;
  /** The background data's Gaussian (RMD), when fitted with one. */
  background: Gaussian | null;
  /** Model, adapter and training data (method "mahalanobis", score "hidden_mean"). */
  fittedOn: FittedOn;
  /** The background data file, when given. */
  backgroundData: { path: string; sha256: string } | null;
}

/** Fit a Gaussian on `rows` (each of length d); ridge is relative (see the file comment). */
export function fitGaussian(rows: readonly Float64Array[], ridge = DEFAULT_DENSITY_RIDGE): Gaussian {
  const n = rows.length;
  if (n < 2)
    throw new RangeError(`fitGaussian: need at least 2 sequences to estimate a covariance, found ${n}`);
  if (!(ridge > 0)) throw new RangeError(`fitGaussian: ridge must be > 0, found ${ridge}`);
  const d = rows[0]!.length;
  const mean = new Float64Array(d);
  for (const r of rows) {
    if (r.length !== d) throw new RangeError(`fitGaussian: rows of length ${d} and ${r.length}`);
    for (let j = 0; j < d; j++) mean[j]! += r[j]!;
  }
  for (let j = 0; j < d; j++) mean[j]! /= n;
  const cov = new Float64Array(d * d);
  const diff = new Float64Array(d);
  for (const r of rows) {
    for (let j = 0; j < d; j++) diff[j] = r[j]! - mean[j]!;
    for (let a = 0; a < d; a++) {
      const da = diff[a]!;
      if (da === 0) continue;
      for (let b = a; b < d; b++) cov[a * d + b]! += da * diff[b]!;
    }
  }
  let trace = 0;
  for (let a = 0; a < d; a++) {
    for (let b = a; b < d; b++) {
      const v = cov[a * d + b]! / (n - 1);
      cov[a * d + b] = v;
      cov[b * d + a] = v;
    }
    trace += cov[a * d + a]!;
  }
  // an all-constant feature set (trace 0) still gets a positive ridge
  const lambda = ridge * (trace > 0 ? trace / d : 1);
  for (let a = 0; a < d; a++) cov[a * d + a]! += lambda;
  const { values, rows: vectors } = symmetricEigenRows(matrix64(d, d, cov));
  const precision = new Float64Array(d * d);
  values.forEach((value, k) => {
    const v = vectors!.subarray(k * d, (k + 1) * d);
    const w = 1 / Math.max(value, lambda);
    for (let a = 0; a < d; a++) {
      const va = v[a]! * w;
      for (let b = 0; b < d; b++) precision[a * d + b]! += va * v[b]!;
    }
  });
  return { mean, precision, n, lambda };
}

/** sqrt((h - mu)^T P (h - mu)) of `h` under a fitted Gaussian. */
export function mahalanobisDistance(g: Gaussian, h: ArrayLike<number>): number {
  const d = g.mean.length;
  if (h.length !== d)
    throw new RangeError(`mahalanobisDistance: a vector of ${h.length}, the density has ${d}`);
  const diff = new Float64Array(d);
  for (let j = 0; j < d; j++) diff[j] = h[j]! - g.mean[j]!;
  let q = 0;
  for (let a = 0; a < d; a++) {
    let row = 0;
    for (let b = 0; b < d; b++) row += g.precision[a * d + b]! * diff[b]!;
    q += diff[a]! * row;
  }
  return Math.sqrt(Math.max(q, 0));
}

/** RMD = MD(in-domain) - MD(background). */
export function relativeMahalanobisDistance(
  inDomain: Gaussian,
  background: Gaussian,
  h: ArrayLike<number>,
): number {
  return mahalanobisDistance(inDomain, h) - mahalanobisDistance(background, h);
}

const gaussianJSON = (g: Gaussian) => ({
  n: g.n,
  lambda: g.lambda,
  mean: Array.from(g.mean),
  precision: Array.from(g.precision),
});

/** Write a density file atomically (refused when it exists, unless `overwrite`). */
export function saveDensityFile(
  path: string,
  density: DensityFile,
  options: { overwrite?: boolean } = {},
): void {
  if (existsSync(path) && !options.overwrite)
    throw new ConfigError(`${path} already exists (pass --overwrite to replace it)`);
  const json = {
    type: density.type,
    version: density.version,
    hidden_size: density.hiddenSize,
    ridge: density.ridge,
    fitted_on: density.fittedOn,
    background_data: density.backgroundData,
    in_domain: gaussianJSON(density.inDomain),
    background: density.background ? gaussianJSON(density.background) : null,
  };
  writeTextAtomic(path, `${JSON.stringify(json)}\n`);
}

function gaussianFromJSON(value: unknown, d: number, path: string, field: string): Gaussian {
  const numbers = (x: unknown, length: number, name: string): Float64Array => {
    if (
      !Array.isArray(x) ||
      x.length !== length ||
      !x.every((v) => typeof v === 'number' && Number.isFinite(v))
    )
      throw new FormatError(path, `${field}.${name}: expected ${length} finite numbers`);
    return Float64Array.from(x as number[]);
  };
  if (!isJsonObject(value)) throw new FormatError(path, `${field}: expected an object`);
  if (!Number.isInteger(value.n) || (value.n as number) < 2)
    throw new FormatError(path, `${field}.n: expected an integer >= 2`);
  if (typeof value.lambda !== 'number' || !(value.lambda > 0))
    throw new FormatError(path, `${field}.lambda: expected a positive number`);
  return {
    n: value.n as number,
    lambda: value.lambda,
    mean: numbers(value.mean, d, 'mean'),
    precision: numbers(value.precision, d * d, 'precision'),
  };
}

/** Read and validate a density file (FormatError naming the file and field). */
export function loadDensityFile(path: string): DensityFile {
  if (!existsSync(path)) throw new FormatError(path, 'file not found (fit one with attune uq fit-density)');
  let value: unknown;
  try {
    value = JSON.parse(readFileSync(path, 'utf8'));
  } catch (error) {
    throw new FormatError(path, `invalid JSON: ${(error as Error).message}`);
  }
  if (!isJsonObject(value) || value.type !== 'gaussian-density')
    throw new FormatError(
      path,
      'expected {"type": "gaussian-density", ...} (written by attune uq fit-density)',
    );
  if (value.version !== 1)
    throw new FormatError(path, `version: expected 1, found ${JSON.stringify(value.version)}`);
  const d = value.hidden_size;
  if (!Number.isInteger(d) || (d as number) < 1)
    throw new FormatError(path, 'hidden_size: expected an integer >= 1');
  const bg = value.background_data;
  if (bg !== null && !(isJsonObject(bg) && typeof bg.path === 'string' && typeof bg.sha256 === 'string'))
    throw new FormatError(path, 'background_data: expected null or {path, sha256}');
  return {
    type: 'gaussian-density',
    version: 1,
    hiddenSize: d as number,
    ridge: typeof value.ridge === 'number' ? value.ridge : DEFAULT_DENSITY_RIDGE,
    fittedOn: fittedOnFromJSON(value.fitted_on, path),
    inDomain: gaussianFromJSON(value.in_domain, d as number, path, 'in_domain'),
    background:
      value.background === null ? null : gaussianFromJSON(value.background, d as number, path, 'background'),
    backgroundData: bg as DensityFile['backgroundData'],
  };
}
