/**
 * The BullMQ executor, for sweeps (and `attune bench methods`) over several machines: the
 * coordinator adds one job per unfinished trial (or bench unit) to the `attune-trials` queue of a
 * Redis server, `attune worker --queue redis://...` on each machine pulls them, and every job's
 * files live in a folder all of them reach (a shared mount: the sweep's `artifacts`, the bench's
 * --out). BullMQ delivers at least once; a job is made idempotent by its id: the BullMQ job id is
 * the job id (prefixed with a hash of that folder, so two sweeps share a queue), adding a job that
 * is queued or running is a no-op, and a worker handed a job whose result exists (its kind's
 * `state`, jobs.ts) returns it without running it. A worker that dies mid-job loses its job lock;
 * BullMQ's stalled check gives the job to another worker, which resumes a trial from its last
 * checkpoint (a bench unit starts over: it writes its results atomically, last). A job names the
 * plug-in files its sweep or bench imports (config/plugins.ts); a worker runs it only when it was
 * started with each of them (`attune worker --import FILE`), and its job process imports exactly
 * those, so the job computes what it computes on the local executor.
 */
import type { ChildProcess } from 'node:child_process';
import { createHash } from 'node:crypto';
import { createRequire } from 'node:module';
import { Queue, QueueEvents, WaitingError, Worker } from 'bullmq';
import { loadPlugins } from '../config/plugins.ts';
import { ConfigError } from '../errors.ts';
import { type Job, type JobOutcome, jobKind } from './jobs.ts';
import { startJobProcess } from './local-executor.ts';

/** The queue every sweep, bench and worker of a Redis server uses (trials and other jobs). */
export const TRIAL_QUEUE = 'attune-trials';

