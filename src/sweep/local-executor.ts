/**
 * The local executor: a pool of `workers` trial processes (one Node process per trial, at most
 * `workers` at a time), each with ATTUNE_THREADS = threads_per_trial, so a trial computes exactly
 * what it computes alone or on another executor. A process per trial keeps trials independent
 * (memory, the native thread pool) and lets a killed one take nothing else down.
 */
import { type ChildProcess, spawn } from 'node:child_process';
import { existsSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import type { TrialSpec } from './space.ts';

/** How one trial run ended. */
export interface TrialOutcome {
  id: string;
  status: 'done' | 'failed' | 'interrupted';
  /** The trial process's last stderr line when it failed. */
  error?: string;
}

export interface LocalExecutorOptions {
  workers: number;
  threadsPerTrial: number;
  /** Aborting stops starting trials and asks running ones to checkpoint and stop (SIGINT). */
  signal?: AbortSignal;
  onStart?: (trial: TrialSpec) => void;
  onEnd?: (outcome: TrialOutcome) => void;
  /** Extra environment of the trial processes. */
  env?: Record<string, string>;
}

/** The command line that runs trial-process: plain node for dist/, node with tsx's loader for src/. */
function trialCommand(): string[] {
  const ts = new URL('./trial-process.ts', import.meta.url);
  if (import.meta.url.endsWith('.ts') && existsSync(fileURLToPath(ts)))
    return ['--import', import.meta.resolve('tsx'), fileURLToPath(ts)];
  return [fileURLToPath(new URL('./trial-process.js', import.meta.url))];
}

/** A running trial process and how it will end. */
export interface TrialProcess {
  child: ChildProcess;
  done: Promise<TrialOutcome>;
}

/**
 * Start the process of trial `trial` under `out` with `threads` kernel threads. The process exits
 * when this one goes away (its IPC channel closes), so a killed executor or worker leaves no trial
 * running behind it that would race the retry.
 */
export function startTrialProcess(
  out: string,
  trial: TrialSpec,
  threads: number,
  env: Record<string, string> = {},
): TrialProcess {
  const tsconfig = fileURLToPath(new URL('../../tsconfig.json', import.meta.url));
  const child = spawn(process.execPath, [...trialCommand(), out, JSON.stringify(trial)], {
    stdio: ['ignore', 'ignore', 'pipe', 'ipc'],
    // its own process group: a Ctrl-C in the terminal reaches only the executor or worker, which
    // passes one SIGINT on (two would stop the trial before its checkpoint)
    detached: true,
    env: {
      ...process.env,
      ...env,
      ATTUNE_THREADS: String(threads),
      ...(existsSync(tsconfig) ? { TSX_TSCONFIG_PATH: tsconfig } : {}),
    },
  });
  let stderr = '';
  child.stderr!.on('data', (chunk: Buffer) => {
    stderr = (stderr + chunk.toString('utf8')).slice(-4000);
  });
  const done = new Promise<TrialOutcome>((resolve) => {
    let settled = false;
    const finish = (code: number | null, signal: NodeJS.Signals | null, spawnError?: Error) => {
      if (settled) return;
      settled = true;
      if (code === 0) return resolve({ id: trial.id, status: 'done' });
      const lastLine = stderr.trim().split('\n').at(-1) ?? '';
      if (code === 130 || signal === 'SIGINT' || signal === 'SIGTERM')
        return resolve({ id: trial.id, status: 'interrupted', error: lastLine || `stopped by ${signal}` });
      resolve({
        id: trial.id,
        status: 'failed',
        error: spawnError?.message ?? (lastLine || `trial process exited with ${code ?? signal}`),
      });
    };
    child.on('error', (e) => finish(null, null, e));
    child.on('close', (code, signal) => finish(code, signal));
  });
  return { child, done };
}

/** Run `trials` (whose trial.yaml is written) under `out`, at most `workers` at a time. */
export async function runLocal(
  out: string,
  trials: readonly TrialSpec[],
  options: LocalExecutorOptions,
): Promise<TrialOutcome[]> {
  const outcomes: TrialOutcome[] = [];
  const children = new Set<ChildProcess>();
  const onAbort = () => {
    for (const c of children) c.kill('SIGINT');
  };
  options.signal?.addEventListener('abort', onAbort);
  let next = 0;
  const worker = async () => {
    while (next < trials.length && !options.signal?.aborted) {
      const trial = trials[next++]!;
      options.onStart?.(trial);
      const run = startTrialProcess(out, trial, options.threadsPerTrial, options.env);
      children.add(run.child);
      const outcome = await run.done;
      children.delete(run.child);
      outcomes.push(outcome);
      options.onEnd?.(outcome);
    }
  };
  try {
    await Promise.all(Array.from({ length: Math.max(1, Math.min(options.workers, trials.length)) }, worker));
  } finally {
    options.signal?.removeEventListener('abort', onAbort);
  }
  return outcomes;
}
