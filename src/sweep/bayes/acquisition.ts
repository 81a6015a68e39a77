/**
 * Acquisition functions of the Bayesian search, on costs (smaller is better):
 * expected improvement for one objective (the closed form of Jones et al. 1998) and, for two,
 * the expected hypervolume improvement estimated by Monte Carlo with fixed (seeded) standard-normal
 * draws shared by every candidate, so candidates are compared on the same samples.
 */

import { normalCdf, normalPdf } from '../../tensor/special.ts';

/**
 * Expected improvement below `best` of a cost ~ N(mean, sd²):
 * E[max(best − y, 0)] = (best − mean)·Φ(u) + sd·φ(u), u = (best − mean)/sd; max(best − mean, 0) when sd = 0.
 */
export function expectedImprovement(mean: number, sd: number, best: number): number {
  if (!(sd > 0)) return Math.max(best - mean, 0);
  const u = (best - mean) / sd;
  return (best - mean) * normalCdf(u) + sd * normalPdf(u);
}

/** The points of `points` no other one dominates (2 costs, smaller better), sorted by the first cost. */
export function front2d(points: readonly (readonly [number, number])[]): [number, number][] {
  const sorted = [...points].sort((a, b) => a[0] - b[0] || a[1] - b[1]);
  const out: [number, number][] = [];
  for (const p of sorted) if (out.length === 0 || p[1] < out.at(-1)![1]) out.push([p[0], p[1]]);
  return out;
}

/** The area dominated by `points` (2 costs, smaller better) and bounded by the reference point `ref`. */
export function hypervolume2d(
  points: readonly (readonly [number, number])[],
  ref: readonly [number, number],
): number {
  const f = front2d(points.filter((p) => p[0] < ref[0] && p[1] < ref[1]));
  let area = 0;
  for (let i = 0; i < f.length; i++) {
    const right = i + 1 < f.length ? f[i + 1]![0] : ref[0];
    area += (right - f[i]![0]) * (ref[1] - f[i]![1]);
  }
  return area;
}

/** How much adding `y` grows the hypervolume of `front` (already non-dominated, sorted) under `ref`. */
export function hypervolumeImprovement(
  front: readonly (readonly [number, number])[],
  y: readonly [number, number],
  ref: readonly [number, number],
): number {
  if (!(y[0] < ref[0] && y[1] < ref[1])) return 0;
  // the box [y, ref] minus what the front already covers of it
  let area = (ref[0] - y[0]) * (ref[1] - y[1]);
  // front points, clipped to the box, form a staircase; subtract its area inside the box
  const inBox = front
    .filter((p) => p[0] < ref[0] && p[1] < ref[1])
    .map((p) => [Math.max(p[0], y[0]), Math.max(p[1], y[1])] as [number, number]);
  area -= hypervolume2d(inBox, ref);
  return Math.max(0, area);
}

/**
 * Monte Carlo expected hypervolume improvement of a candidate with independent Gaussian costs
 * N(mean[j], sd[j]²): the mean of the improvement over `normals` (pairs of standard-normal draws,
 * the same for every candidate).
 */
export function expectedHypervolumeImprovement(
  mean: readonly [number, number],
  sd: readonly [number, number],
  front: readonly (readonly [number, number])[],
  ref: readonly [number, number],
  normals: readonly (readonly [number, number])[],
): number {
  let sum = 0;
  for (const z of normals)
    sum += hypervolumeImprovement(front, [mean[0] + sd[0] * z[0], mean[1] + sd[1] * z[1]], ref);
  return sum / normals.length;
}