/** What a BullMQ job carries: the job's kind and payload, the kernel threads and plug-ins to run it with. */
export interface JobData {
  kind: string;
  id: string;
  payload: unknown;
  threads: number;
  /** Plug-in files (real absolute paths) the job process imports first; absent: none. */
  plugins?: string[];
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

/** The BullMQ job id of job `id` whose files live in `root` (a sweep's trials folder, a bench's out). */
export function trialJobId(root: string, id: string): string {
  return `${createHash('sha256').update(root).digest('hex').slice(0, 8)}-${id}`;
}

export interface BullmqExecutorOptions {
  url: string;
  /** Kernel threads of every job (a sweep's threads_per_trial). */
  threadsPerJob: number;
  /** The folder every worker reaches, where the jobs' files live (part of the job ids). */
  root: string;
  /** Aborting stops waiting (the queued jobs stay queued for the workers). */
  signal?: AbortSignal;
  /** Plug-in files every job's process imports first (each worker must have been started with them). */
  plugins?: readonly string[];
  onQueued?: (job: Job) => void;
  onEnd?: (outcome: JobOutcome) => void;
}

/** Queue `jobs` and wait until each is done or failed. */
export async function runBullmq(jobs: readonly Job[], options: BullmqExecutorOptions): Promise<JobOutcome[]> {
  checkRedisClient();
  for (const job of jobs) jobKind(job.kind);
  const connection = redisConnection(options.url);
  const queue = new Queue<JobData>(TRIAL_QUEUE, { connection });
  const events = new QueueEvents(TRIAL_QUEUE, { connection });
  try {
    await Promise.all([queue.waitUntilReady(), events.waitUntilReady()]);
    const aborted = new Promise<'aborted'>((resolve) => {
      if (options.signal?.aborted) resolve('aborted');
      options.signal?.addEventListener('abort', () => resolve('aborted'));
    });
    return await Promise.all(
      jobs.map(async (job): Promise<JobOutcome> => {
        const jobId = trialJobId(options.root, job.id);
        let queued = await queue.getJob(jobId);
        // a finished job of an earlier run (its result deleted since, or it failed): queue it again
        if (queued && ['completed', 'failed'].includes(await queued.getState())) {
          await queued.remove();
          queued = undefined;
        }
        queued ??= await queue.add(
          job.kind,
          {
            kind: job.kind,
            id: job.id,
            payload: job.payload,
            threads: options.threadsPerJob,
            plugins: [...(options.plugins ?? [])],
          },
          { jobId, attempts: 1 },
        );
        options.onQueued?.(job);
        let outcome: JobOutcome;
        try {
          const finished = await Promise.race([queued.waitUntilFinished(events), aborted]);
          outcome =
            finished === 'aborted'
              ? { id: job.id, status: 'interrupted', error: 'stopped waiting for the queue' }
              : { id: job.id, status: 'done' };
        } catch (error) {
          outcome = { id: job.id, status: 'failed', error: (error as Error).message };
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

/** What `attune worker` reports: the BullMQ job id, the job's kind and its one-line description. */
export type WorkerEvent =
  | { type: 'start'; jobId: string; kind: string; label: string; resuming: boolean }
  | { type: 'done'; jobId: string; kind: string; label: string; summary: string; ran: boolean }
  | { type: 'failed'; jobId: string; kind: string; label: string; error: string };

export interface TrialWorkerOptions {
  url: string;
  /** Jobs run at once by this worker (default 1). */
  concurrency?: number;
  /** BullMQ's job lock (ms): a dead worker's job is retried once it expires (default 30 s). */
  lockDuration?: number;
  /** How often BullMQ looks for stalled jobs (ms, default 30 s). */
  stalledInterval?: number;
  /**
   * Plug-in files (config/plugins.ts, resolved) this worker imports before it pulls a job (job
   * kinds they register become known) and lets jobs import: a job naming another one fails.
   */
  plugins?: readonly string[];
  onEvent?: (event: WorkerEvent) => void;
  /** A Redis or worker problem (each distinct message once; BullMQ keeps retrying). */
  onError?: (error: Error) => void;
}

/** A running worker; `close()` lets running jobs checkpoint and stop, then disconnects. */
export interface TrialWorker {
  worker: Worker<JobData, string>;
  close(): Promise<void>;
}

/** Start pulling jobs of every registered kind (jobs.ts) from the queue at `options.url`. */
export async function startTrialWorker(options: TrialWorkerOptions): Promise<TrialWorker> {
  checkRedisClient();
  const connection = redisConnection(options.url, '--queue');
  const allowed = new Set(options.plugins ?? []);
  await loadPlugins([...allowed], '--import');
  const emit = options.onEvent ?? (() => {});
  const children = new Set<ChildProcess>();
  const worker = new Worker<JobData, string>(
    TRIAL_QUEUE,
    async (queued, token) => {
      const { kind: kindName, id, payload, threads, plugins = [] } = queued.data;
      const jobId = queued.id!;
      // a job whose sweep or bench imports a plug-in this worker lacks would run without its
      // registrations (or with others of the same name): refused, naming what to start it with
      const missing = plugins.filter((p) => !allowed.has(p));
      if (missing.length > 0) {
        const error = `${kindName} ${id} needs the plug-in module(s) ${missing.join(', ')}, which this worker was not started with: attune worker --queue ${options.url} ${missing.map((p) => `--import ${p}`).join(' ')}`;
        emit({ type: 'failed', jobId, kind: kindName, label: id, error });
        throw new Error(error);
      }
      const kind = jobKind(kindName);
      const label = kind.describe(payload);
      const state = kind.state(payload);
      // at-least-once delivery: a job already done is reported, never run (or counted) again
      if (state === 'done') {
        const summary = kind.summary(payload);
        emit({ type: 'done', jobId, kind: kindName, label, summary, ran: false });
        return summary;
      }
      emit({ type: 'start', jobId, kind: kindName, label, resuming: state === 'interrupted' });
      const run = startJobProcess({ kind: kindName, id, payload }, threads, {}, plugins);
      children.add(run.child);
      const outcome = await run.done;
      children.delete(run.child);
      if (outcome.status === 'interrupted') {
        // this worker is stopping: its job checkpointed (or starts over); back to the queue
        emit({
          type: 'failed',
          jobId,
          kind: kindName,
          label,
          error: `interrupted, queued again: ${outcome.error ?? ''}`,
        });
        await queued.moveToWait(token);
        throw new WaitingError();
      }
      if (outcome.status !== 'done') {
        emit({ type: 'failed', jobId, kind: kindName, label, error: outcome.error ?? outcome.status });
        throw new Error(outcome.error ?? `${kindName} ${id} ${outcome.status}`);
      }
      const summary = kind.summary(payload);
      emit({ type: 'done', jobId, kind: kindName, label, summary, ran: true });
      return summary;
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
