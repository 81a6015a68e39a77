/**
 * Special functions on plain numbers, one implementation for every layer above (the error
 * function is the js backend's, which GELU uses): the standard normal density and distribution
 * function, for expected improvement (sweep/bayes) and a judge's confidence (train/rounds).
 */
import { erf, erfc } from '../backend/js/basic.ts';

export { erf, erfc };

/** Standard normal density. */
export function normalPdf(z: number): number {
  return Math.exp(-0.5 * z * z) / Math.sqrt(2 * Math.PI);
}

/** Standard normal distribution function, through erfc so that the lower tail keeps its precision. */
export function normalCdf(z: number): number {
  return 0.5 * erfc(-z / Math.SQRT2);
}
