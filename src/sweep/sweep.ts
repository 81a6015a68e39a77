/**
 * `runSweep`: expand the search into trials, validate every trial's training config before any
 * output exists, skip the finished trials, run the others on the executor (interrupted ones resume
 * from their checkpoints), then rank them and write `<out>/results.json` and `<out>/report.html`.
 */
import { mkdirSync } from 'node:fs';
import { join } from 'node:path';
import { loadPlugins } from '../config/plugins.ts';
import { ConfigError } from '../errors.ts';
import { writeTextAtomic } from '../io/atomic.ts';
import type { TrainConfig } from '../train/config.ts';
import { baseKnownAccuracy } from './base-known.ts';
import { type BayesOptions, bayesSearch, initialPoints } from './bayes/optimizer.ts';
import { checkRedisClient, redisConnection, runBullmq } from './bullmq-executor.ts';
import { type Objective, type SweepConfig, searchFields } from './config.ts';
import { runLocal, type TrialOutcome } from './local-executor.ts';
import { bestTrial, frontObjectives, paretoFront } from './pareto.ts';
import { sweepReportHtml } from './report.ts';
import { expandTrials, type TrialSpec, trialsOf } from './space.ts';
import {
  loadBaseConfig,
  readTrialResult,
  type TrialMetrics,
  type TrialState,
  trialConfig,
  trialState,
  writeTrialConfig,
} from './trial.ts';
import { trialJob } from './trial-job.ts';
import { readWorldEval } from './world-metrics.ts';

/** One trial in the sweep's output. */
export interface SweepTrial {
  id: string;
  params: Record<string, unknown>;
  seed: number | null;
  status: 'done' | 'failed' | 'interrupted' | 'pending';
  /** null until the trial is done. */
  metrics: TrialMetrics | null;
  /** What this invocation did with it: skipped (done before), resumed, started; none when stopped first. */
  ran: 'skipped' | 'resumed' | 'started' | 'none';
  error?: string;
}

/** What `attune sweep` prints with --json (and writes to results.json). */
export interface SweepResult {
  trials: SweepTrial[];
  /** The best finished trial on the objective (the first one, with several), null when none finished. */
  best: SweepTrial | null;
  /** Ids of the finished trials on the Pareto front (see pareto.ts). */
  pareto: string[];
  objective: Objective[];
  /** Searched field paths, in the search's order. */
  fields: string[];
  /** The sweep's seeds (null: every trial uses the base config's train.seed). */
  seeds: number[] | null;
  out: string;
}

export interface SweepEvents {
  /** Validation done: how many trials (of this batch), how many already finished. */
  onPlan?: (plan: {
    trials: number;
    done: number;
    toRun: number;
    workers: number | null;
    /** The batch of a Bayesian search (0: its initial configurations); null for grid and random. */
    round: number | null;
  }) => void;
  /** A trial starts (local) or is queued (bullmq). */
  onTrialStart?: (trial: TrialSpec, resuming: boolean) => void;
  onTrialEnd?: (outcome: TrialOutcome, metrics: TrialMetrics | null) => void;
  /** Something the sweep does besides trials (the base answering eval_world for retention). */
  onNote?: (text: string) => void;
}

export interface RunSweepOptions extends SweepEvents {
  /** Aborting stops starting trials and checkpoints the running ones. */
  signal?: AbortSignal;
}

/** Where the trial folders live: `out`, or the bullmq executor's shared `artifacts` folder. */
export function trialsRoot(sweep: SweepConfig): string {
  return sweep.executor.name === 'bullmq' ? sweep.executor.artifacts : sweep.out;
}

/** The configurations checked before a Bayesian search writes anything: its initial ones, every choice and range end. */
function probePoints(sweep: SweepConfig & { search: { kind: 'bayes' } }): Record<string, unknown>[] {
  const first = initialPoints(bayesOptions(sweep));
  const base = first[0]!;
  const probes = Object.entries(sweep.search.space).flatMap(([field, d]) =>
    (Array.isArray(d) ? d : Object.values(d)[0]!).map((v) => ({ ...base, [field]: v })),
  );
  return [...first, ...probes];
}

