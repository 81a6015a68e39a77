/**
 * The local executor: a pool of `workers` job processes (one Node process per job, at most
 * `workers` at a time), each with ATTUNE_THREADS = the threads per job, so a job computes exactly
 * what it computes alone or on another executor. A process per job keeps jobs independent
 * (memory, the native thread pool) and lets a killed one take nothing else down. Jobs are sweep
 * trials or any other registered kind (jobs.ts).
 */
import { type ChildProcess, spawn } from 'node:child_process';
import { existsSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { type Job, type JobOutcome, jobKind } from './jobs.ts';

/** How one trial run ended (a job outcome whose id is the trial id). */
export type TrialOutcome = JobOutcome;

export interface LocalExecutorOptions {
  workers: number;
  /** Kernel threads of every job process (a sweep's threads_per_trial). */
  threadsPerJob: number;
  /** Aborting stops starting jobs and asks running ones to checkpoint and stop (SIGINT). */
  signal?: AbortSignal;
  onStart?: (job: Job) => void;
  onEnd?: (outcome: JobOutcome) => void;
  /** Extra environment of the job processes. */
  env?: Record<string, string>;
  /** Plug-in files every job process imports before its job (config/plugins.ts). */
  plugins?: readonly string[];
}

/** The command line that runs job-process: plain node for dist/, node with tsx's loader for src/. */
function jobCommand(): string[] {
  const ts = new URL('./job-process.ts', import.meta.url);
  if (import.meta.url.endsWith('.ts') && existsSync(fileURLToPath(ts)))
    return ['--import', import.meta.resolve('tsx'), fileURLToPath(ts)];
  return [fileURLToPath(new URL('./job-process.js', import.meta.url))];
}

/** A running job process and how it will end. */
export interface JobProcess {
  child: ChildProcess;
  done: Promise<JobOutcome>;
}

/**
 * Start the process of `job` (its kind registered, jobs.ts) with `threads` kernel threads, which
 * imports the plug-in files `plugins` first. The process exits when this one goes away, so a
 * killed executor or worker leaves no job running behind it that would race the retry.
 */
export function startJobProcess(
  job: Job,
  threads: number,
  env: Record<string, string> = {},
  plugins: readonly string[] = [],
): JobProcess {
  const kind = jobKind(job.kind);
  const tsconfig = fileURLToPath(new URL('../../tsconfig.json', import.meta.url));
  const args = [...jobCommand(), kind.module, JSON.stringify(job.payload), JSON.stringify(plugins)];
  const child = spawn(process.execPath, args, {
    stdio: ['ignore', 'ignore', 'pipe', 'ipc'],
    // its own process group: a Ctrl-C in the terminal reaches only the executor or worker, which
    // passes one SIGINT on (two would stop a trial before its checkpoint)
    detached: true,
    env: {
      ...process.env,
      ...env,
      ATTUNE_THREADS: String(threads),
      // the job process stops when this one is gone (job-process.ts)
      ATTUNE_JOB_PARENT: String(process.pid),
      ...(existsSync(tsconfig) ? { TSX_TSCONFIG_PATH: tsconfig } : {}),
    },
  });
  let stderr = '';
  child.stderr!.on('data', (chunk: Buffer) => {
    stderr = (stderr + chunk.toString('utf8')).slice(-4000);
  });
  const done = new Promise<JobOutcome>((resolve) => {
    let settled = false;
    const finish = (code: number | null, signal: NodeJS.Signals | null, spawnError?: Error) => {
      if (settled) return;
      settled = true;
      if (code === 0) return resolve({ id: job.id, status: 'done' });
      const lastLine = stderr.trim().split('\n').at(-1) ?? '';
      if (code === 130 || signal === 'SIGINT' || signal === 'SIGTERM')
        return resolve({ id: job.id, status: 'interrupted', error: lastLine || `stopped by ${signal}` });
      resolve({
        id: job.id,
        status: 'failed',
        error: spawnError?.message ?? (lastLine || `${job.kind} process exited with ${code ?? signal}`),
      });
    };
    child.on('error', (e) => finish(null, null, e));
    child.on('close', (code, signal) => finish(code, signal));
  });
  return { child, done };
}

/** Run `jobs`, at most `workers` at a time; the outcomes in the order the jobs ended. */
export async function runLocal(jobs: readonly Job[], options: LocalExecutorOptions): Promise<JobOutcome[]> {
  for (const job of jobs) jobKind(job.kind);
  const outcomes: JobOutcome[] = [];
  const children = new Set<ChildProcess>();
  const onAbort = () => {
    for (const c of children) c.kill('SIGINT');
  };
  options.signal?.addEventListener('abort', onAbort);
  let next = 0;
  const worker = async () => {
    while (next < jobs.length && !options.signal?.aborted) {
      const job = jobs[next++]!;
      options.onStart?.(job);
      const run = startJobProcess(job, options.threadsPerJob, options.env, options.plugins);
      children.add(run.child);
      const outcome = await run.done;
      children.delete(run.child);
      outcomes.push(outcome);
      options.onEnd?.(outcome);
    }
  };
  try {
    await Promise.all(Array.from({ length: Math.max(1, Math.min(options.workers, jobs.length)) }, worker));
  } finally {
    options.signal?.removeEventListener('abort', onAbort);
  }
  return outcomes;
}
