/**
 * The Bayesian search (AutoPEFT's multi-objective BO, arXiv:2301.12132): `initial` configurations
 * drawn at random, then each next one proposed from the results so far — one GP per objective
 * (gp.ts) on the unit-cube encoding of the space (encode.ts), maximising expected improvement
 * (one objective) or Monte Carlo expected hypervolume improvement (two objectives) over a seeded
 * set of candidates: random draws of the space plus neighbours of the best points. A batch of
 * several (workers > 1) is proposed by the Kriging believer: each chosen candidate joins the
 * observations with its posterior mean as if observed, the GPs keep their fitted hyper-parameters,
 * and the next candidate is chosen. Everything is a function of the seed and the observations,
 * so rerunning a sweep proposes the same trials and reuses the finished ones.
 */
import { Rng } from '../../tensor/rng.ts';
import type { Dimension, Objective } from '../config.ts';
import { canonicalJson, randomPoints } from '../space.ts';
import { expectedHypervolumeImprovement, expectedImprovement, front2d } from './acquisition.ts';
import { encodePoint, mutatePoint } from './encode.ts';
import { fitGp, type Gp, gpPosterior, standardisation } from './gp.ts';

/** The settings of a Bayesian search. */
export interface BayesOptions {
  space: Record<string, Dimension>;
  /** Configurations to try in all (initial ones included). */
  trials: number;
  /** Random configurations before the first proposal. */
  initial: number;
  seed: number;
  /** One objective (EI) or two (EHVI). */
  objectives: readonly Objective[];
  /** Configurations proposed at a time after the initial ones (Kriging believer when > 1). */
  batch: number;
  /** Random candidates per proposal (default 512). */
  candidates?: number;
  /** Monte Carlo samples of EHVI (default 128). */
  samples?: number;
}

/** A configuration tried: its metrics, or null when its trial failed (it is not proposed again). */
export interface Observation {
  params: Record<string, unknown>;
  metrics: Record<string, number> | null;
}

/** The metric as a cost (smaller is better); +Infinity when missing. */
function costOf(metrics: Record<string, number>, o: Objective): number {
  const v = metrics[o.metric];
  if (typeof v !== 'number' || !Number.isFinite(v)) return Number.POSITIVE_INFINITY;
  return o.goal === 'min' ? v : -v;
}

/** The distinct candidates of a proposal, none tried before (seeded by the seed and how many were tried). */
function candidatePoints(
  o: BayesOptions,
  tried: Set<string>,
  good: readonly Record<string, unknown>[],
  round: number,
): Record<string, unknown>[] {
  const seed = (o.seed * 1000003 + round * 7919 + 1) >>> 0;
  const rng = new Rng(seed ^ 0x5bd1e995);
  const pool = [
    ...randomPoints(o.space, o.candidates ?? 512, seed),
    ...good.flatMap((p) => Array.from({ length: 48 }, () => mutatePoint(o.space, p, rng))),
  ];
  const seen = new Set(tried);
  return pool.filter((p) => {
    const key = canonicalJson(p);
    return !seen.has(key) && seen.add(key);
  });
}

/** Standard-normal pairs shared by every candidate of one proposal. */
function normalPairs(count: number, seed: number): [number, number][] {
  const rng = new Rng(seed);
  return Array.from({ length: count }, () => [rng.normal(), rng.normal()] as [number, number]);
}

/** Index of the largest value (first on ties); -1 for none. */
function argmax(values: readonly number[]): number {
  let best = -1;
  for (let i = 0; i < values.length; i++) if (best < 0 || values[i]! > values[best]!) best = i;
  return best;
}

/**
 * Propose up to `count` new configurations after `history` (fewer when the space has no more
 * untried ones among the candidates). With no finished observation yet, they are random draws.
 */
