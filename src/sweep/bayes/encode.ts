/**
 * The search space as the unit cube the GP works in: a range (uniform, log_uniform on the log
 * scale, int) is one coordinate in [0, 1]; a list of numbers is one ordinal coordinate (its
 * position in the list over length − 1), any other list (strings, arrays such as
 * layers_to_transform, objects such as rank_pattern) is one-hot. Also the local moves the
 * optimiser uses to draw candidates near the good points found so far.
 */
import type { Rng } from '../../tensor/rng.ts';
import type { Dimension } from '../config.ts';
import { canonicalJson } from '../space.ts';

function isOrdinal(choices: readonly unknown[]): boolean {
  return choices.length > 1 && choices.every((c) => typeof c === 'number');
}

function choiceIndex(choices: readonly unknown[], value: unknown, field: string): number {
  const key = canonicalJson(value);
  const i = choices.findIndex((c) => canonicalJson(c) === key);
  if (i < 0) throw new RangeError(`search.bayes: '${field}' = ${key} is not one of its choices`);
  return i;
}

function rangeOf(d: Exclude<Dimension, unknown[]>): [number, number, boolean] {
  if ('uniform' in d) return [d.uniform[0], d.uniform[1], false];
  if ('log_uniform' in d) return [d.log_uniform[0], d.log_uniform[1], true];
  return [d.int[0], d.int[1], false];
}

/** A range value as its coordinate in [0, 1] (0.5 for an empty range). */
function toUnit(d: Exclude<Dimension, unknown[]>, v: number): number {
  const [lo, hi, log] = rangeOf(d);
  const [a, b, x] = log ? [Math.log(lo), Math.log(hi), Math.log(v)] : [lo, hi, v];
  return b > a ? (x - a) / (b - a) : 0.5;
}

/** A coordinate in [0, 1] as the range's value (rounded for int). */
function fromUnit(d: Exclude<Dimension, unknown[]>, u: number): number {
  const [lo, hi, log] = rangeOf(d);
  const t = Math.min(1, Math.max(0, u));
  if (log) return Math.exp(Math.log(lo) + t * (Math.log(hi) - Math.log(lo)));
  const v = lo + t * (hi - lo);
  return 'int' in d ? Math.round(v) : v;
}

/** The unit-cube coordinates of `params` (a point of `space`). */
export function encodePoint(space: Record<string, Dimension>, params: Record<string, unknown>): number[] {
  const x: number[] = [];
  for (const [field, d] of Object.entries(space)) {
    const v = params[field];
    if (!Array.isArray(d)) x.push(toUnit(d, v as number));
    else if (isOrdinal(d)) x.push(choiceIndex(d, v, field) / (d.length - 1));
    else if (d.length > 1) {
      const i = choiceIndex(d, v, field);
      for (let j = 0; j < d.length; j++) x.push(j === i ? 1 : 0);
    }
  }
  return x;
}

/**
 * A neighbour of `params`: one field changed — a range moved by a normal step of 0.15 of its width,
 * a list by one position (ordinal) or to another choice (one-hot).
 */
export function mutatePoint(
  space: Record<string, Dimension>,
  params: Record<string, unknown>,
  rng: Rng,
): Record<string, unknown> {
  const fields = Object.keys(space);
  const field = fields[rng.int(fields.length)]!;
  const d = space[field]!;
  const out = { ...params };
  if (!Array.isArray(d)) out[field] = fromUnit(d, toUnit(d, params[field] as number) + 0.15 * rng.normal());
  else if (d.length > 1) {
    const i = choiceIndex(d, params[field], field);
    const j = isOrdinal(d)
      ? Math.min(d.length - 1, Math.max(0, i + (rng.uniform() < 0.5 ? -1 : 1)))
      : (i + 1 + rng.int(d.length - 1)) % d.length;
    out[field] = d[j];
  }
  return out;
}
