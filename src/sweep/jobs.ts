/**
 * Jobs: what the executors (local-executor.ts, bullmq-executor.ts) run. A job is `{kind, id,
 * payload}`; its kind, registered once here, says which module runs it in a job process
 * (job-process.ts imports the module and calls its `runJob(payload, {signal})`), and how a worker
 * tells a job that is already done (at-least-once delivery: a done job is reported, never rerun).
 * Sweep trials are one kind (trial-job.ts); the CLI registers others (bench units), so the
 * executors know no kind by name.
 */
import { ConfigError } from '../errors.ts';

/** Where a job stands on disk: done (never rerun), interrupted (resumes from a checkpoint) or pending. */
export type JobState = 'done' | 'interrupted' | 'pending';

/** One kind of job. */
export interface JobKind {
  name: string;
  /**
   * The file URL of the module that runs a job of this kind in its own process: it exports
   * `runJob(payload, {signal}): Promise<unknown>` and, when runJob checkpoints and stops on the
   * signal, `honorsSignal = true` (else a stop request ends the process at once).
   */
  module: string;
  /** The job's state on disk (read by a worker before it runs the job). */
  state(payload: unknown): JobState;
  /** One line naming the job in a worker's log (a trial's params). */
  describe(payload: unknown): string;
  /** One line of a done job's result in a worker's log (a trial's eval_loss). */
  summary(payload: unknown): string;
}

/** A job: its kind, an id unique among the jobs of one run (the outcome key), and its kind's payload (JSON). */
export interface Job {
  kind: string;
  id: string;
  payload: unknown;
}

/** How one job ended. */
export interface JobOutcome {
  id: string;
  status: 'done' | 'failed' | 'interrupted';
  /** The job process's last stderr line when it failed. */
  error?: string;
}

const kinds = new Map<string, JobKind>();

/** Register a job kind (a second registration of the same name replaces nothing: an error). */
export function registerJobKind(kind: JobKind): void {
  const known = kinds.get(kind.name);
  if (known === kind) return;
  if (known) throw new Error(`job kind '${kind.name}' is registered twice`);
  kinds.set(kind.name, kind);
}

/** The job kind `name`, or a one-line error naming the known ones (a worker of another version). */
export function jobKind(name: string): JobKind {
  const kind = kinds.get(name);
  if (!kind)
    throw new ConfigError(
      `job kind '${name}': expected one of ${[...kinds.keys()].join(', ') || '(none registered)'} (is this worker the same Attune version as the sweep or bench that queued it?)`,
    );
  return kind;
}
