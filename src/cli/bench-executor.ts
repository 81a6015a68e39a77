/**
 * `attune bench methods --executor local|bullmq`: the bench's units (bench/units.ts) as jobs of
 * the sweep executors (sweep/local-executor.ts, sweep/bullmq-executor.ts), each job one unit with
 * `--threads-per-unit` kernel threads, its id the unit id.
 */

import type { MethodsBenchOptions } from '../bench/methods.ts';
import type { BenchUnitPayload } from '../bench/unit-job.ts';
import { type BenchExecutor, type BenchUnit, benchJobOptions } from '../bench/units.ts';
import { runBullmq } from '../sweep/bullmq-executor.ts';
import type { Job, JobOutcome } from '../sweep/jobs.ts';
import { runLocal } from '../sweep/local-executor.ts';
import { benchUnitJobKind } from './job-kinds.ts';

/**
 * Where the units run: a local pool of `workers` processes, or the BullMQ queue at `url`; each unit
 * process imports the plug-in files `plugins` first (the bench's --import).
 */
export type BenchExecutorChoice =
  | { name: 'local'; workers: number; threadsPerUnit: number; plugins?: readonly string[] }
  | { name: 'bullmq'; url: string; threadsPerUnit: number; plugins?: readonly string[] };

export interface BenchExecutorEvents {
  /** A unit starts (local) or is queued (bullmq). */
  onStart?: (unit: BenchUnit) => void;
  onEnd?: (unit: BenchUnit, outcome: JobOutcome) => void;
  /** Aborting stops starting units (local: the running ones are stopped; bullmq: stops waiting). */
  signal?: AbortSignal;
}

/** The executor of `choice` for bench `o` (the jobs carry `o` without its callbacks). */
export function benchExecutor(
  o: MethodsBenchOptions,
  choice: BenchExecutorChoice,
  events: BenchExecutorEvents = {},
): BenchExecutor {
  const options = benchJobOptions(o);
  return {
    async run(units) {
      const byId = new Map(units.map((u) => [u.id, u]));
      const jobs: Job[] = units.map((u) => ({
        kind: benchUnitJobKind.name,
        id: u.id,
        payload: { options, unit: u.id, label: u.label } satisfies BenchUnitPayload,
      }));
      const onStart = (job: Job) => events.onStart?.(byId.get(job.id)!);
      const onEnd = (outcome: JobOutcome) => events.onEnd?.(byId.get(outcome.id)!, outcome);
      const common = {
        threadsPerJob: choice.threadsPerUnit,
        plugins: choice.plugins,
        signal: events.signal,
        onEnd,
      };
      return choice.name === 'local'
        ? runLocal(jobs, { ...common, workers: choice.workers, onStart })
        : runBullmq(jobs, { ...common, url: choice.url, root: o.out, onQueued: onStart });
    },
  };
}