export function proposeBatch(
  o: BayesOptions,
  history: readonly Observation[],
  count: number,
): Record<string, unknown>[] {
  if (o.objectives.length < 1 || o.objectives.length > 2)
    throw new RangeError(`search.bayes: expected one or two objectives, found ${o.objectives.length}`);
  const tried = new Set(history.map((h) => canonicalJson(h.params)));
  const seen = history.filter(
    (h): h is Observation & { metrics: Record<string, number> } =>
      h.metrics !== null && o.objectives.every((ob) => Number.isFinite(costOf(h.metrics!, ob))),
  );
  const xs = seen.map((h) => encodePoint(o.space, h.params));
  const costs = o.objectives.map((ob) => seen.map((h) => costOf(h.metrics, ob)));
  const good = bestPoints(
    seen.map((h) => h.params),
    costs,
  );
  const pool = candidatePoints(o, tried, good, history.length);
  if (seen.length === 0) return pool.slice(0, count);
  const encoded = pool.map((p) => encodePoint(o.space, p));
  // hyper-parameters fitted once on the real observations; the believer only extends the data
  let gps: Gp[] = costs.map((ys) => fitGp(xs, ys));
  const standard = costs.map((ys) => standardisation(ys));
  const ref = costs.map((ys) => {
    const lo = Math.min(...ys);
    const hi = Math.max(...ys);
    return hi + 0.1 * (hi > lo ? hi - lo : Math.max(1, Math.abs(hi)));
  }) as [number, number];
  const normals = normalPairs(o.samples ?? 128, (o.seed * 31 + history.length) >>> 0);
  const chosen: Record<string, unknown>[] = [];
  const taken = new Set<number>();
  const bx = [...xs];
  const by = costs.map((ys) => [...ys]);
  while (chosen.length < count && taken.size < pool.length) {
    const post = encoded.map((x) => gps.map((gp) => gp.predict(x)));
    const front =
      o.objectives.length === 2 ? front2d(by[0]!.map((c, i) => [c, by[1]![i]!] as [number, number])) : [];
    const best = Math.min(...by[0]!);
    const score = post.map((p, i) => {
      if (taken.has(i)) return Number.NEGATIVE_INFINITY;
      const sd = p.map((q) => Math.sqrt(q.variance));
      return o.objectives.length === 1
        ? expectedImprovement(p[0]!.mean, sd[0]!, best)
        : expectedHypervolumeImprovement([p[0]!.mean, p[1]!.mean], [sd[0]!, sd[1]!], front, ref, normals);
    });
    let pick = argmax(score);
    // nothing is expected to improve: explore where the first objective is least known
    if (!(score[pick]! > 0))
      pick = argmax(post.map((p, i) => (taken.has(i) ? Number.NEGATIVE_INFINITY : p[0]!.variance)));
    taken.add(pick);
    chosen.push(pool[pick]!);
    bx.push(encoded[pick]!);
    for (const [j, q] of post[pick]!.entries()) by[j]!.push(q.mean);
    gps = gps.map((gp, j) => gpPosterior(bx, by[j]!, gp.hyper, standard[j]) ?? gp);
  }
  return chosen;
}

/** The configurations worth exploring around: the non-dominated ones (at most 6, best first objective first). */
function bestPoints(
  params: readonly Record<string, unknown>[],
  costs: readonly number[][],
): Record<string, unknown>[] {
  const idx = params.map((_, i) => i);
  const dominated = (a: number, b: number) =>
    costs.every((c) => c[a]! <= c[b]!) && costs.some((c) => c[a]! < c[b]!);
  return idx
    .filter((i) => !idx.some((j) => j !== i && dominated(j, i)))
    .sort((a, b) => costs[0]![a]! - costs[0]![b]!)
    .slice(0, 6)
    .map((i) => params[i]!);
}

/** The `initial` distinct random configurations of a search (fewer when the space has fewer). */
export function initialPoints(o: BayesOptions): Record<string, unknown>[] {
  const seen = new Set<string>();
  return randomPoints(o.space, Math.min(o.initial, o.trials) * 4, o.seed)
    .filter((p) => {
      const key = canonicalJson(p);
      return !seen.has(key) && seen.add(key);
    })
    .slice(0, Math.min(o.initial, o.trials));
}

/**
 * Run the search: evaluate the initial configurations, then batches of proposals, until `trials`
 * configurations are tried, the space runs out or `evaluate` says to stop (returns null). The
 * objective is injected: the sweep trains trials, tests pass a synthetic function.
 */
export async function bayesSearch(
  o: BayesOptions,
  evaluate: (batch: Record<string, unknown>[]) => Promise<(Record<string, number> | null)[] | null>,
): Promise<Observation[]> {
  const history: Observation[] = [];
  let batch = initialPoints(o);
  while (batch.length > 0) {
    const metrics = await evaluate(batch);
    if (metrics === null) break;
    for (const [i, params] of batch.entries()) history.push({ params, metrics: metrics[i] ?? null });
    const left = o.trials - history.length;
    if (left <= 0) break;
    batch = proposeBatch(o, history, Math.min(o.batch, left));
  }
  return history;
}
