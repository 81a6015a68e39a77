/**
 * The entry of one job process (started by an executor, see jobs.ts): `node job-process.js MODULE
 * PAYLOAD [PLUGINS]` imports the plug-in files of PLUGINS (a JSON list, config/plugins.ts), then
 * MODULE, and runs its `runJob(PAYLOAD)`; it exits 0 when the job finished, 130 when
 * SIGINT/SIGTERM stopped it (after a checkpoint, for a module that `honorsSignal`; at once for one
 * that does not), 1 on an error (its message as the last stderr line: a plug-in that cannot be
 * loaded too). Kernel threads come from ATTUNE_THREADS, set by the executor.
 */
import { Worker } from 'node:worker_threads';
import { loadPlugins } from '../config/plugins.ts';

const [moduleUrl, payloadJson, pluginsJson] = process.argv.slice(2);
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
/** The last stderr line names what went wrong (the executor reports it), then exit 1. */
const fail = (error: unknown): never => {
  process.stderr.write(`${((error as Error).message ?? String(error)).replace(/\s*\n\s*/g, ' ')}\n`);
  process.exit(1);
};
// the plug-ins register what the job's config names (methods, losses, ...), so they come first
await loadPlugins(JSON.parse(pluginsJson ?? '[]') as string[], 'job process').catch(fail);
const job = (await import(moduleUrl!).catch(fail)) as {
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
