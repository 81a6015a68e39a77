/**
 * Ranking finished trials: the best one on the first objective, and the Pareto front over all
 * objectives (a trial is on the front when no other is at least as good on every objective and
 * better on one). With a single objective the front is drawn against trainable parameters (fewer
 * is better), the trade-off a PEFT search is usually about.
 */
import type { Objective } from './config.ts';

/** Anything with metrics (a TrialResult). */
export interface Scored {
  id: string;
  metrics: Record<string, number>;
}

/** The objectives a front is computed over: the sweep's, or its one objective and trainable_params. */
export function frontObjectives(objectives: readonly Objective[]): Objective[] {
  if (objectives.length > 1) return [...objectives];
  if (objectives[0]!.metric === 'trainable_params')
    return [...objectives, { metric: 'eval_loss', goal: 'min' }];
  return [objectives[0]!, { metric: 'trainable_params', goal: 'min' }];
}

/** The metric as a cost: smaller is better. */
export function cost(trial: Scored, o: Objective): number {
  const v = trial.metrics[o.metric];
  if (typeof v !== 'number' || Number.isNaN(v)) return Number.POSITIVE_INFINITY;
  return o.goal === 'min' ? v : -v;
}

/** Whether `a` dominates `b`: no worse on every objective, better on at least one. */
export function dominates(a: Scored, b: Scored, objectives: readonly Objective[]): boolean {
  let better = false;
  for (const o of objectives) {
    const ca = cost(a, o);
    const cb = cost(b, o);
    if (ca > cb) return false;
    if (ca < cb) better = true;
  }
  return better;
}

/** The non-dominated trials, in input order. */
export function paretoFront<T extends Scored>(trials: readonly T[], objectives: readonly Objective[]): T[] {
  return trials.filter((t) => !trials.some((u) => u !== t && dominates(u, t, objectives)));
}

/** The best trial on the first objective (ties: the later objectives, then input order); null when none. */
export function bestTrial<T extends Scored>(
  trials: readonly T[],
  objectives: readonly Objective[],
): T | null {
  let best: T | null = null;
  for (const t of trials) {
    if (best === null) {
      best = t;
      continue;
    }
    for (const o of objectives) {
      const d = cost(t, o) - cost(best, o);
      if (d < 0) best = t;
      if (d !== 0) break;
    }
  }
  return best;
}
