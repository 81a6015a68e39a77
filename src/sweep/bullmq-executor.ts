/**
 * The BullMQ executor, for sweeps over several machines: the sweep adds one job per unfinished trial
 * to the `attune-trials` queue of a Redis server, `attune worker --queue redis://...` on each machine
 * pulls them, and every trial lives in the sweep's `artifacts` folder, which all of them reach (a
 * shared mount). BullMQ delivers at least once; a trial is made idempotent by its id: the job id is
 * the trial id (prefixed with a hash of the artifacts folder, so two sweeps share a queue), adding a
 * trial that is queued or running is a no-op, and a worker handed a trial whose result.json exists
 * returns it without training. A worker that dies mid-trial loses its job lock; BullMQ's stalled
 * check gives the job to another worker, which resumes the trial from its last checkpoint.
 */
import type { ChildProcess } from 'node:child_process';
import { createHash } from 'node:crypto';
import { createRequire } from 'node:module';
import { Queue, QueueEvents, WaitingError, Worker } from 'bullmq';
import { ConfigError } from '../errors.ts';
import { startTrialProcess, type TrialOutcome } from './local-executor.ts';
import type { TrialSpec } from './space.ts';
import { readTrialResult, type TrialMetrics, trialState } from './trial.ts';

/** The queue every sweep and worker of a Redis server uses. */
export const TRIAL_QUEUE = 'attune-trials';

/** What a job carries: where the trial lives, which trial, with how many threads. */
export interface TrialJobData {
  root: string;
  spec: TrialSpec;
  threads: number;
}

/**
 * BullMQ talks to Redis through the `ioredis` package, an optional peer dependency of bullmq that
 * must be installed next to it; without it, a one-line error saying so (before anything is queued).
 */
export function checkRedisClient(): void {
  try {
    createRequire(createRequire(import.meta.url).resolve('bullmq')).resolve('ioredis');
  } catch {
    throw new ConfigError(
      "executor bullmq: BullMQ needs the 'ioredis' package (its optional peer dependency), which is not installed: npm install ioredis",
    );
  }
}

/** `redis://host:port[/db]` as BullMQ connection options; anything else is a ConfigError. */
export function redisConnection(
  url: string,
  where = 'executor.url',
): {
  host: string;
  port: number;
  db: number;
  password?: string;
  username?: string;
  maxRetriesPerRequest: null;
} {
  let u: URL;
  try {
    u = new URL(url);
  } catch {
    throw new ConfigError(`${where}: expected redis://host:port, found '${url}'`);
  }
  if (u.protocol !== 'redis:' || u.hostname === '')
    throw new ConfigError(`${where}: expected redis://host:port, found '${url}'`);
  const db = u.pathname.length > 1 ? Number(u.pathname.slice(1)) : 0;
  if (!Number.isInteger(db) || db < 0)
    throw new ConfigError(`${where}: '${u.pathname}' is not a database number (redis://host:port/0)`);
  return {
    host: u.hostname,
    port: u.port ? Number(u.port) : 6379,
    db,
    ...(u.password ? { password: decodeURIComponent(u.password) } : {}),
    ...(u.username ? { username: decodeURIComponent(u.username) } : {}),
    // workers block on Redis; BullMQ asks for no per-request retry limit
    maxRetriesPerRequest: null,
  };
}

/** The job id of trial `id` of the sweep whose trials live in `root`. */
export function trialJobId(root: string, id: string): string {
  return `${createHash('sha256').update(root).digest('hex').slice(0, 8)}-${id}`;
}

export interface BullmqExecutorOptions {
  url: string;
  threadsPerTrial: number;
  /** Aborting stops waiting (the queued trials stay queued for the workers). */
  signal?: AbortSignal;
  onQueued?: (trial: TrialSpec) => void;
  onEnd?: (outcome: TrialOutcome) => void;
}

