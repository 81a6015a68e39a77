/**
 * `runSweep`: expand the search into trials, validate every trial's training config before any
 * output exists, skip the finished trials, run the others on the executor (interrupted ones resume
 * from their checkpoints), then rank them and write `<out>/results.json` and `<out>/report.html`.
 */
import { mkdirSync } from 'node:fs';
import { join } from 'node:path';
import { writeTextAtomic } from '../io/atomic.ts';
import { checkRedisClient, redisConnection, runBullmq } from './bullmq-executor.ts';
import type { Objective, SweepConfig } from './config.ts';
import { runLocal, type TrialOutcome } from './local-executor.ts';
import { bestTrial, frontObjectives, paretoFront } from './pareto.ts';
import { sweepReportHtml } from './report.ts';
import { expandTrials, type TrialSpec } from './space.ts';
import {
  loadBaseConfig,
  readTrialResult,
  type TrialMetrics,
  trialConfig,
  trialState,
  writeTrialConfig,
} from './trial.ts';

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
  /** Validation done: how many trials, how many already finished. */
  onPlan?: (plan: { trials: number; done: number; toRun: number; workers: number | null }) => void;
  /** A trial starts (local) or is queued (bullmq). */
  onTrialStart?: (trial: TrialSpec, resuming: boolean) => void;
  onTrialEnd?: (outcome: TrialOutcome, metrics: TrialMetrics | null) => void;
}

export interface RunSweepOptions extends SweepEvents {
  /** Aborting stops starting trials and checkpoints the running ones. */
  signal?: AbortSignal;
}

/** Where the trial folders live: `out`, or the bullmq executor's shared `artifacts` folder. */
export function trialsRoot(sweep: SweepConfig): string {
  return sweep.executor.name === 'bullmq' ? sweep.executor.artifacts : sweep.out;
}

/** Validate, run what is not finished, rank, write results.json and report.html. */
export async function runSweep(sweep: SweepConfig, options: RunSweepOptions = {}): Promise<SweepResult> {
  const base = loadBaseConfig(sweep.base);
  const trials = expandTrials(sweep);
  const configs = trials.map((t) => trialConfig(base, t, trialsRoot(sweep), sweep.path));
  const root = trialsRoot(sweep);
  if (sweep.executor.name === 'bullmq') {
    checkRedisClient();
    redisConnection(sweep.executor.url);
  }
  mkdirSync(sweep.out, { recursive: true });
  for (const [i, t] of trials.entries()) writeTrialConfig(root, t.id, configs[i]!);
  const states = new Map(trials.map((t) => [t.id, trialState(root, t.id)]));
  const toRun = trials.filter((t) => states.get(t.id) !== 'done');
  const workers = sweep.executor.name === 'local' ? sweep.executor.workers : null;
  options.onPlan?.({
    trials: trials.length,
    done: trials.length - toRun.length,
    toRun: toRun.length,
    workers: workers === null ? null : Math.min(workers, Math.max(1, toRun.length)),
  });
  const outcomes = new Map<string, TrialOutcome>();
  const onEnd = (o: TrialOutcome) => {
    outcomes.set(o.id, o);
    options.onTrialEnd?.(o, o.status === 'done' ? readTrialResult(root, o.id).metrics : null);
  };
  if (toRun.length > 0 && sweep.executor.name === 'local') {
    await runLocal(root, toRun, {
      workers: sweep.executor.workers,
      threadsPerTrial: sweep.threadsPerTrial,
      signal: options.signal,
      onStart: (t) => options.onTrialStart?.(t, states.get(t.id) === 'interrupted'),
      onEnd,
    });
  } else if (toRun.length > 0 && sweep.executor.name === 'bullmq') {
    await runBullmq(root, toRun, {
      url: sweep.executor.url,
      threadsPerTrial: sweep.threadsPerTrial,
      signal: options.signal,
      onQueued: (t) => options.onTrialStart?.(t, states.get(t.id) === 'interrupted'),
      onEnd,
    });
  }
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
    fields: Object.keys(sweep.search.kind === 'grid' ? sweep.search.grid : sweep.search.space),
    seeds: sweep.seeds,
    out: sweep.out,
  };
  writeTextAtomic(join(sweep.out, 'results.json'), `${JSON.stringify(result, null, 2)}\n`);
  writeTextAtomic(join(sweep.out, 'report.html'), sweepReportHtml(result));
  return result;
}