/** The optimiser's settings of a Bayesian sweep. */
function bayesOptions(sweep: SweepConfig & { search: { kind: 'bayes' } }): BayesOptions {
  const { trials, initial, seed, batch, space } = sweep.search;
  return { trials, initial, seed, batch, space, objectives: sweep.objectives };
}

/** The mean of each metric over the finished trials (seeds) of one configuration; null when one is not done. */
function meanMetrics(done: readonly (TrialMetrics | null)[]): Record<string, number> | null {
  if (done.length === 0 || done.some((m) => m === null)) return null;
  const out: Record<string, number> = {};
  for (const key of Object.keys(done[0]!))
    out[key] = done.reduce((s, m) => s + (m as unknown as Record<string, number>)[key]!, 0) / done.length;
  return out;
}

/**
 * Validate, run what is not finished, rank, write results.json and report.html. Grid and random
 * searches run all their trials at once; a Bayesian search runs its initial configurations, then
 * each batch it proposes from the results so far (finished trials of an earlier run are reused:
 * the proposals are a function of the seed and the results, so they are the same trials).
 */
export async function runSweep(sweep: SweepConfig, options: RunSweepOptions = {}): Promise<SweepResult> {
  // the plug-ins register what the trial configs name, so they load before any is validated
  await loadPlugins(sweep.imports, `${sweep.path}: imports`);
  const base = loadBaseConfig(sweep.base);
  // a world eval file that cannot be read fails here, not in every trial
  const evalWorld = sweep.evalWorld;
  if (evalWorld) readWorldEval(evalWorld);
  const root = trialsRoot(sweep);
  const validate = (ts: readonly TrialSpec[]) => ts.map((t) => trialConfig(base, t, root, sweep.path));
  const bayes = sweep.search.kind === 'bayes' ? (sweep as SweepConfig & { search: { kind: 'bayes' } }) : null;
  // every trial config (a Bayesian search: a probe of its space) is checked before any output exists
  const planned = bayes ? [] : expandTrials(sweep);
  const checked = validate(bayes ? trialsOf(probePoints(bayes), sweep.seeds) : planned);
  const retention = sweep.objectives.findIndex((o) => o.metric === 'retention');
  if (retention >= 0 && checked.some((c) => typeof c.model !== 'string'))
    throw new ConfigError(
      `${sweep.path}: objective.metric 'retention': expected every trial's model to be a model directory (its base before training), found a random initialisation ({config, tokenizer}) in ${sweep.base}`,
    );
  if (sweep.executor.name === 'bullmq') {
    checkRedisClient();
    redisConnection(sweep.executor.url);
  }
  mkdirSync(sweep.out, { recursive: true });
  const trials: TrialSpec[] = [];
  const states = new Map<string, TrialState>();
  const outcomes = new Map<string, TrialOutcome>();
  const onEnd = (o: TrialOutcome) => {
    outcomes.set(o.id, o);
    options.onTrialEnd?.(o, o.status === 'done' ? readTrialResult(root, o.id).metrics : null);
  };
  const baseKnown = new Map<string, number | null>();
  /** The base's known accuracy for a trial's config (once per model directory). */
  const baseKnownOf = (config: TrainConfig, files: string[]): number | null => {
    const key = typeof config.model === 'string' ? config.model : '';
    if (!baseKnown.has(key)) baseKnown.set(key, baseKnownAccuracy(sweep.out, config, files, options.onNote));
    return baseKnown.get(key)!;
  };
  let round = 0;
  /** Write, then run the unfinished trials of `batch`; their metrics (null: not done). */
  const runBatch = async (batch: readonly TrialSpec[]): Promise<(TrialMetrics | null)[]> => {
    const configs = validate(batch);
    for (const [i, t] of batch.entries()) writeTrialConfig(root, t.id, configs[i]!);
    for (const t of batch) {
      states.set(t.id, trialState(root, t.id));
      trials.push(t);
    }
    // the trial process also answers the world eval files (not part of the trial's id), with the
    // base's known accuracy computed here once (base-known.ts), so every executor divides by the same
    const toRun = batch.flatMap((t, i) =>
      states.get(t.id) === 'done'
        ? []
        : [evalWorld ? { ...t, evalWorld, baseKnown: baseKnownOf(configs[i]!, evalWorld) } : t],
    );
    const workers = sweep.executor.name === 'local' ? sweep.executor.workers : null;
    options.onPlan?.({
      trials: batch.length,
      done: batch.length - toRun.length,
      toRun: toRun.length,
      workers: workers === null ? null : Math.min(workers, Math.max(1, toRun.length)),
      round: bayes ? round++ : null,
    });
    const jobs = toRun.map((t) => trialJob(root, t));
    const specOf = new Map(toRun.map((t) => [t.id, t]));
    const started = (job: { id: string }) =>
      options.onTrialStart?.(specOf.get(job.id)!, states.get(job.id) === 'interrupted');
    if (jobs.length > 0 && sweep.executor.name === 'local') {
      await runLocal(jobs, {
        workers: sweep.executor.workers,
        threadsPerJob: sweep.threadsPerTrial,
        plugins: sweep.imports,
        signal: options.signal,
        onStart: started,
        onEnd,
      });
    } else if (jobs.length > 0 && sweep.executor.name === 'bullmq') {
      await runBullmq(jobs, {
        url: sweep.executor.url,
        root,
        threadsPerJob: sweep.threadsPerTrial,
        plugins: sweep.imports,
        signal: options.signal,
        onQueued: started,
        onEnd,
      });
    }
    return batch.map((t) =>
      states.get(t.id) === 'done' || outcomes.get(t.id)?.status === 'done'
        ? readTrialResult(root, t.id).metrics
        : null,
    );
  };
  if (!bayes) await runBatch(planned);
  else
    await bayesSearch(bayesOptions(bayes), async (points) => {
      if (options.signal?.aborted) return null;
      const batch = trialsOf(points, sweep.seeds);
      const metrics = new Map((await runBatch(batch)).map((m, i) => [batch[i]!.id, m]));
      if (options.signal?.aborted) return null;
      return points.map((p) => meanMetrics(trialsOf([p], sweep.seeds).map((t) => metrics.get(t.id) ?? null)));
    });
  const rows: SweepTrial[] = trials.map((t) => {
    const before = states.get(t.id)!;
    const outcome = outcomes.get(t.id);
    const ran =
      before === 'done' ? 'skipped' : !outcome ? 'none' : before === 'interrupted' ? 'resumed' : 'started';
    const row = { id: t.id, params: t.params, seed: t.seed, ran } as const;
    if (before === 'done' || outcome?.status === 'done')
      return { ...row, status: 'done', metrics: readTrialResult(root, t.id).metrics };
    const status = outcome?.status ?? (before === 'interrupted' ? 'interrupted' : 'pending');
    return { ...row, status, metrics: null, ...(outcome?.error ? { error: outcome.error } : {}) };
  });
  const finished = rows.filter((r) => r.status === 'done') as (SweepTrial & { metrics: TrialMetrics })[];
  const scored = finished.map((r) => ({ ...r, metrics: r.metrics as unknown as Record<string, number> }));
  const best = bestTrial(scored, sweep.objectives);
  const result: SweepResult = {
    trials: rows,
    best: best ? rows.find((r) => r.id === best.id)! : null,
    pareto: paretoFront(scored, frontObjectives(sweep.objectives)).map((r) => r.id),
    objective: sweep.objectives,
    fields: searchFields(sweep.search),
    seeds: sweep.seeds,
    out: sweep.out,
  };
  writeTextAtomic(join(sweep.out, 'results.json'), `${JSON.stringify(result, null, 2)}\n`);
  writeTextAtomic(join(sweep.out, 'report.html'), sweepReportHtml(result));
  return result;
}
