/**
 * From a search space to the list of trials: a grid is every combination of its values (the first
 * field varies slowest), random search draws `trials` configurations with the seeded Rng; each
 * configuration runs once per seed. A trial's id is a hash of its parameters and seed, so the same
 * trial has the same folder (and BullMQ job id) in every run of the sweep, whatever else changed.
 */
import { createHash } from 'node:crypto';
import { Rng } from '../tensor/rng.ts';
import type { Dimension, SweepConfig } from './config.ts';

/** One trial of a sweep: the searched field values and the seed (null: the base config's). */
export interface TrialSpec {
  id: string;
  params: Record<string, unknown>;
  seed: number | null;
}

/** Every combination of the grid's values, in order (last field fastest). */
export function gridPoints(grid: Record<string, readonly unknown[]>): Record<string, unknown>[] {
  let points: Record<string, unknown>[] = [{}];
  for (const [field, values] of Object.entries(grid))
    points = points.flatMap((p) => values.map((v) => ({ ...p, [field]: v })));
  return points;
}

function draw(rng: Rng, d: Dimension): unknown {
  if (Array.isArray(d)) return d[rng.int(d.length)];
  if ('uniform' in d) return d.uniform[0] + rng.uniform() * (d.uniform[1] - d.uniform[0]);
  if ('log_uniform' in d) {
    const [lo, hi] = d.log_uniform;
    return Math.exp(Math.log(lo) + rng.uniform() * (Math.log(hi) - Math.log(lo)));
  }
  return d.int[0] + rng.int(d.int[1] - d.int[0] + 1);
}

/** `count` configurations drawn from `space` with Rng(seed), fields in the space's order. */
export function randomPoints(
  space: Record<string, Dimension>,
  count: number,
  seed: number,
): Record<string, unknown>[] {
  const rng = new Rng(seed);
  return Array.from({ length: count }, () =>
    Object.fromEntries(Object.entries(space).map(([field, d]) => [field, draw(rng, d)])),
  );
}

/** A stable JSON text: object keys sorted at every level. */
export function canonicalJson(value: unknown): string {
  if (Array.isArray(value)) return `[${value.map(canonicalJson).join(',')}]`;
  if (value && typeof value === 'object')
    return `{${Object.keys(value)
      .sort()
      .map((k) => `${JSON.stringify(k)}:${canonicalJson((value as Record<string, unknown>)[k])}`)
      .join(',')}}`;
  return JSON.stringify(value);
}

/** The id of a trial: `t-` + 10 hex digits of sha256 over its parameters and seed. */
export function trialId(params: Record<string, unknown>, seed: number | null): string {
  return `t-${createHash('sha256').update(canonicalJson({ params, seed })).digest('hex').slice(0, 10)}`;
}

/** The trials of a sweep, each configuration once per seed (seed-major within a configuration). */
export function expandTrials(sweep: Pick<SweepConfig, 'search' | 'seeds'>): TrialSpec[] {
  const s = sweep.search;
  if (s.kind === 'bayes')
    throw new RangeError('expandTrials: a Bayesian search proposes its trials as it goes');
  const points = s.kind === 'grid' ? gridPoints(s.grid) : randomPoints(s.space, s.trials, s.seed);
  return trialsOf(points, sweep.seeds);
}

/** The trials of `points`, each once per seed (null: the base config's), duplicates dropped. */
export function trialsOf(
  points: readonly Record<string, unknown>[],
  seeds: readonly number[] | null,
): TrialSpec[] {
  const trials = points.flatMap((params) =>
    (seeds ?? [null]).map((seed) => ({ id: trialId(params, seed), params, seed })),
  );
  // two equal draws of a random search (or a repeated grid value) are one trial
  const seen = new Set<string>();
  return trials.filter((t) => !seen.has(t.id) && seen.add(t.id));
}
