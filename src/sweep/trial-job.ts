/**
 * Sweep trials as a job kind (jobs.ts): the payload is `{root, spec}` (the folder of the sweep's
 * trials and the trial), run by runTrial in the job process; a trial checkpoints and stops on
 * SIGINT, and one interrupted resumes from its checkpoint.
 */
import { type Job, type JobKind, registerJobKind } from './jobs.ts';
import type { TrialSpec } from './space.ts';
import { readTrialResult, runTrial, trialState, type WorldEvalSpec } from './trial.ts';

/** What a trial job carries: where the trials live, and which trial (with the sweep's eval_world and the base's known accuracy). */
export interface TrialPayload {
  root: string;
  spec: TrialSpec & WorldEvalSpec;
}

/** The job kind of sweep trials. */
export const trialJobKind: JobKind = {
  name: 'trial',
  // this module runs the trial in the job process (runJob below)
  module: import.meta.url,
  state: (p) => trialState((p as TrialPayload).root, (p as TrialPayload).spec.id),
  describe: (p) => JSON.stringify((p as TrialPayload).spec.params),
  summary: (p) => {
    const { root, spec } = p as TrialPayload;
    return `eval_loss ${readTrialResult(root, spec.id).metrics.eval_loss.toFixed(4)}`;
  },
};
registerJobKind(trialJobKind);

/** The job of trial `spec` under `root` (its id is the trial id). */
export function trialJob(root: string, spec: TrialPayload['spec']): Job {
  return { kind: trialJobKind.name, id: spec.id, payload: { root, spec } satisfies TrialPayload };
}

/** A trial checkpoints and stops on the signal. */
export const honorsSignal = true;

/** Run one trial in this (job) process: see runTrial. */
export async function runJob(payload: unknown, options: { signal?: AbortSignal } = {}): Promise<unknown> {
  const { root, spec } = payload as TrialPayload;
  return runTrial(root, spec, options);
}
