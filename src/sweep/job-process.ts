/**
 * The entry of one job process (started by an executor, see jobs.ts): `node job-process.js MODULE
 * PAYLOAD` imports MODULE and runs its `runJob(PAYLOAD)`, then exits 0 when the job finished, 130
 * when SIGINT/SIGTERM stopped it (after a checkpoint, for a module that `honorsSignal`; at once for
 * one that does not), 1 on an error (its message as the last stderr line). Kernel threads come from
 * ATTUNE_THREADS, set by the executor.
 */
import { Worker } from 'node:worker_threads';

const [moduleUrl, payloadJson] = process.argv.slice(2);
// the executor or worker that started this process is gone (this process was re-parented): stop at
// once, as if killed with it, so no orphan races the retry. The executor names itself (it may have
// died before this line ran); a thread watches, because a job that computes synchronously never
// lets this thread see the IPC channel close.
const parent = Number(process.env.ATTUNE_JOB_PARENT ?? process.ppid);
if (process.ppid !== parent) process.exit(137);
new Worker(
  `setInterval(() => { if (process.ppid !== ${parent}) process.kill(${process.pid}, 'SIGKILL'); }, 500);`,
  { eval: true },
).unref();
const job = (await import(moduleUrl!)) as {
  runJob(payload: unknown, options: { signal: AbortSignal }): Promise<unknown>;
  honorsSignal?: boolean;
};
const controller = new AbortController();
const onSignal = () => {
  controller.abort();
  process.off('SIGINT', onSignal);
  process.off('SIGTERM', onSignal);
};
// a job that cannot checkpoint (it writes its results atomically, last) keeps the default: a
// signal ends it at once, even in the middle of synchronous work
if (job.honorsSignal) {
  process.on('SIGINT', onSignal);
  process.on('SIGTERM', onSignal);
}
// the executor or worker that started this process is gone: stop at once, as if killed with it
const onParentGone = () => process.exit(137);
process.on('disconnect', onParentGone);
try {
  await job.runJob(JSON.parse(payloadJson!), { signal: controller.signal });
  process.exitCode = 0;
} catch (error) {
  process.stderr.write(`${(error as Error).message.replace(/\s*\n\s*/g, ' ')}\n`);
  process.exitCode = controller.signal.aborted ? 130 : 1;
} finally {
  // an open IPC channel would keep this process alive
  process.off('disconnect', onParentGone);
  process.disconnect?.();
}