/** Queue `trials` (trial.yaml written under `root`) and wait until each is done or failed. */
export async function runBullmq(
  root: string,
  trials: readonly TrialSpec[],
  options: BullmqExecutorOptions,
): Promise<TrialOutcome[]> {
  checkRedisClient();
  const connection = redisConnection(options.url);
  const queue = new Queue<TrialJobData>(TRIAL_QUEUE, { connection });
  const events = new QueueEvents(TRIAL_QUEUE, { connection });
  try {
    await Promise.all([queue.waitUntilReady(), events.waitUntilReady()]);
    const aborted = new Promise<'aborted'>((resolve) => {
      if (options.signal?.aborted) resolve('aborted');
      options.signal?.addEventListener('abort', () => resolve('aborted'));
    });
    return await Promise.all(
      trials.map(async (spec): Promise<TrialOutcome> => {
        const jobId = trialJobId(root, spec.id);
        let job = await queue.getJob(jobId);
        // a finished job of an earlier run (its result.json deleted since, or it failed): queue it again
        if (job && ['completed', 'failed'].includes(await job.getState())) {
          await job.remove();
          job = undefined;
        }
        job ??= await queue.add(
          'trial',
          { root, spec, threads: options.threadsPerTrial },
          { jobId, attempts: 1 },
        );
        options.onQueued?.(spec);
        let outcome: TrialOutcome;
        try {
          const finished = await Promise.race([job.waitUntilFinished(events), aborted]);
          outcome =
            finished === 'aborted'
              ? { id: spec.id, status: 'interrupted', error: 'the sweep stopped waiting' }
              : { id: spec.id, status: 'done' };
        } catch (error) {
          outcome = { id: spec.id, status: 'failed', error: (error as Error).message };
        }
        options.onEnd?.(outcome);
        return outcome;
      }),
    );
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code === 'ECONNREFUSED')
      throw new ConfigError(
        `executor.url: cannot reach Redis at ${options.url} (${(error as Error).message})`,
      );
    throw error;
  } finally {
    await events.close();
    await queue.close();
  }
}

/** What `attune worker` reports. */
export type WorkerEvent =
  | { type: 'start'; jobId: string; trial: TrialSpec; resuming: boolean }
  | { type: 'done'; jobId: string; trial: TrialSpec; metrics: TrialMetrics; ran: boolean }
  | { type: 'failed'; jobId: string; trial: TrialSpec; error: string };

export interface TrialWorkerOptions {
  url: string;
  /** Trials run at once by this worker (default 1). */
  concurrency?: number;
  /** BullMQ's job lock (ms): a dead worker's trial is retried once it expires (default 30 s). */
  lockDuration?: number;
  /** How often BullMQ looks for stalled jobs (ms, default 30 s). */
  stalledInterval?: number;
  onEvent?: (event: WorkerEvent) => void;
  /** A Redis or worker problem (each distinct message once; BullMQ keeps retrying). */
  onError?: (error: Error) => void;
}

/** A running worker; `close()` lets running trials checkpoint and stop, then disconnects. */
export interface TrialWorker {
  worker: Worker<TrialJobData, TrialMetrics>;
  close(): Promise<void>;
}

/** Start pulling trials from the queue at `options.url`. */
export async function startTrialWorker(options: TrialWorkerOptions): Promise<TrialWorker> {
  checkRedisClient();
  const connection = redisConnection(options.url, '--queue');
  const emit = options.onEvent ?? (() => {});
  const children = new Set<ChildProcess>();
  const worker = new Worker<TrialJobData, TrialMetrics>(
    TRIAL_QUEUE,
    async (job, token) => {
      const { root, spec, threads } = job.data;
      const jobId = job.id!;
      const state = trialState(root, spec.id);
      // at-least-once delivery: a trial already done is reported, never trained (or counted) again
      if (state === 'done') {
        const metrics = readTrialResult(root, spec.id).metrics;
        emit({ type: 'done', jobId, trial: spec, metrics, ran: false });
        return metrics;
      }
      emit({ type: 'start', jobId, trial: spec, resuming: state === 'interrupted' });
      const run = startTrialProcess(root, spec, threads);
      children.add(run.child);
      const outcome = await run.done;
      children.delete(run.child);
      if (outcome.status === 'interrupted') {
        // this worker is stopping: its trial checkpointed; back to the queue for the next worker
        emit({
          type: 'failed',
          jobId,
          trial: spec,
          error: `interrupted, queued again: ${outcome.error ?? ''}`,
        });
        await job.moveToWait(token);
        throw new WaitingError();
      }
      if (outcome.status !== 'done') {
        emit({ type: 'failed', jobId, trial: spec, error: outcome.error ?? outcome.status });
        throw new Error(outcome.error ?? `trial ${spec.id} ${outcome.status}`);
      }
      const metrics = readTrialResult(root, spec.id).metrics;
      emit({ type: 'done', jobId, trial: spec, metrics, ran: true });
      return metrics;
    },
    {
      connection,
      concurrency: options.concurrency ?? 1,
      lockDuration: options.lockDuration ?? 30_000,
      stalledInterval: options.stalledInterval ?? 30_000,
      // a stalled job (its worker died) goes back to the queue, however often that happens
      maxStalledCount: 1000,
    },
  );
  // BullMQ retries a lost connection by itself; say each distinct problem once, not every retry
  const said = new Set<string>();
  worker.on('error', (error) => {
    if (said.has(error.message)) return;
    said.add(error.message);
    options.onError?.(error);
  });
  await worker.waitUntilReady();
  return {
    worker,
    async close() {
      for (const c of children) c.kill('SIGINT');
      await worker.close();
    },
  };
}
